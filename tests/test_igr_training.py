"""IGR training: a tiny run end to end with both weight files, the IGR file loading as the "igr"
system, exact resume, condition drop of garment features and text together, the ablation paths,
the fine stage starting from the coarse stage's files, full denoiser export, --init-ip-adapter,
and the restoration evaluation."""

import pytest
import torch
from atelier.models.igr.config import IGRConfig
from atelier.models.igr.ip_adapter import (
    IPAdapter,
    load_standard_ip_adapter,
    read_ip_adapter_file,
)
from atelier.models.weight_format import BaseModel
from atelier.models.weights import load_weight_file
from atelier.train.anydressing.components import encode_text, load_base
from atelier.train.igr.cli import TrainingOptionError, parse_args, train
from atelier.train.igr.components import tiny_image_encoder
from atelier.train.igr.data import ToyIGR, batch_for_step
from atelier.train.igr.evaluate import HELD_OUT_START, evaluate, load_igr
from atelier.train.igr.previous import (
    DENOISER_LORA_FILE,
    DENOISER_UNET_FILE,
    IP_ADAPTER_FILE,
    WEIGHT_FILE,
    kohya_name,
)
from atelier.train.igr.steps import (
    DenoiserUpdate,
    build_trainables,
    drops_condition,
    igr_config_for,
    igr_losses,
)
from atelier.train.loop import noise_and_timesteps, step_generator
from atelier.train.text2graph.lora_export import read_metadata
from fake_datasets import build_vitonhd
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file

