"""AnyDressing inside a real ComfyUI (tiny SD1.5-shaped checkpoint, CPU): the GarmentsNet pass and
Dressing-Attention agree with the diffusers host for the same weights, and the three nodes work
end to end through the sampler. Needs COMFYUI_PATH."""

import copy
import dataclasses
import math
import shutil
from types import SimpleNamespace

import pytest
import torch

from comfy_fixtures import diffusers_unet_from_comfy, empty_latent, encode_prompt, requires_comfyui, sample

pytestmark = [requires_comfyui]

SIZE = 64
LATENT = 8
TOLERANCE = 2e-4
BASE_CHANNELS = 32
WEIGHTS_NAME = "dressing_tiny.safetensors"


def random_dressing_modules(context_dim: int, seed: int = 0):
    """GFE LoRA with non-zero B (an untrained file's B is zero) and DA projections, seeded."""
    from atelier.models.anydressing.config import DressingConfig
    from atelier.models.anydressing.spec import build_anydressing
    from atelier.models.weight_format import BaseModel

    base = BaseModel(model_channels=BASE_CHANNELS, context_dim=context_dim)
    config = DressingConfig().to_dict()
    torch.manual_seed(seed)
    modules = build_anydressing(config, base)
    with torch.no_grad():
        for parameter in modules["garment_lora"].up.values():
            parameter.normal_(0.0, 0.05)
    return base, config, modules


@pytest.fixture(scope="module")
def world(tiny_sd15, comfy_server_nodes, comfy_node_registry, tmp_path_factory):
    from atelier.models.anydressing.spec import ANYDRESSING
    from atelier.models.weight_systems import REFERENCE
    from atelier.models.weights import export_untrained, save_weight_file
    from atelier.nodes.folders import FOLDER_NAME

    from atelier.nodes.anydressing_nodes import NODES

    nodes = {node.define_schema().node_id: node for node in NODES}
    model, clip, vae = tiny_sd15
    context_dim = model.model.model_config.unet_config["context_dim"]
    folder = tmp_path_factory.mktemp("dressing_weights")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    base, config, modules = random_dressing_modules(context_dim)
    save_weight_file(str(folder / WEIGHTS_NAME), ANYDRESSING, base, config, modules)
    export_untrained(str(folder / "reference_for_dressing_test.safetensors"), REFERENCE, base)
    g = torch.Generator().manual_seed(4)
    return SimpleNamespace(
        model=model, vae=vae, context_dim=context_dim, modules=modules,
        positive=encode_prompt(clip, "a person"), negative=encode_prompt(clip, ""),
        upper=torch.rand(1, SIZE, SIZE, 3, generator=g), lower=torch.rand(1, SIZE, 80, 3, generator=g),
        nodes=nodes,
    )


def dressing(world):
    return world.nodes["AtelierDressingLoader"].execute(weights=WEIGHTS_NAME).args[0]


def encode(world, images, categories, previous=None, **extra):
    return world.nodes["AtelierEncodeGarments"].execute(
        model=world.model, vae=world.vae, dressing=dressing(world), garments=images, categories=categories,
        previous=previous, **extra,
    ).args[0]


def apply(world, garments, **overrides):
    inputs = dict(model=world.model, garments=garments, strength=0.7, garment_strengths="", start_percent=0.0,
                  end_percent=1.0, uncond="no_garment", garment_guidance=3.0)
    inputs.update(overrides)
    return world.nodes["AtelierApplyDressing"].execute(**inputs).args[0]


def run(world, model, *, batch=1, cfg=5.0, seed=0):
    return sample(model, world.positive, world.negative, empty_latent(batch, SIZE, SIZE), steps=2, cfg=cfg, seed=seed)


@pytest.fixture(scope="module")
def two_garments(world):
    upper = encode(world, world.upper, "upper")
    return encode(world, world.lower, "lower", previous=upper)


@pytest.fixture(scope="module")
def baseline(world):
    return run(world, world.model)


def test_garments_pass_agrees_across_hosts(world):
    import comfy.model_management
    from atelier.models.anydressing.config import DressingConfig
    from atelier.models.anydressing.diffusers_garments import DiffusersGarmentsNet
    from atelier.nodes.dressing_garments import run_garments_net

    config = DressingConfig()
    lora = world.modules["garment_lora"]
    latents = torch.randn(2, 4, LATENT, LATENT, generator=torch.Generator().manual_seed(1))
    slots = torch.tensor([0, 1])
    comfy.model_management.load_models_gpu([world.model])
    in_comfy = run_garments_net(world.model.model, latents, slots, lora, config.sites, world.context_dim)
    unet = diffusers_unet_from_comfy(world.model)
    scaled = world.model.model.process_latent_in(latents)
    with torch.no_grad(), DiffusersGarmentsNet(unet, lora, config.sites) as garments_net:
        in_diffusers = garments_net.encode(scaled, slots)
    assert in_comfy.site_names == in_diffusers.site_names and len(in_comfy) == 16
    for name in in_comfy.site_names:
        torch.testing.assert_close(in_comfy._states[name], in_diffusers._states[name], atol=TOLERANCE, rtol=TOLERANCE)
    with torch.no_grad():
        other_slots = run_garments_net(world.model.model, latents, torch.tensor([2, 1]), lora, config.sites, world.context_dim)
    changed = [name for name in in_comfy.site_names if not torch.equal(other_slots._states[name][0], in_comfy._states[name][0])]
    assert changed, "the slot picks the LoRA: another slot for garment 0 changes its features"
    for name in in_comfy.site_names:
        torch.testing.assert_close(other_slots._states[name][1], in_comfy._states[name][1], atol=1e-6, rtol=1e-6)


