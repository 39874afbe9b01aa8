"""One weight file, one result: the same random SD1.5-shaped UNet and the same reference settings in
diffusers (the training host) and in ComfyUI (converted with ComfyUI's own key mapping). Needs COMFYUI_PATH."""

import copy
import math

import pytest
import torch

from comfy_fixtures import diffusers_unet_from_comfy, requires_comfyui

pytestmark = [requires_comfyui]

LATENT = 8
TOLERANCE = 2e-4


@pytest.fixture(scope="module")
def hosts(tiny_sd15):
    model = tiny_sd15[0]
    return model, diffusers_unet_from_comfy(model)


@pytest.fixture(scope="module")
def inputs(tiny_sd15):
    g = torch.Generator().manual_seed(11)
    context_dim = tiny_sd15[0].model.diffusion_model.input_blocks[1][1].transformer_blocks[0].attn2.to_k.in_features
    return {
        "reference": torch.randn(1, 4, LATENT, LATENT, generator=g),
        "x": torch.randn(2, 4, LATENT, LATENT, generator=g),
        "context": torch.randn(2, 7, context_dim, generator=g),
        "t": torch.tensor([420.0, 420.0]),
    }


def comfy_output(model, config, inputs, mask=None, projections=None, cond_or_uncond=(1, 0)):
    from atelier.models.reference_bank import ReferenceBank
    from atelier.models.reference_config import Refresh, ReferenceSize
    from atelier.models.reference_run import ReferenceRun
    from atelier.nodes.reference_attachment import ComfyRun, ReferenceAttachment
    from atelier.nodes.reference_patch import ReferenceWritePatch
    from atelier.nodes.reference_source import RunInputs, SameModelReference

    patched = model.clone()
    source = SameModelReference(inputs["reference"], config.enabled_site_names, Refresh.ONCE, ReferenceSize.AS_IS)
    attachment = ReferenceAttachment(config, source, projections=projections)
    attachment.install(patched)
    unet = patched.model.diffusion_model
    with torch.inference_mode():
        bank = ReferenceBank()
        write = {"patches": {"attn1_patch": [ReferenceWritePatch(bank, config.enabled_site_names)]}}
        unet(inputs["reference"], timesteps=torch.zeros(1), context=inputs["context"][:1], transformer_options=write)
        run = ReferenceRun(config, mask=mask, projections=projections)
        run.set_bank(bank)
        run.begin_call(2, list(cond_or_uncond), (LATENT, LATENT), True)
        options = copy.copy(patched.model_options["transformer_options"])
        options[attachment.run_key] = ComfyRun(run, RunInputs(None, 0), math.inf, 0.0)
        options["cond_or_uncond"] = list(cond_or_uncond)
        out = unet(inputs["x"], timesteps=inputs["t"], context=inputs["context"], transformer_options=options)
    return out, bank


def diffusers_output(unet, config, inputs, mask=None, projections=None, cond_or_uncond=(1, 0)):
    from atelier.models.diffusers_host import DiffusersReferenceHost

    with torch.no_grad(), DiffusersReferenceHost(unet, config, projections) as host:
        bank = host.capture(inputs["reference"], torch.zeros(1), inputs["context"][:1])
        run = host.new_run(bank, mask=mask)
        out = host.forward(run, inputs["x"], inputs["t"], inputs["context"], cond_or_uncond=cond_or_uncond).sample
    return out, bank


def assert_same(comfy, diffusers):
    out_c, bank_c = comfy
    out_d, bank_d = diffusers
    assert bank_c.site_names == bank_d.site_names
    for name in bank_c.site_names:
        torch.testing.assert_close(bank_c._states[name], bank_d._states[name], atol=TOLERANCE, rtol=TOLERANCE)
    scale = out_d.abs().max()
    assert (out_c - out_d).abs().max() <= TOLERANCE * scale


def test_unpatched_unets_agree(hosts, inputs):
    model, unet = hosts
    with torch.inference_mode():
        out_c = model.model.diffusion_model(inputs["x"], timesteps=inputs["t"], context=inputs["context"])
        out_d = unet(inputs["x"], inputs["t"], encoder_hidden_states=inputs["context"]).sample
    assert (out_c - out_d).abs().max() <= TOLERANCE * out_d.abs().max()


@pytest.mark.parametrize("mode, uncond, masked", [
    ("concat", "same", False),
    ("concat", "none", True),
    ("cross", "same", False),
    ("cross", "none", True),
])
def test_reference_attention_agrees_across_hosts(hosts, inputs, mode, uncond, masked):
    from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy

    model, unet = hosts
    config = ReferenceConfig(mode=ReadMode(mode), strength=0.8, uncond=UncondPolicy(uncond))
    mask = None
    if masked:
        mask = torch.zeros(1, 64, 64)
        mask[:, 16:48, 8:40] = 1
    comfy = comfy_output(model, config, inputs, mask=mask)
    diffusers = diffusers_output(unet, config, inputs, mask=mask)
    assert_same(comfy, diffusers)
    plain = diffusers_output(unet, ReferenceConfig(strength=0.0), inputs)[0]
    assert (diffusers[0] - plain).abs().max() > 100 * TOLERANCE * plain.abs().max()


def test_a_weight_file_gives_the_same_output_in_both_hosts(hosts, inputs, tmp_path):
    from atelier.models.reference_config import ReadMode, ReferenceConfig
    from atelier.models.weight_format import BaseModel
    from atelier.models.weight_systems import REFERENCE
    from atelier.models.weights import export_untrained, load_weight_file

    model, unet = hosts
    base = BaseModel(model_channels=32, context_dim=inputs["context"].shape[-1])
    path = str(tmp_path / "reference.safetensors")
    export_untrained(path, REFERENCE, base)
    config = ReferenceConfig(mode=ReadMode.CROSS, strength=0.6)
    comfy = comfy_output(model, config, inputs, projections=load_weight_file(path, "reference", base).modules["projections"])
    diffusers = diffusers_output(unet, config, inputs, projections=load_weight_file(path, "reference", base).modules["projections"])
    assert_same(comfy, diffusers)


def test_lora_patched_weights_are_used_for_the_reference(hosts, inputs):
    """A weight patch (as LoraLoader adds) on a site's to_k/to_v must reach the bank's K/V too."""
    import comfy.model_management
    from atelier.models.reference_config import ReferenceConfig

    model, plain_unet = hosts
    patched = model.clone()
    attn1 = "diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1"
    g = torch.Generator().manual_seed(5)
    patches = {}
    for name in ("to_k", "to_v"):
        weight = patched.model.diffusion_model.get_submodule(f"input_blocks.1.1.transformer_blocks.0.attn1.{name}").weight
        patches[f"{attn1}.{name}.weight"] = (0.5 * torch.randn(weight.shape, generator=g),)
    assert len(patched.add_patches(patches, 1.0, 1.0)) == 2
    config = ReferenceConfig.for_group("input", strength=1.0)
    comfy.model_management.load_models_gpu([patched])
    try:
        lora_unet = diffusers_unet_from_comfy(patched)
        in_comfyui = comfy_output(patched, config, inputs)
        assert_same(in_comfyui, diffusers_output(lora_unet, config, inputs))
        without_lora = diffusers_output(plain_unet, config, inputs)[0]
        assert (in_comfyui[0] - without_lora).abs().max() > 100 * TOLERANCE * without_lora.abs().max()
    finally:
        comfy.model_management.unload_all_models()
