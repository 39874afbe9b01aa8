"""IGR try-off inside a real ComfyUI (tiny SD1.5-shaped checkpoint, tiny CLIP vision, CPU): GarmNet's
pass and GarmFus agree with the diffusers host for the same weights, and the nodes work end to end
through the sampler. Needs COMFYUI_PATH."""

import copy
import json
import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from comfy_fixtures import (
    TINY_CLIP_VISION,
    diffusers_unet_from_comfy,
    requires_comfyui,
    sample,
    tiny_clip_vision,
)

pytestmark = [requires_comfyui]

PERSON_H, PERSON_W = 96, 64
TOLERANCE = 2e-4
BASE_CHANNELS = 32
WEIGHTS_NAME = "igr_tiny.safetensors"
IP_ONLY_NAME = "igr_tiny_ip_only.safetensors"
def random_igr_modules(context_dim: int, seed: int = 0, **config_overrides):
    """GarmNet with non-zero LoRA B and mask channel (a fresh file's are zero) and a random IP-Adapter."""
    from atelier.models.igr.config import IGRConfig
    from atelier.models.igr.spec import IGR
    from atelier.models.weight_format import BaseModel

    base = BaseModel(model_channels=BASE_CHANNELS, context_dim=context_dim)
    config = IGRConfig(image_embed_dim=TINY_CLIP_VISION["projection_dim"], **config_overrides).to_dict()
    torch.manual_seed(seed)
    modules = IGR.build(config, base)
    with torch.no_grad():
        for parameter in modules["garmnet"].lora.up.values():
            parameter.normal_(0.0, 0.05)
        modules["garmnet"].mask_in.weight.normal_(0.0, 0.1)
    return base, config, modules


@pytest.fixture(scope="module")
def world(tiny_sd15, comfy_server_nodes, comfy_node_registry, tmp_path_factory):
    from atelier.models.igr.spec import IGR
    from atelier.models.weight_format import BaseModel
    from atelier.models.weight_systems import REFERENCE
    from atelier.models.weights import export_untrained, save_weight_file
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.nodes.igr_nodes import NODES

    nodes = {node.define_schema().node_id: node for node in NODES}
    model, clip, vae = tiny_sd15
    context_dim = model.model.model_config.unet_config["context_dim"]
    folder = tmp_path_factory.mktemp("igr_weights")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    base, config, modules = random_igr_modules(context_dim)
    save_weight_file(str(folder / WEIGHTS_NAME), IGR, base, config, modules)
    ip_base, ip_config, ip_modules = random_igr_modules(context_dim, high_level=False)
    save_weight_file(str(folder / IP_ONLY_NAME), IGR, ip_base, ip_config, ip_modules)
    export_untrained(str(folder / "reference_for_igr_test.safetensors"), REFERENCE, base)
    other_base = BaseModel(model_channels=BASE_CHANNELS * 2, context_dim=context_dim)
    export_untrained(str(folder / "igr_other_base.safetensors"), IGR, other_base)
    g = torch.Generator().manual_seed(4)
    person = torch.rand(2, PERSON_H, PERSON_W, 3, generator=g)
    mask = torch.zeros(2, PERSON_H, PERSON_W)
    mask[0, 20:60, 10:50] = 1.0
    mask[1, 30:90, 16:48] = 1.0
    return SimpleNamespace(
        model=model, clip=clip, vae=vae, context_dim=context_dim, modules=modules, nodes=nodes,
        clip_vision=tiny_clip_vision(tmp_path_factory.mktemp("clip_vision")), person=person, mask=mask,
        narrow_clip_vision=tiny_clip_vision(tmp_path_factory.mktemp("clip_vision"), projection_dim=16),
        other_base=nodes["AtelierIGRLoader"].execute(weights="igr_other_base.safetensors").args[0],
    )


def load(world, name=WEIGHTS_NAME):
    return world.nodes["AtelierIGRLoader"].execute(weights=name).args[0]


def restore(world, **overrides):
    inputs = dict(model=world.model, clip=world.clip, vae=world.vae, igr=load(world), person=world.person,
                  garment_mask=world.mask, category="upper", high_level_strength=1.0, low_level_strength=1.0,
                  width=64, height=64, start_percent=0.0, end_percent=1.0, clip_vision=world.clip_vision)
    inputs.update(overrides)
    return world.nodes["AtelierGarmentRestoration"].execute(**inputs).args