def test_dressing_attention_agrees_across_hosts(world):
    from atelier.models.anydressing.config import DressingConfig
    from atelier.models.anydressing.diffusers_garments import DiffusersGarmentsNet
    from atelier.models.anydressing.dressing_run import DressingRun
    from atelier.models.anydressing.garment_bank import GarmentBank
    from atelier.models.diffusers_host import DiffusersReferenceHost
    from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
    from atelier.nodes.dressing_attachment import DressingAttachment
    from atelier.nodes.reference_attachment import ComfyRun
    from atelier.nodes.reference_source import RunInputs

    g = torch.Generator().manual_seed(2)
    unet = diffusers_unet_from_comfy(world.model)
    config = DressingConfig()
    with torch.no_grad(), DiffusersGarmentsNet(unet, world.modules["garment_lora"], config.sites) as garments_net:
        rows = garments_net.encode(torch.randn(2, 4, LATENT, 6, generator=g), torch.tensor([0, 1]))
    garments = GarmentBank.from_rows(rows, ["upper", "lower"])
    masks = torch.zeros(1, 2, SIZE, SIZE)
    masks[:, 0, :32] = 1
    masks[:, 1, 24:] = 1
    reference = ReferenceConfig(mode=ReadMode.CROSS, strength=1.0, uncond=UncondPolicy.NONE)
    x = torch.randn(2, 4, LATENT, LATENT, generator=g)
    t = torch.tensor([500.0, 500.0])
    context = torch.randn(2, 5, world.context_dim, generator=g)
    projections = world.modules["projections"]

    def new_run():
        return DressingRun(reference, garments, projections, garment_weights=[0.7, 0.4], garment_masks=masks)

    with torch.no_grad(), DiffusersReferenceHost(unet, reference, projections) as host:
        out_d = host.forward(new_run(), x, t, context, cond_or_uncond=[1, 0]).sample
        plain = unet(x, t, encoder_hidden_states=context).sample

    patched = world.model.clone()
    attachment = DressingAttachment(reference, garments, projections, garment_weights=[0.7, 0.4], garment_masks=masks)
    attachment.install(patched)
    run = new_run()
    run.begin_call(2, [1, 0], (LATENT, LATENT), True)
    options = copy.copy(patched.model_options["transformer_options"])
    options[attachment.run_key] = ComfyRun(run, RunInputs(None, 0), math.inf, 0.0)
    options["cond_or_uncond"] = [1, 0]
    with torch.inference_mode():
        out_c = patched.model.diffusion_model(x, timesteps=t, context=context, transformer_options=options)
    scale = out_d.abs().max()
    assert (out_c - out_d).abs().max() <= TOLERANCE * scale
    assert torch.equal(out_d[0], plain[0]) or (out_d[0] - plain[0]).abs().max() <= 1e-5 * scale, "uncond chunk sees no garment"
    assert (out_d[1] - plain[1]).abs().max() > 100 * TOLERANCE * scale


def test_loader_lists_only_dressing_files(world):
    from atelier.nodes.anydressing_nodes import DressingLoaderNode

    options = DressingLoaderNode.define_schema().inputs[0].options
    assert WEIGHTS_NAME in options and "reference_for_dressing_test.safetensors" not in options
    assert "not an AnyDressing weight file" in DressingLoaderNode.validate_inputs(weights="reference_for_dressing_test.safetensors")


def test_encoded_garments_keep_order_sizes_and_categories(two_garments):
    assert two_garments.bank.categories == ("upper", "lower")
    assert two_garments.bank.segments["input_1"] == (64, 80)
    assert two_garments.bank.bank.batch == 1


def test_dressing_changes_the_image_and_strength_zero_does_not(world, two_garments, baseline):
    dressed = run(world, apply(world, two_garments))
    assert (dressed - baseline).abs().max() > 1e-3
    assert torch.equal(run(world, apply(world, two_garments, strength=0.0)), baseline)
    assert torch.equal(run(world, apply(world, two_garments, garment_strengths="0, 0")), baseline)


def test_zero_target_masks_leave_the_image_unchanged(world, two_garments, baseline):
    masked = run(world, apply(world, two_garments, garment_masks=torch.zeros(2, 32, 32)))
    assert (masked - baseline).abs().max() <= 1e-5


def test_per_garment_strengths_match_the_uniform_path(world, two_garments):
    uniform = run(world, apply(world, two_garments, strength=0.5))
    listed = run(world, apply(world, two_garments, strength=0.9, garment_strengths="0.5, 0.5"))
    torch.testing.assert_close(listed, uniform)
    mixed = run(world, apply(world, two_garments, garment_strengths="0.9, 0.1"))
    assert (mixed - uniform).abs().max() > 1e-4


