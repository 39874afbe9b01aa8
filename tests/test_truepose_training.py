"""TruePose training: a tiny run per variant that writes its files (the TruePose file loading as the
"truepose" system with its variant), exact resume, condition dropout of the whole condition C, the
DeepFashion source with palette parsing files, and the toy-world evaluation."""

import numpy as np
import pytest
import torch
from atelier.models.errors import WeightFileError
from atelier.models.labels import ATR_PALETTE
from atelier.models.parsing import ATR, LIP
from atelier.models.truepose.config import TruePoseConfig
from atelier.models.weights import load_weight_file
from atelier.train.anydressing.components import encode_text, load_base
from atelier.train.igr.components import tiny_image_encoder
from atelier.train.igr.steps import DenoiserUpdate, drops_condition
from atelier.train.loop import step_generator
from atelier.train.text2graph.lora_export import read_metadata
from atelier.train.truepose.cli import (
    CONCAT_FILE,
    META_VARIANT,
    UNET_FILE,
    UNET_LORA_FILE,
    WEIGHT_FILE,
    TrainingOptionError,
    parse_args,
    train,
)
from atelier.train.truepose.data import (
    DeepFashionPairs,
    ParsingFileError,
    ToyPosePairs,
    batch_for_step,
)
from atelier.train.truepose.evaluate import HELD_OUT_START, evaluate, load_trained
from atelier.train.truepose.steps import (
    build_trainables,
    noised_targets,
    truepose_config_for,
    truepose_losses,
)
from fake_datasets import (
    build_deepfashion_cfld,
    fake_lip_map,
    lip_to_atr_ids,
    write_palette_png,
)
from peft.utils import get_peft_model_state_dict
from PIL import Image
from safetensors.torch import load_file