def run(model, positive, negative, latent, *, cfg=1.5, seed=0):
    return sample(model, positive, negative, latent, steps=2, cfg=cfg, seed=seed)


@pytest.fixture(scope="module")
def restored(world):
    return restore(world)


@pytest.fixture(scope="module")
def baseline(world, restored):
    _, positive, negative, latent = restored
    return run(world.model, positive, negative, latent)


def test_garmnet_pass_agrees_across_hosts(world):
    import comfy.model_management
    from atelier.models.igr.config import IGRConfig
    from atelier.models.igr.diffusers_igr import DiffusersIGRHost
    from atelier.models.igr.garmnet import mask_to_latent
    from atelier.models.reference_config import ReadMode, ReferenceConfig
    from atelier.nodes.igr_garmnet import run_garmnet

    sites = IGRConfig().sites
    garmnet = world.modules["garmnet"]
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(2, 4, 12, 8, generator=g)
    mask_latent = mask_to_latent(world.mask, (12, 8))
    context = torch.randn(2, 5, world.context_dim, generator=g)
    comfy.model_management.load_models_gpu([world.model])
    in_comfy = run_garmnet(world.model.model, latents, mask_latent, garmnet, sites, context)
    unet = diffusers_unet_from_comfy(world.model)
    reference = ReferenceConfig(mode=ReadMode.CONCAT)
    with torch.no_grad(), DiffusersIGRHost(unet, garmnet, None, reference) as host:
        in_diffusers = host.garmnet_pass(world.model.model.process_latent_in(latents), mask_latent, context)
    assert in_comfy.site_names == in_diffusers.site_names and len(in_comfy) == 16
    for name in in_comfy.site_names:
        torch.testing.assert_close(in_comfy._states[name], in_diffusers._states[name], atol=TOLERANCE, rtol=TOLERANCE)
    with torch.no_grad():
        no_mask = run_garmnet(world.model.model, latents, torch.zeros_like(mask_latent), garmnet, sites, context)
    assert not torch.allclose(no_mask._states["input_1"], in_comfy._states["input_1"]), "the mask channel feeds GarmNet"


def test_garmfus_agrees_across_hosts(world):
    from atelier.models.igr.diffusers_igr import DiffusersIGRHost
    from atelier.models.igr.igr_run import IGRRun
    from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
    from atelier.nodes.igr_attachment import IGRAttachment
    from atelier.nodes.reference_attachment import ComfyRun
    from atelier.nodes.reference_source import RunInputs

    g = torch.Generator().manual_seed(2)
    unet = diffusers_unet_from_comfy(world.model)
    garmnet, adapter = world.modules["garmnet"], world.modules["ip_adapter"]
    reference = ReferenceConfig(mode=ReadMode.CONCAT, strength=1.0, uncond=UncondPolicy.NONE)
    with torch.no_grad(), DiffusersIGRHost(unet, garmnet, adapter, reference) as host:
        bank = host.garmnet_pass(torch.randn(2, 4, 12, 8, generator=g), torch.rand(2, 1, 12, 8, generator=g),
                                 torch.randn(2, 5, world.context_dim, generator=g))
        tokens = adapter.tokens(torch.randn(2, TINY_CLIP_VISION["projection_dim"], generator=g))
        x = torch.randn(4, 4, 8, 8, generator=g)
        t = torch.full((4,), 500.0)
        context = torch.randn(4, 5, world.context_dim, generator=g)
        out_d = host.forward(host.new_run(bank, tokens, 0.8), x, t, context, cond_or_uncond=[1, 0]).sample
        plain = unet(x, t, encoder_hidden_states=context).sample

    patched = world.model.clone()
    attachment = IGRAttachment(reference, bank, adapter, tokens, 0.8)
    attachment.install(patched)
    run_ = attachment.new_run(torch.device("cpu"))
    assert isinstance(run_, IGRRun)
    run_.begin_call(4, [1, 0], (8, 8), True)
    options = copy.copy(patched.model_options["transformer_options"])
    options[attachment.run_key] = ComfyRun(run_, RunInputs(None, 0), math.inf, 0.0)
    options["cond_or_uncond"] = [1, 0]
    with torch.inference_mode():
        out_c = patched.model.diffusion_model(x, timesteps=t, context=context, transformer_options=options)
    scale = out_d.abs().max()
    assert (out_c - out_d).abs().max() <= TOLERANCE * scale
    assert (out_d[:2] - plain[:2]).abs().max() <= 1e-5 * scale, "the uncond chunk sees no garment features"
    assert (out_d[2:] - plain[2:]).abs().max() > 100 * TOLERANCE * scale