def test_garment_guidance_interpolates_between_the_uncond_policies(world, two_garments):
    cfg = 5.0
    no_garment = run(world, apply(world, two_garments), cfg=cfg)
    same = run(world, apply(world, two_garments, uncond="same"), cfg=cfg)
    assert (no_garment - same).abs().max() > 1e-4
    at_cfg = run(world, apply(world, two_garments, uncond="garment_guidance", garment_guidance=cfg), cfg=cfg)
    assert torch.equal(at_cfg, no_garment), "s_g = ω is plain CFG with an unconditional branch blind to garments"
    at_one = run(world, apply(world, two_garments, uncond="garment_guidance", garment_guidance=1.0), cfg=cfg)
    torch.testing.assert_close(at_one, same, atol=2e-3, rtol=2e-3)  # u' = u_g up to batch-size rounding
    between = run(world, apply(world, two_garments, uncond="garment_guidance", garment_guidance=3.0), cfg=cfg)
    assert (between - same).abs().max() > 1e-4 and (between - no_garment).abs().max() > 1e-4


def test_a_batch_of_latents_wears_the_same_garments(world, two_garments):
    batch = run(world, apply(world, two_garments), batch=2)
    assert batch.shape[0] == 2 and torch.isfinite(batch).all()
    per_latent = torch.ones(4, 16, 16)
    assert torch.isfinite(run(world, apply(world, two_garments, garment_masks=per_latent), batch=2)).all()


def test_bad_inputs_name_what_to_fix(world, two_garments):
    from atelier.models.errors import ReferenceInputError, UnsupportedModelError
    from atelier.models.weight_format import BaseModel

    with pytest.raises(ReferenceInputError, match="'categories'"):
        encode(world, torch.rand(2, SIZE, SIZE, 3), "upper, lower, shoes")
    with pytest.raises(ReferenceInputError, match="has no LoRA slot.*upper"):
        encode(world, world.upper, "scarf")
    with pytest.raises(ReferenceInputError, match="'garment_strengths'"):
        apply(world, two_garments, garment_strengths="0.7, 0.7, 0.7")
    with pytest.raises(ReferenceInputError, match="'garment_masks'"):
        apply(world, two_garments, garment_masks=torch.ones(3, 8, 8))
    with pytest.raises(ReferenceInputError, match="'garments'"):
        encode(world, torch.rand(1, 32, 32, 3), "upper")
    bigger = SimpleNamespace(reader=dataclasses.replace(two_garments.reader, base=BaseModel()), bank=two_garments.bank)
    with pytest.raises(UnsupportedModelError, match="'garments' was made for .*model_channels 320"):
        apply(world, bigger)
    mismatched = apply(world, two_garments, garment_masks=torch.ones(6, 8, 8))
    with pytest.raises(ReferenceInputError, match="mask batch is 3 but the latent batch is 2"):
        run(world, mismatched, batch=2)


def test_garment_masks_at_encode_whiten_the_background(world):
    import comfy.model_management

    comfy.model_management.load_models_gpu([world.model])
    white = torch.ones(1, SIZE, SIZE, 3)
    inside = torch.zeros(1, SIZE, SIZE)
    whitened = encode(world, world.upper, "upper", garment_masks=inside)
    plain_white = encode(world, white, "upper")
    for name in whitened.bank.bank.site_names:
        torch.testing.assert_close(whitened.bank.bank._states[name], plain_white.bank.bank._states[name])


def test_a_trained_file_from_train_anydressing_runs_in_the_nodes(world, comfy_node_registry, tmp_path, baseline):
    """Two toy-world training steps (tiny SD1.5 layout, the test checkpoint's sizes) -> models/atelier/ ->
    Load Dressing -> Encode Garments -> Apply Dressing -> KSampler."""
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.train.anydressing.cli import parse_args, train

    out = tmp_path / "trained"
    train(parse_args(["--size", "32", "--people", "8", "--batch-size", "2", "--garments", "upper,lower", "--rank", "2",
                      "--steps", "2", "--checkpoint-every", "2", "--out", str(out)]))
    folder = tmp_path / "models_atelier"  # a name no other test registers (the workflow test has its own anydressing.safetensors)
    folder.mkdir()
    shutil.copy(out / "anydressing.safetensors", folder / "anydressing_trained_in_test.safetensors")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    trained = world.nodes["AtelierDressingLoader"].execute(weights="anydressing_trained_in_test.safetensors").args[0]
    assert trained.base.model_channels == BASE_CHANNELS and trained.base.context_dim == world.context_dim
    garments = world.nodes["AtelierEncodeGarments"].execute(
        model=world.model, vae=world.vae, dressing=trained, garments=torch.cat([world.upper, world.upper]),
        categories="upper, lower",
    ).args[0]
    dressed = run(world, apply(world, garments))
    assert torch.isfinite(dressed).all() and (dressed - baseline).abs().max() > 1e-4