TINY = ["--person-size", "32", "--people", "6", "--batch-size", "2", "--log-every", "1", "--lr", "1e-3",
        "--denoiser-rank", "2", "--garmnet-rank", "2", "--ip-tokens", "2", "--checkpoint-every", "0"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread while this module runs, restored after: on a shared, busy 2-core machine two
    threads spin-wait on each other and the tiny models run ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tensors(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


@pytest.fixture(scope="module")
def coarse(tmp_path_factory):
    """Three coarse steps, both paths, LoRA denoiser, a checkpoint after every step."""
    out = tmp_path_factory.mktemp("igr_coarse")
    result = train(parse_args([*TINY, "--stage", "coarse", "--steps", "3", "--checkpoint-every", "1", "--out", str(out)]))
    return out, result


def test_tiny_run_writes_loadable_weight_files(coarse):
    out, result = coarse
    assert result.outputs == [out / WEIGHT_FILE, out / IP_ADAPTER_FILE, out / DENOISER_LORA_FILE]
    assert len(result.losses) == 3 and all(loss["ldm"] > 0 for loss in result.losses)
    loaded = load_weight_file(str(out / WEIGHT_FILE), expected_system="igr")
    config = IGRConfig.from_dict(loaded.config)
    assert config.high_level and config.low_level and config.garmnet_rank == 2 and config.ip_tokens == 2
    trained = result.modules["trained"]
    for name in ("garmnet", "ip_adapter"):
        for key, value in trained.__getattr__(name).state_dict().items():
            assert torch.equal(loaded.modules[name].state_dict()[key], value.cpu()), key
    assert trained.garmnet.lora.up["input_1"].abs().sum() > 0  # GarmNet's LoRA (B = 0 at start) was trained
    lora = _tensors(out / DENOISER_LORA_FILE)
    peft_state = get_peft_model_state_dict(trained.unet)
    assert {kohya_name(key) for key in peft_state} <= set(lora)
    assert any(key.startswith("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q") for key in lora)
    assert read_metadata(out / DENOISER_LORA_FILE)["atelier_system"] == "igr"
    standard = read_ip_adapter_file(out / IP_ADAPTER_FILE)  # the IP path alone, in the standard key layout
    assert set(standard) == set(trained.ip_adapter.state_dict())
    fresh = IPAdapter.for_sd15(config, loaded.base)
    load_standard_ip_adapter(fresh, standard, str(out / IP_ADAPTER_FILE))
    for key, value in trained.ip_adapter.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value.cpu()), key


def test_resume_continues_exactly(coarse, tmp_path):
    out, straight = coarse
    interrupted = tmp_path / "run"
    train(parse_args([*TINY, "--stage", "coarse", "--steps", "1", "--checkpoint-every", "1", "--out", str(interrupted)]))
    resumed = train(parse_args([*TINY, "--stage", "coarse", "--steps", "3", "--resume", "--out", str(interrupted)]))
    assert len(resumed.losses) == 2
    assert [loss["ldm"] for loss in resumed.losses] == pytest.approx([loss["ldm"] for loss in straight.losses[1:]], rel=1e-5)
    first, second = _tensors(out / WEIGHT_FILE), _tensors(interrupted / WEIGHT_FILE)
    assert all(torch.allclose(first[key], second[key], atol=1e-6) for key in first)
    first, second = _tensors(out / DENOISER_LORA_FILE), _tensors(interrupted / DENOISER_LORA_FILE)
    assert all(torch.allclose(first[key], second[key], atol=1e-6) for key in first)


@pytest.fixture(scope="module")
def parts():
    components = load_base("tiny", 0)
    encoder = tiny_image_encoder()
    config = igr_config_for("both", encoder.embed_dim, 2, 2.0, 2)
    trainables = build_trainables(components, config, DenoiserUpdate("lora", 2, 2.0))
    data = ToyIGR((32, 32), count=4, rule=None)
    return components, encoder, config, trainables, batch_for_step(data, list(range(len(data))), 0, 2, 0)


def test_condition_drop_drops_garment_features_and_text_together(parts):
    components, encoder, config, trainables, batch = parts
    trainables.zero_grad(set_to_none=True)
    losses = igr_losses(components, trainables, config, encoder, batch, step_generator(0, 5), 1.0)
    losses["ldm"].backward()
    assert losses["dropped"] == 1.0
    garment_grads = [p.grad for p in [*trainables.garmnet.parameters(), *trainables.ip_adapter.parameters()]]
    assert all(grad is None for grad in garment_grads)
    generator = step_generator(0, 5)
    assert drops_condition(generator, 1.0)
    latents = components.vae.encode(batch.garments)
    noise, timesteps = noise_and_timesteps(latents, components.scheduler, generator)
    noisy = components.scheduler.add_noise(latents, noise, timesteps)
    with torch.no_grad():
        plain = trainables.unet(noisy, timesteps, encoder_hidden_states=encode_text(components, ["", ""])).sample
    assert float(losses["ldm"].detach()) == pytest.approx(float(torch.nn.functional.mse_loss(plain, noise)), rel=1e-5)


def test_kept_condition_trains_both_garment_paths(parts):
    components, encoder, config, trainables, batch = parts
    trainables.zero_grad(set_to_none=True)
    losses = igr_losses(components, trainables, config, encoder, batch, step_generator(0, 5), 0.0)
    losses["ldm"].backward()
    assert losses["dropped"] == 0.0
    assert trainables.garmnet.mask_in.weight.grad.abs().sum() > 0
    assert trainables.garmnet.lora.up["middle_0"].grad.abs().sum() > 0
    assert trainables.ip_adapter.image_proj.proj.weight.grad.abs().sum() > 0


def test_ip_only_path_with_full_denoiser(tmp_path):
    result = train(parse_args([*TINY, "--stage", "coarse", "--paths", "ip", "--denoiser", "full", "--steps", "1",
                               "--out", str(tmp_path)]))
    assert result.outputs == [tmp_path / WEIGHT_FILE, tmp_path / IP_ADAPTER_FILE, tmp_path / DENOISER_UNET_FILE]
    config = IGRConfig.from_dict(load_weight_file(str(tmp_path / WEIGHT_FILE), expected_system="igr").config)
    assert config.low_level and not config.high_level
    trained = result.modules["trained"]
    assert not any(p.requires_grad for p in trained.garmnet.parameters())
    assert torch.count_nonzero(trained.garmnet.mask_in.weight) == 0  # untrained path stays at its initialisation
    unet = _tensors(tmp_path / DENOISER_UNET_FILE)
    assert set(unet) == set(trained.unet.state_dict()) and "conv_in.weight" in unet


def test_fine_stage_starts_from_the_coarse_files(coarse, tmp_path):
    out, _ = coarse
    result = train(parse_args([*TINY, "--people", "12", "--stage", "fine", "--steps", "0", "--resume-from", str(out),
                               "--out", str(tmp_path)]))
    assert 0 < result.pairs and 0.0 < result.flagged_fraction < 1.0
    for name in (WEIGHT_FILE, DENOISER_LORA_FILE):
        before, after = _tensors(out / name), _tensors(tmp_path / name)
        assert set(before) == set(after) and all(torch.equal(before[k], after[k]) for k in before), name
    with pytest.raises(TrainingOptionError, match="--resume-from"):
        parse_args([*TINY, "--stage", "fine", "--out", str(tmp_path)])


def test_init_ip_adapter_loads_a_standard_file(tmp_path):
    base = BaseModel(family="sd15", model_channels=32, context_dim=64)
    source = IPAdapter.for_sd15(IGRConfig(ip_tokens=2, image_embed_dim=32), base)
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.normal_()
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "ip.safetensors"))
    train(parse_args([*TINY, "--stage", "coarse", "--steps", "0", "--init-ip-adapter", str(tmp_path / "ip.safetensors"),
                      "--out", str(tmp_path / "run")]))
    loaded = load_weight_file(str(tmp_path / "run" / WEIGHT_FILE), expected_system="igr").modules["ip_adapter"]
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in source.state_dict().items())


