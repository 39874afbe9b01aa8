"""MagicClothing / OMS published layout: detection, conversion, errors, settings, the zero-token
unconditional read; and (opt-in, MAGIC_CLOTHING_PATH) equivalence with the public processors."""

from __future__ import annotations

import pytest
import torch
from atelier.models.errors import AtelierError, WeightFileError
from atelier.models.garment_networks import magic_clothing as mc
from atelier.models.garment_networks import stable_garment as sg
from atelier.models.garment_networks.sd15_layout import sd15_parameter_count
from atelier.models.reference_bank import ReferenceBank
from atelier.models.reference_config import ReadMode, ReferenceSize, UncondPolicy
from atelier.models.reference_run import ReferenceRun
from atelier.models.sites import SD15_SITES, SITE_GROUPS
from atelier.models.weight_format import SD15, BaseModel

SMALL = BaseModel(family="sd15", model_channels=32, context_dim=64)


def published_state(base: BaseModel = SMALL, seed: int = 0) -> dict[str, torch.Tensor]:
    """A file with MagicClothing's published keys and shapes (a whole diffusers UNet) at ``base`` width."""
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) for key, shape in mc.sd15_unet_shapes(base).items()}


def test_layout_is_sd15_and_its_size_is_the_published_file_size():
    shapes = mc.sd15_unet_shapes(SD15)
    assert len(shapes) == 686
    assert shapes["conv_in.weight"] == (320, 4, 3, 3)
    assert shapes["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"] == (320, 768)
    assert shapes["up_blocks.1.resnets.2.conv1.weight"] == (1280, 1920, 3, 3)
    assert sd15_parameter_count(SD15) == 859_520_964
    assert round(sd15_parameter_count(SD15) * 4 / 1e9, 2) == 3.44  # fp32 bytes: HF lists 3.44 GB per file
    for site in SD15_SITES:  # every Atelier site's attn1 is in the layout at its width
        assert shapes[f"{site.diffusers_attn1}.to_k.weight"] == (site.channels(320),) * 2


def test_layout_matches_diffusers_unet_key_for_key():
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(block_out_channels=(32, 64, 128, 128), cross_attention_dim=64, attention_head_dim=8)
    expected = {key: tuple(value.shape) for key, value in unet.state_dict().items()}
    assert list(mc.sd15_unet_shapes(SMALL).items()) == list(expected.items())


def test_detection_tells_the_whole_unet_from_other_families():
    state = published_state()
    assert mc.matches(state)
    assert not sg.matches(state)  # a whole UNet is not StableGarment's pruned encoder
    pruned = {key: value for key, value in state.items() if key not in sg.PRUNED_KEYS}
    assert not mc.matches(pruned) and sg.matches(pruned)
    imagdressing = {f"ref_unet.{key}": value for key, value in state.items()}
    imagdressing["adapter_modules.0.to_k_ref.weight"] = torch.zeros(32, 32)
    assert not mc.matches(imagdressing) and not sg.matches(imagdressing)
    assert not mc.matches({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)})
    # keys alone cannot tell MagicClothing from a plain UNet: any complete UNet is read the MagicClothing way


def test_conversion_consumes_every_key_unchanged():
    state = published_state()
    converted = mc.garment_unet_state(state, base=SMALL, source="magic_clothing_768_vitonhd_joint.safetensors")
    assert list(converted) == list(state)
    assert all(converted[key] is state[key] for key in state)


def test_truncated_file_names_the_file_and_the_missing_key():
    state = published_state()
    del state["up_blocks.2.attentions.1.transformer_blocks.0.attn1.to_v.weight"]
    with pytest.raises(WeightFileError) as caught:
        mc.garment_unet_state(state, base=SMALL, source="OMS_1024_VTHD+DressCode_200000.safetensors")
    error = caught.value
    assert isinstance(error, AtelierError) and isinstance(error, mc.GarmentFileError)
    assert error.key == "up_blocks.2.attentions.1.transformer_blocks.0.attn1.to_v.weight"
    assert "OMS_1024_VTHD+DressCode_200000.safetensors" in str(error) and "magic_clothing" in str(error)
    assert "truncated" in str(error)


