"""StableGarment text2img published layout: detection, conversion, errors, settings, the extra
output bias; and (opt-in, STABLE_GARMENT_PATH) equivalence with the public garment encoder and read."""

from __future__ import annotations

import pytest
import torch
from atelier.models.errors import AtelierError, WeightFileError
from atelier.models.garment_networks import magic_clothing as mc
from atelier.models.garment_networks import stable_garment as sg
from atelier.models.reference_config import ReadMode, Refresh, UncondPolicy
from atelier.models.row_plan import plan_rows
from atelier.models.sites import SITE_GROUPS
from atelier.models.weight_format import BaseModel

SMALL = BaseModel(family="sd15", model_channels=32, context_dim=64)


def published_state(base: BaseModel = SMALL, seed: int = 0) -> dict[str, torch.Tensor]:
    """A file with the published garment encoder's keys and shapes (the UNet less PRUNED_KEYS)."""
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator)
            for key, shape in mc.sd15_unet_shapes(base).items() if key not in sg.PRUNED_KEYS}


def test_pruned_keys_are_the_last_block_tail_and_conv_out():
    shapes = mc.sd15_unet_shapes(SMALL)
    assert len(sg.PRUNED_KEYS) == len(set(sg.PRUNED_KEYS)) == 24 and set(sg.PRUNED_KEYS) <= set(shapes)
    assert len(published_state()) == 662
    kept = set(published_state())
    # every banked input survives: the last site's norm1 (its attn1 input) is kept, its attn1 is not
    assert "up_blocks.3.attentions.2.transformer_blocks.0.norm1.weight" in kept
    assert "up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_q.weight" not in kept
    assert all(key.startswith(("up_blocks.3.attentions.2.", "conv_norm_out.", "conv_out.")) for key in sg.PRUNED_KEYS)


def test_detection():
    state = published_state()
    assert sg.matches(state) and not mc.matches(state)
    whole = {key: torch.zeros(shape) for key, shape in mc.sd15_unet_shapes(SMALL).items()}
    assert not sg.matches(whole)  # a whole UNet (MagicClothing, plain) is not the pruned encoder
    assert not sg.matches({f"ref_unet.{key}": value for key, value in state.items()})
    assert sg.matches_config({"_class_name": "GarmentEncoderModel", "_diffusers_version": "0.27.2"})
    assert not sg.matches_config({"_class_name": "UNet2DConditionModel"})


def test_conversion_keeps_every_tensor_and_zero_fills_the_pruned_tail():
    state = published_state()
    converted = sg.garment_unet_state(state, base=SMALL, source="garment_encoder/diffusion_pytorch_model.safetensors")
    assert list(converted) == list(mc.sd15_unet_shapes(SMALL))
    assert all(converted[key] is state[key] for key in state)
    assert all(not converted[key].any() and converted[key].dtype == state["conv_in.weight"].dtype for key in sg.PRUNED_KEYS)
    whole = sg.garment_unet_state(dict(state, **{key: torch.ones(shape) for key, shape in mc.sd15_unet_shapes(SMALL).items()
                                                 if key in sg.PRUNED_KEYS}), base=SMALL)
    assert all(whole[key].eq(1).all() for key in sg.PRUNED_KEYS)  # a whole encoder keeps its own tail


def test_errors_name_the_file_the_family_and_the_key():
    state = published_state()
    truncated = {key: value for key, value in state.items() if key != "mid_block.attentions.0.transformer_blocks.0.attn1.to_k.weight"}
    with pytest.raises(WeightFileError) as caught:
        sg.garment_unet_state(truncated, base=SMALL, source="garment_encoder/diffusion_pytorch_model.safetensors")
    assert isinstance(caught.value, AtelierError) and isinstance(caught.value, mc.GarmentFileError)
    assert caught.value.key == "mid_block.attentions.0.transformer_blocks.0.attn1.to_k.weight"
    assert "garment_encoder/diffusion_pytorch_model.safetensors" in str(caught.value) and "stable_garment" in str(caught.value)
    imagdressing = {f"ref_unet.{key}": value for key, value in state.items()}
    with pytest.raises(mc.GarmentFileError) as caught:
        sg.garment_unet_state(imagdressing, base=SMALL, source="IMAGDressing-v1_512.pt")
    assert caught.value.found == "imagdressing" and caught.value.expected == "stable_garment"
    wide = published_state(BaseModel(model_channels=64, context_dim=64))
    with pytest.raises(mc.GarmentFileError) as caught:
        sg.garment_unet_state(wide, base=SMALL)
    assert caught.value.key == "conv_in.weight" and "model_channels 64" in caught.value.found


def test_merge_with_base_takes_only_the_pruned_tail():
    state = published_state(seed=0)
    base_unet = {key: torch.randn(shape) for key, shape in mc.sd15_unet_shapes(SMALL).items()}
    merged, filled = sg.merge_with_base(state, base_unet, base=SMALL)
    assert set(filled) == set(sg.PRUNED_KEYS) and all(merged[key] is base_unet[key] for key in filled)
    missing_other = {key: value for key, value in state.items() if key != "conv_in.weight"}
    with pytest.raises(mc.GarmentFileError) as caught:
        sg.merge_with_base(missing_other, base_unet, base=SMALL)
    assert caught.value.key == "conv_in.weight"