def test_evaluation_scores_restored_garments(coarse):
    out, _ = coarse
    components = load_base("tiny", 0)
    igr = load_igr(components, str(out))
    data = ToyIGR((32, 32), start=HELD_OUT_START, count=2, rule=None)
    result = evaluate(components, data, 2, igr, tiny_image_encoder(), steps=2)
    assert result["pairs"] == 2 and set(result["by_category"]) <= {"upper", "lower", "dress"}
    assert -1.0 <= result["ssim"] <= 1.0 and result["psnr"] > 0
    assert 0.0 <= result["color_fidelity"] <= 1.0 and 0.0 <= result["pattern_fidelity"] <= 1.0
    assert result["eps_mse"] > 0
    prior = evaluate(load_base("tiny", 0), data, 2, None, None, steps=2)
    assert prior["psnr"] != result["psnr"] and prior["eps_mse"] != result["eps_mse"]
    assert prior["eps_mse_no_features"] == prior["eps_mse"] and result["eps_mse_no_features"] != result["eps_mse"]


def test_trains_on_the_vitonhd_layout_with_a_portrait_size(tmp_path):
    build_vitonhd(tmp_path / "viton")
    args = ["--person-size", "32x24", "--cloth-size", "16x8", "--batch-size", "2", "--denoiser-rank", "2",
            "--garmnet-rank", "2", "--ip-tokens", "2", "--checkpoint-every", "0", "--data", "vitonhd",
            "--data-root", str(tmp_path / "viton"), "--split", "test", "--steps", "1"]
    result = train(parse_args([*args, "--out", str(tmp_path / "run")]))
    assert result.pairs == 2 and len(result.losses) == 1 and (tmp_path / "run" / WEIGHT_FILE).is_file()
    with pytest.raises(TrainingOptionError, match="--filter-list"):
        parse_args([*args, "--stage", "fine", "--resume-from", str(tmp_path / "run"), "--out", str(tmp_path / "fine")])


def test_base_stage_trains_toy_denoisers_only():
    assert parse_args(["--stage", "base", "--base", "toy32", "--person-size", "128", "--out", "x"]).base == "toy32"
    with pytest.raises(TrainingOptionError, match="--stage base trains a toy denoiser only"):
        parse_args(["--stage", "base", "--base", "/models/stable-diffusion-v1-5", "--out", "x"])