def test_other_family_and_extra_keys_are_named():
    state = published_state()
    imagdressing = {f"ref_unet.{key}": value for key, value in state.items()}
    with pytest.raises(mc.GarmentFileError) as caught:
        mc.garment_unet_state(imagdressing, base=SMALL, source="IMAGDressing-v1_512.pt")
    assert caught.value.found == "imagdressing" and caught.value.key == "ref_unet.conv_in.weight"
    assert "IMAGDressing-v1_512.pt" in str(caught.value)

    pruned = {key: value for key, value in state.items() if key not in sg.PRUNED_KEYS}
    with pytest.raises(mc.GarmentFileError) as caught:
        mc.garment_unet_state(pruned, base=SMALL, source="garment_encoder/diffusion_pytorch_model.safetensors")
    assert caught.value.found.startswith("stable_garment") and caught.value.key in sg.PRUNED_KEYS

    extra = dict(state, **{"up_blocks.3.attentions.2.transformer_blocks.0.attn1.processor.to_k_ip.weight": torch.zeros(32, 32)})
    with pytest.raises(mc.GarmentFileError) as caught:
        mc.garment_unet_state(extra, base=SMALL)
    assert caught.value.key.endswith("to_k_ip.weight")


def test_wrong_base_size_names_the_key_and_both_sizes():
    wide = published_state(BaseModel(model_channels=64, context_dim=64))
    with pytest.raises(mc.GarmentFileError) as caught:
        mc.garment_unet_state(wide, base=SMALL, source="big.safetensors")
    assert caught.value.key == "conv_in.weight"
    assert "model_channels 64" in caught.value.found and "model_channels 32" in str(caught.value)
    other_context = published_state(BaseModel(model_channels=32, context_dim=96))
    with pytest.raises(mc.GarmentFileError) as caught:
        mc.garment_unet_state(other_context, base=SMALL)
    assert caught.value.key == "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    assert "context_dim 96" in caught.value.found


def test_merge_with_base_fills_what_the_public_loader_fills():
    state = published_state(seed=0)
    base_unet = published_state(seed=1)
    merged, filled = mc.merge_with_base(state, base_unet, base=SMALL)
    assert filled == () and all(merged[key] is state[key] for key in state)
    partial = {key: value for key, value in state.items() if ".attn1." in key or key.startswith("conv_in")}
    merged, filled = mc.merge_with_base(partial, base_unet, base=SMALL, source="attn-only.safetensors")
    assert list(merged) == list(mc.sd15_unet_shapes(SMALL))
    assert set(filled) == set(state) - set(partial)
    assert all(merged[key] is base_unet[key] for key in filled)
    inpainting = dict(base_unet, **{"conv_in.weight": torch.zeros(32, 9, 3, 3)})
    without_conv_in = {key: value for key, value in partial.items() if key != "conv_in.weight"}
    with pytest.raises(mc.GarmentFileError) as caught:
        mc.merge_with_base(without_conv_in, inpainting, base=SMALL)
    assert caught.value.key == "conv_in.weight" and "(32, 9, 3, 3)" in str(caught.value)


def test_settings_are_the_public_defaults_on_atelier_terms():
    read = mc.MAGIC_CLOTHING_768
    assert (read.guidance_scale, read.cloth_guidance_scale, read.cloth_guidance) == (5.0, 2.5, True)
    assert (read.height, read.width, read.steps) == (768, 576, 20)
    assert read.garment_pass == mc.GarmentPass(timestep="zero", every_step=False, prompt="")
    config = read.reference_config()
    assert config.mode == ReadMode.CONCAT and config.strength == 1.0
    assert config.enabled_site_names == SITE_GROUPS["all"]
    assert config.uncond == UncondPolicy.ZERO and config.reference_size == ReferenceSize.RESIZE_TO_LATENT
    assert not mc.MAGIC_CLOTHING_512.cloth_guidance
    with pytest.raises(AttributeError):
        read.strength = 2.0  # frozen


def test_cloth_guidance_is_the_public_formula_and_garment_guidance_blend():
    generator = torch.Generator().manual_seed(0)
    uncond, cloth, text = (torch.randn(2, 4, 3, 3, generator=generator) for _ in range(3))
    guided = mc.cloth_guidance(uncond, cloth, text, 5.0, 2.5)
    torch.testing.assert_close(guided, uncond + 5.0 * (text - cloth) + 2.5 * (cloth - uncond))
    # AnyDressing's pre-CFG blend (nodes/dressing_attachment.py) with s_g = g_c, ω = g gives the same
    blended_uncond = ((1 - 2.5) * uncond + (2.5 - 5.0) * cloth) / (1 - 5.0)
    torch.testing.assert_close(blended_uncond + 5.0 * (text - blended_uncond), guided)


def _bank(rows: int = 1, tokens: int = 16) -> ReferenceBank:
    bank = ReferenceBank()
    generator = torch.Generator().manual_seed(3)
    for site in SD15_SITES:
        bank.store(site, torch.randn(rows, tokens, site.channels(32), generator=generator))
    return bank