def test_settings_are_the_public_text2img_defaults():
    read = sg.STABLE_GARMENT_T2I
    assert read.mode == ReadMode.CROSS and read.strength == 1.0 and read.adds_output_bias
    assert read.sites == SITE_GROUPS["middle+output"] and len(read.sites) == 10
    assert read.garment_pass == mc.GarmentPass(timestep="current", every_step=True, prompt="")
    assert (read.guidance_scale, read.steps, read.height, read.width) == (4.0, 30, 512, 384)
    config = read.reference_config()
    assert config.uncond == UncondPolicy.NONE and config.refresh == Refresh.EVERY_STEP
    assert config.enabled_site_names == SITE_GROUPS["middle+output"]


def test_add_output_bias_touches_only_reading_rows_inside_the_mask():
    out = torch.zeros(4, 6, 8)
    bias = torch.arange(8.0)
    plan = plan_rows(4, [1, 0], 1, UncondPolicy.NONE)  # rows 2, 3 (the cond chunk) read
    biased = sg.add_output_bias(out, bias, plan)
    assert not biased[:2].any() and torch.equal(biased[2:], bias.expand(2, 6, 8))
    mask = torch.zeros(2, 6, 1)
    mask[:, :3] = 1.0
    masked = sg.add_output_bias(out, bias, plan, query_mask=mask, scale=0.5)
    assert not masked[2:, 3:].any() and torch.equal(masked[2:, :3], 0.5 * bias.expand(2, 3, 8))
    assert sg.add_output_bias(out, bias, plan_rows(2, [1], 1, UncondPolicy.NONE)) is out


# --- opt-in: the public code -----------------------------------------------------------------------

from stable_garment_public import ENV, checkout

requires_public = pytest.mark.skipif(checkout() is None, reason=f"{ENV} is not set: no public StableGarment checkout")


@requires_public
def test_public_garment_encoder_layout_is_the_published_layout():
    import stable_garment_public as public

    encoder_module, _ = public.import_public(checkout())
    encoder = encoder_module.GarmentEncoderModel(sample_size=8, block_out_channels=(32, 64, 128, 128),
                                                 cross_attention_dim=64, attention_head_dim=8)
    shapes = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
    expected = {key: shape for key, shape in mc.sd15_unet_shapes(SMALL).items() if key not in sg.PRUNED_KEYS}
    assert shapes == expected and encoder.config["disable_last"] is True
    assert sg.matches(shapes)


@requires_public
def test_public_text2img_step_equals_atelier_cross_plus_output_bias():
    import safetensors.torch
    import stable_garment_public as public
    from atelier.train.tiny import tiny_unet
    from diffusers import UNet2DConditionModel

    encoder_module, attention = public.import_public(checkout())
    denoiser = tiny_unet(seed=0).eval()
    torch.manual_seed(5)
    encoder = encoder_module.GarmentEncoderModel(sample_size=8, block_out_channels=(32, 64, 128, 128),
                                                 cross_attention_dim=64, attention_head_dim=8).eval()
    file_state = safetensors.torch.load(safetensors.torch.save(encoder.state_dict()))  # the published format
    garment_unet = UNet2DConditionModel.from_config(denoiser.config).eval()
    garment_unet.load_state_dict(sg.garment_unet_state(file_state, base=SMALL, source="tiny garment_encoder"), strict=True)
    generator = torch.Generator().manual_seed(7)
    garment_latent, latents = torch.randn(2, 1, 4, 16, 8, generator=generator)
    garment_context, negative, positive = torch.randn(3, 1, 77, 64, generator=generator)
    timestep = torch.tensor([501])
    theirs = public.public_step(attention, encoder, denoiser, garment_latent, garment_context, latents, timestep,
                                negative, positive)
    ours = public.atelier_step(garment_unet, denoiser, garment_latent, garment_context, latents, timestep, negative, positive)
    without_bias = public.atelier_step(garment_unet, denoiser, garment_latent, garment_context, latents, timestep,
                                       negative, positive, output_bias=False)
    for name, chunk in (("uncond", 0), ("cond", 1)):
        diff = (theirs.chunk(2)[chunk] - ours.chunk(2)[chunk]).abs().max().item()
        plain_diff = (theirs.chunk(2)[chunk] - without_bias.chunk(2)[chunk]).abs().max().item()
        print(f"UNet step, {name}: max |public - atelier CROSS+bias| = {diff:.3g}, "
              f"|public - atelier CROSS| = {plain_diff:.3g} (scale {theirs.abs().max().item():.3g})")
        assert diff < 1e-4
    assert (theirs.chunk(2)[1] - without_bias.chunk(2)[1]).abs().max() > 1e-3  # the bias is not negligible