TINY = ["--size", "32x32", "--people", "6", "--batch-size", "2", "--log-every", "1", "--lr", "1e-3",
        "--unet-rank", "2", "--checkpoint-every", "0"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread while this module runs, restored after (two threads on a busy 2-core machine
    spin-wait on each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Three steps of the full variant, a checkpoint after every step, no condition dropout."""
    out = tmp_path_factory.mktemp("truepose_full")
    result = train(parse_args([*TINY, "--steps", "3", "--checkpoint-every", "1", "--condition-dropout", "0",
                               "--out", str(out)]))
    return out, result


@pytest.mark.parametrize("variant", ["no-hpfa", "no-caa", "concat"])
def test_each_variant_writes_its_files(variant, tmp_path):
    update = "full" if variant == "no-caa" else "lora"  # no-caa also exercises the full UNet update
    result = train(parse_args([*TINY, "--steps", "1", "--variant", variant, "--unet", update, "--out", str(tmp_path)]))
    trained = result.modules["trained"]
    assert len(result.losses) == 1 and result.losses[0]["ldm"] > 0
    if update == "full":
        assert result.outputs == [tmp_path / WEIGHT_FILE, tmp_path / UNET_FILE]
        assert set(load_file(str(tmp_path / UNET_FILE))) == set(trained.unet.state_dict())
    else:
        assert read_metadata(tmp_path / UNET_LORA_FILE)["atelier_variant"] == variant
    if variant == "concat":
        assert result.outputs == [tmp_path / CONCAT_FILE, tmp_path / UNET_LORA_FILE]
        assert trained.hpfa is None and trained.caa is None
        assert read_metadata(tmp_path / CONCAT_FILE)[META_VARIANT] == "concat"
        with pytest.raises(WeightFileError, match="not an Atelier weight file"):
            load_weight_file(str(tmp_path / CONCAT_FILE), expected_system="truepose")
        components = load_base("tiny", 0)
        loaded = load_trained(components, str(tmp_path))
        assert loaded.variant == "concat"
        for key, value in trained.pose_encoder.state_dict().items():
            assert torch.equal(loaded.trainables.pose_encoder.state_dict()[key], value.cpu()), key
        scores = evaluate(components, loaded, ToyPosePairs((32, 32), HELD_OUT_START, 1), 1, None, steps=1)
        assert scores["pairs"] == 1 and np.isfinite(scores["psnr"]) and np.isfinite(scores["eps_mse"])
        return
    assert result.outputs[0] == tmp_path / WEIGHT_FILE
    loaded = load_weight_file(str(tmp_path / WEIGHT_FILE), expected_system="truepose")
    assert read_metadata(tmp_path / WEIGHT_FILE)[META_VARIANT] == variant
    assert TruePoseConfig.from_dict(loaded.config).parsing_guidance is (variant != "no-hpfa")
    assert (trained.caa is None) is (variant == "no-caa")
    if variant == "no-caa":  # a file without CAA sites: the nodes refuse a CAA strength on it
        assert TruePoseConfig.from_dict(loaded.config).caa_sites == ()
        assert not list(loaded.modules["caa"].parameters())


def test_full_run_writes_a_loadable_truepose_file(full_run):
    out, result = full_run
    assert result.outputs == [out / WEIGHT_FILE, out / UNET_LORA_FILE]
    loaded = load_weight_file(str(out / WEIGHT_FILE), expected_system="truepose")
    assert read_metadata(out / WEIGHT_FILE)[META_VARIANT] == "full"
    config = TruePoseConfig.from_dict(loaded.config)
    assert config.parsing_guidance and config.clip_embed_dim == tiny_image_encoder().embed_dim
    trained = result.modules["trained"]
    for name in ("hpfa", "caa", "pose_encoder"):
        for key, value in getattr(trained, name).state_dict().items():
            assert torch.equal(loaded.modules[name].state_dict()[key], value.cpu()), (name, key)
    assert trained.pose_encoder.conv_out.weight.abs().sum() > 0  # zero at start: it was trained
    assert any(layer.weight.abs().sum() > 0 for layer in trained.caa.to_v.values())
    lora = load_file(str(out / UNET_LORA_FILE))
    assert len(lora) == 3 * len(get_peft_model_state_dict(trained.unet)) // 2
    assert any(key.startswith("lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q") for key in lora)


def test_resume_continues_exactly(full_run, tmp_path):
    out, straight = full_run
    args = [*TINY, "--condition-dropout", "0", "--out", str(tmp_path)]
    train(parse_args([*args, "--steps", "1", "--checkpoint-every", "1"]))
    resumed = train(parse_args([*args, "--steps", "3", "--resume"]))
    assert len(resumed.losses) == 2
    assert [s["ldm"] for s in resumed.losses] == pytest.approx([s["ldm"] for s in straight.losses[1:]], rel=1e-5)
    for name in (WEIGHT_FILE, UNET_LORA_FILE):
        first, second = load_file(str(out / name)), load_file(str(tmp_path / name))
        assert all(torch.allclose(first[key], second[key], atol=1e-6) for key in first), name


@pytest.fixture(scope="module")
def parts():
    components = load_base("tiny", 0)
    encoder = tiny_image_encoder()
    config = truepose_config_for("full", encoder.embed_dim)
    trainables = build_trainables(components, config, "full", DenoiserUpdate("lora", 2, 2.0))
    with torch.no_grad():  # a trained CAA value path, so CAA's queries and keys get gradient too
        for layer in trainables.caa.to_v.values():
            layer.weight.normal_(0.0, 0.1)
    batch = batch_for_step(ToyPosePairs((32, 32), count=4), 0, 2, 0)
    return components, encoder, config, trainables, batch


def _condition_grads(trainables) -> dict[str, torch.Tensor | None]:
    return {"hpfa.to_k_h": trainables.hpfa.to_k_h["output_5"].weight.grad,
            "hpfa.to_q": trainables.hpfa.to_q["output_9"].weight.grad,
            "caa.to_q": trainables.caa.to_q["output_4"].weight.grad,
            "caa.to_k": trainables.caa.to_k["output_11"].weight.grad,
            "pose.conv_out": trainables.pose_encoder.conv_out.weight.grad}


def test_condition_dropout_drops_the_whole_condition(parts):
    components, encoder, config, trainables, batch = parts
    trainables.zero_grad(set_to_none=True)
    losses = truepose_losses(components, trainables, "full", config, encoder, batch, step_generator(0, 5), 1.0)
    losses["ldm"].backward()
    assert losses["dropped"] == 1.0
    assert all(grad is None for grad in _condition_grads(trainables).values())
    generator = step_generator(0, 5)
    assert drops_condition(generator, 1.0)
    noise, timesteps, noisy = noised_targets(components, batch, generator)
    with torch.no_grad():
        plain = trainables.unet(noisy, timesteps, encoder_hidden_states=encode_text(components, ["", ""])).sample
    assert float(losses["ldm"].detach()) == pytest.approx(float(torch.nn.functional.mse_loss(plain, noise)), rel=1e-6)


def test_kept_condition_trains_every_part_of_it(parts):
    components, encoder, config, trainables, batch = parts
    trainables.zero_grad(set_to_none=True)
    losses = truepose_losses(components, trainables, "full", config, encoder, batch, step_generator(0, 5), 0.0)
    losses["ldm"].backward()
    assert losses["dropped"] == 0.0
    for name, grad in _condition_grads(trainables).items():
        assert grad is not None and grad.abs().sum() > 0, name


def _write_atr_png(path, label_map: np.ndarray) -> None:
    palette = np.asarray(ATR_PALETTE, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(palette[label_map]).save(path)  # an RGB image in the ATR palette


def test_deepfashion_pairs_read_palette_parsing_files(tmp_path):
    root, parsing = tmp_path / "fashion", tmp_path / "parsing"
    pairs = build_deepfashion_cfld(root)
    lip = fake_lip_map(32, 24)
    for source, _ in pairs:
        stem = source.rsplit(".", 1)[0]
        write_palette_png(parsing / "lip" / f"{stem}.png", lip)
        _write_atr_png(parsing / "atr" / f"{stem}.png", lip_to_atr_ids(lip))
    data = DeepFashionPairs(root, parsing / "lip", LIP, (32, 24))
    sample = data[0]
    assert sample.source.shape == sample.target.shape == sample.skeleton.shape == (3, 32, 24)
    assert np.array_equal(sample.parsing, lip) and sample.skeleton.sum() > 0
    from_atr = DeepFashionPairs(root, parsing / "atr", ATR, (32, 24))[1].parsing
    assert np.array_equal(from_atr, lip)  # ATR -> LIP gives the same classes back for this map
    args = [*TINY, "--size", "32x24", "--data", "deepfashion", "--data-root", str(root), "--steps", "1"]
    result = train(parse_args([*args, "--parsing-dir", str(parsing / "atr"), "--parsing-label-set", "atr",
                               "--out", str(tmp_path / "run")]))
    assert len(result.losses) == 1 and (tmp_path / "run" / WEIGHT_FILE).is_file()
    (parsing / "lip" / f"{pairs[1][0].rsplit('.', 1)[0]}.png").unlink()
    with pytest.raises(ParsingFileError, match=pairs[1][0].rsplit(".", 1)[0] + ".png"):
        DeepFashionPairs(root, parsing / "lip", LIP, (32, 24))[1]
    with pytest.raises(TrainingOptionError, match="--parsing-dir"):
        parse_args([*args, "--out", str(tmp_path / "x")])


def test_evaluation_scores_reposed_people(full_run):
    out, result = full_run
    components = load_base("tiny", 0)
    trained = load_trained(components, str(out))
    assert trained.variant == "full"
    loaded_lora = get_peft_model_state_dict(trained.trainables.unet)
    for key, value in get_peft_model_state_dict(result.modules["trained"].unet).items():
        assert torch.equal(loaded_lora[key], value.cpu()), key
    data = ToyPosePairs((32, 32), HELD_OUT_START, 2)
    scores = evaluate(components, trained, data, 2, tiny_image_encoder(), steps=2, floor=True)
    assert scores["pairs"] == 2
    for block in (scores, scores["no_condition"], scores["vae_ceiling"]):
        assert -1.0 <= block["ssim"] <= 1.0 and 0 < block["psnr"] < 100 and 0.0 <= block["color_fidelity"] <= 1.0
        assert 0.0 <= block["color_error"] < 300
    assert np.isfinite(scores["eps_mse"]) and scores["eps_mse"] != scores["eps_mse_no_condition"]
    assert scores["psnr"] != scores["no_condition"]["psnr"]