def test_loader_lists_only_igr_files(world):
    from atelier.nodes.igr_nodes import IGRLoaderNode

    options = IGRLoaderNode.define_schema().inputs[0].options
    assert WEIGHTS_NAME in options and "reference_for_igr_test.safetensors" not in options
    assert "not an IGR weight file" in IGRLoaderNode.validate_inputs(weights="reference_for_igr_test.safetensors")


def test_restoration_outputs_what_the_sampler_needs(world, restored):
    model, positive, negative, latent = restored
    assert latent["samples"].shape == (2, 4, 8, 8)
    assert positive[0][0].shape[-1] == world.context_dim and negative[0][0].shape[-1] == world.context_dim
    assert not torch.equal(positive[0][0], negative[0][0])
    assert model is not world.model


def test_restoration_changes_the_sample_and_zero_strengths_do_not(world, restored, baseline):
    model, positive, negative, latent = restored
    restored_sample = run(model, positive, negative, latent)
    assert (restored_sample - baseline).abs().max() > 1e-3
    off, *_ = restore(world, high_level_strength=0.0, low_level_strength=0.0)
    assert torch.equal(run(off, positive, negative, latent), baseline)
    high_only, *_ = restore(world, low_level_strength=0.0, clip_vision=None)
    low_only, *_ = restore(world, high_level_strength=0.0)
    for single in (high_only, low_only):
        result = run(single, positive, negative, latent)
        assert (result - baseline).abs().max() > 1e-4 and (result - restored_sample).abs().max() > 1e-4


def test_each_person_restores_its_own_garment(world, restored):
    """Row 1 of a batch of two persons equals person 1 restored alone (same noise via batch_index)."""
    model, positive, negative, latent = restored
    both = run(model, positive, negative, latent, seed=5)
    second, _, _, single = restore(world, person=world.person[1:], garment_mask=world.mask[1:])
    alone = run(second, positive, negative, dict(single, batch_index=[1]), seed=5)
    torch.testing.assert_close(alone[0], both[1], atol=1e-4, rtol=1e-4)
    first, *_ = restore(world, person=world.person[:1], garment_mask=world.mask[:1])
    other = run(first, positive, negative, dict(single, batch_index=[1]), seed=5)
    assert (other[0] - both[1]).abs().max() > 1e-3


def test_ip_only_weights_run_without_garmnet(world, baseline, restored):
    _, positive, negative, latent = restored
    ip_only = load(world, IP_ONLY_NAME)
    model, *_ = restore(world, igr=ip_only, high_level_strength=0.0)
    assert (run(model, positive, negative, latent) - baseline).abs().max() > 1e-4
    with pytest.raises(ValueError, match="high_level_strength"):
        restore(world, igr=ip_only)


def test_bad_inputs_name_what_to_fix(world):
    from atelier.models.errors import ReferenceInputError, UnsupportedModelError

    with pytest.raises(ReferenceInputError, match="'garment_mask' holds 3 masks for 2 person"):
        restore(world, garment_mask=torch.ones(3, PERSON_H, PERSON_W))
    with pytest.raises(ReferenceInputError, match="'garment_mask' is 64×64 px but 'person' is 64×96"):
        restore(world, garment_mask=torch.ones(1, 64, 64))
    with pytest.raises(ReferenceInputError, match=r"'garment_mask' row\(s\) \[1\]"):
        restore(world, garment_mask=torch.stack([world.mask[0], torch.zeros(PERSON_H, PERSON_W)]))
    with pytest.raises(ReferenceInputError, match="'clip_vision' is not connected"):
        restore(world, clip_vision=None)
    with pytest.raises(ReferenceInputError, match="'person'"):
        restore(world, person=torch.rand(1, 32, 32, 3), garment_mask=torch.ones(1, 32, 32))
    with pytest.raises(UnsupportedModelError, match="'clip_vision' gives 16-wide"):
        restore(world, clip_vision=world.narrow_clip_vision)
    with pytest.raises(UnsupportedModelError, match="'igr' was made for"):
        restore(world, igr=world.other_base)