def test_zero_policy_zeroes_the_unconditional_chunks_reference_tokens_only():
    bank = _bank()
    run = ReferenceRun(mc.MagicClothingRead().reference_config())
    run.set_bank(bank)
    site = SD15_SITES[0]

    def project(states):
        return states * 2.0, states * 3.0

    run.begin_call(4, [1, 0], (4, 4), True)  # uncond chunk first, latent batch 2
    k_ref, v_ref = run.reference_kv(site, project)
    assert not k_ref[:2].any() and not v_ref[:2].any()
    torch.testing.assert_close(k_ref[2:], (bank.get(site) * 2.0).expand(2, -1, -1))
    run.begin_call(2, [1], (4, 4), True, uncond=UncondPolicy.SAME)  # the cloth pass: negative prompt + garment
    k_ref, _ = run.reference_kv(site, project)
    torch.testing.assert_close(k_ref, (bank.get(site) * 2.0).expand(2, -1, -1))


# --- opt-in: the public code -----------------------------------------------------------------------

from magic_clothing_public import ENV, checkout

requires_public = pytest.mark.skipif(checkout() is None, reason=f"{ENV} is not set: no public MagicClothing checkout")


@requires_public
def test_public_concat_read_equals_atelier_concat():
    import magic_clothing_public as public
    from diffusers.models.attention_processor import Attention

    processors = public.import_processors(checkout())
    torch.manual_seed(0)
    attn = Attention(query_dim=64, heads=8, dim_head=8).eval()
    garment = torch.randn(2, 48, 64)
    for chunks in (1, 2, 3):
        hidden = torch.randn(chunks * 2, 48, 64)
        theirs = public.public_layer_read(processors, attn, hidden, garment, chunks)
        ours = public.atelier_layer_read(attn, hidden, garment, chunks)
        diff = (theirs - ours).abs().max().item()
        print(f"layer read, {chunks} chunk(s): max |public - atelier| = {diff:.3g}")
        assert diff < 1e-5
    # chunk(2) splits at half the joined tokens: a garment of another size breaks the public read
    assert public.public_layer_read(processors, attn, torch.randn(2, 48, 64), garment[:, :32]).shape[1] == 40


@requires_public
def test_public_cloth_guidance_step_equals_atelier():
    import magic_clothing_public as public
    import safetensors.torch
    from atelier.train.tiny import tiny_unet
    from diffusers import UNet2DConditionModel

    processors = public.import_processors(checkout())
    pipeline_unet = tiny_unet(seed=0).eval()
    garment_trained = tiny_unet(seed=5).state_dict()  # a differently initialised garment UNet, saved as published
    file_state = safetensors.torch.load(safetensors.torch.save(garment_trained))
    garment_state = mc.garment_unet_state(file_state, base=SMALL, source="tiny magic_clothing file")
    atelier_garment = UNet2DConditionModel.from_config(pipeline_unet.config).eval()
    atelier_garment.load_state_dict(garment_state, strict=True)
    generator = torch.Generator().manual_seed(7)
    garment_latent, latents = torch.randn(2, 1, 4, 16, 8, generator=generator)
    null, negative, positive = torch.randn(3, 1, 77, 64, generator=generator)
    timestep = torch.tensor([501])
    theirs = public.public_step(public.public_garment_unet(processors, pipeline_unet, file_state),
                                public.public_denoiser(processors, pipeline_unet), garment_latent, null, latents,
                                timestep, negative, positive, 5.0, 2.5)
    ours = public.atelier_step(atelier_garment, pipeline_unet, garment_latent, null, latents, timestep, negative,
                               positive, 5.0, 2.5)
    for name in ("uncond", "cloth", "text", "guided"):
        diff = (theirs[name] - ours[name]).abs().max().item()
        print(f"UNet step, {name}: max |public - atelier| = {diff:.3g} (scale {theirs[name].abs().max().item():.3g})")
        assert diff < 1e-4
    # the zero tokens are neither the garment nor "no garment" (they dilute the self-attention)
    with torch.no_grad():
        plain = pipeline_unet(latents, timestep, encoder_hidden_states=negative).sample
    print(f"uncond with zero tokens vs no garment: max diff {(theirs['uncond'] - plain).abs().max().item():.3g}")
    assert (theirs["uncond"] - theirs["cloth"]).abs().max() > 1e-2
    assert (theirs["uncond"] - plain).abs().max() > 1e-3