def test_a_mask_at_another_resolution_is_resized(world):
    from atelier.nodes.igr_inputs import person_masks

    half = world.mask[:, ::2, ::2]  # (2, 48, 32): the same masks at half resolution
    resized = person_masks(half, world.person)
    assert resized.shape == world.mask.shape
    assert ((resized > 0.5) != (world.mask > 0.5)).float().mean() < 0.03
    shared = person_masks(world.mask[:1], world.person)
    assert shared.shape == world.mask.shape and torch.equal(shared[1], world.mask[0])


def test_garment_mask_from_parsing(world):
    from atelier.models.labels import LIP_LABELS, LIP_PALETTE

    labels = np.zeros((32, 24), dtype=np.int64)
    labels[4:16, 4:20] = LIP_LABELS.index("upper_clothes")
    labels[16:30, 6:18] = LIP_LABELS.index("pants")
    labels[0:4, 8:16] = LIP_LABELS.index("face")
    image = torch.from_numpy(np.asarray(LIP_PALETTE, dtype=np.float32)[labels] / 255.0).unsqueeze(0)
    node = world.nodes["AtelierGarmentMaskFromParsing"]
    upper = node.execute(parsing=image, label_set="lip", category="upper", region="garment").args[0]
    assert upper.shape == (1, 32, 24)
    assert torch.equal(upper[0].bool(), torch.from_numpy(labels == LIP_LABELS.index("upper_clothes")))
    agnostic = node.execute(parsing=image, label_set="lip", category="lower", region="agnostic").args[0]
    assert bool(agnostic[0, 20, 10]) and not bool(agnostic[0, 1, 10]) and agnostic.sum() >= (labels == 9).sum()
    with pytest.raises(ValueError, match="palette"):
        node.execute(parsing=image * 0.5 + 0.01, label_set="lip", category="upper", region="garment")


def test_a_trained_file_from_train_igr_runs_in_the_nodes(world, comfy_node_registry, tmp_path, restored, baseline):
    """Two toy-world training steps (tiny SD1.5 layout, the test checkpoint's sizes) -> models/atelier/ and
    the denoiser LoRA through the core LoRA loader -> Load IGR -> Garment Restoration -> KSampler."""
    import comfy.clip_vision
    import comfy.sd
    import comfy.utils
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.train.igr.cli import parse_args, train
    from atelier.train.igr.components import tiny_image_encoder

    out = tmp_path / "trained"
    threads = torch.get_num_threads()
    try:  # one thread: the tiny models crawl with two on a busy shared CPU
        train(parse_args(["--person-size", "32", "--people", "6", "--batch-size", "2", "--denoiser-rank", "2",
                          "--garmnet-rank", "2", "--ip-tokens", "2", "--steps", "2", "--checkpoint-every", "0",
                          "--threads", "1", "--out", str(out)]))
    finally:
        torch.set_num_threads(threads)
    folder = tmp_path / "models_atelier"  # a name no other test registers (the workflow test has its own igr.safetensors)
    folder.mkdir()
    shutil.copy(out / "igr.safetensors", folder / "igr_trained_in_test.safetensors")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    trained = world.nodes["AtelierIGRLoader"].execute(weights="igr_trained_in_test.safetensors").args[0]
    assert trained.base.model_channels == BASE_CHANNELS and trained.base.context_dim == world.context_dim
    encoder = tiny_image_encoder().model
    config = dict(encoder.config.to_dict(), model_type="clip_vision_model")
    config_path = tmp_path / "trained_clip_vision.json"
    config_path.write_text(json.dumps({key: value for key, value in config.items() if isinstance(value, int | float | str)}))
    clip_vision = comfy.clip_vision.ClipVisionModel(str(config_path))
    missing, _ = clip_vision.load_sd(encoder.state_dict())
    assert not missing
    lora = comfy.utils.load_torch_file(str(out / "igr_denoiser_lora.safetensors"))
    model, _ = comfy.sd.load_lora_for_models(world.model, None, lora, 1.0, 0.0)
    patched, positive, negative, latent = restore(world, model=model, igr=trained, clip_vision=clip_vision)
    result = run(patched, positive, negative, latent)
    assert torch.isfinite(result).all() and (result - baseline).abs().max() > 1e-4
