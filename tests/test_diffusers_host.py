"""The diffusers host on a tiny SD1.5-layout UNet: writes every site, reads change only what they should."""

import pytest
import torch

from atelier.models.diffusers_host import DiffusersReferenceHost, ReferenceAttnProcessor
from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from atelier.models.reference_projections import ReferenceProjections
from atelier.models.sites import SD15_SITES, SITES_BY_NAME
from atelier.train.tiny import TINY_CONTEXT_DIM, TINY_MODEL_CHANNELS, tiny_unet


@pytest.fixture(scope="module")
def unet():
    return tiny_unet().eval()


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    return {
        "reference": torch.randn(1, 4, 8, 8, generator=g),
        "latents": torch.randn(2, 4, 8, 8, generator=g),
        "text": torch.randn(2, 7, TINY_CONTEXT_DIM, generator=g),
        "t": torch.tensor([500.0, 500.0]),
    }


def _plain(unet, inputs):
    with torch.no_grad():
        return unet(inputs["latents"], inputs["t"], encoder_hidden_states=inputs["text"]).sample


def _patched(unet, inputs, config, cond_or_uncond=(1, 0), mask=None, projections=None):
    with torch.no_grad(), DiffusersReferenceHost(unet, config, projections) as host:
        bank = host.capture(inputs["reference"], torch.zeros(1), inputs["text"][:1])
        run = host.new_run(bank, mask=mask)
        out = host.forward(run, inputs["latents"], inputs["t"], inputs["text"], cond_or_uncond=cond_or_uncond).sample
    return out, bank, run


def test_capture_banks_all_sixteen_sites_with_their_token_counts(unet, inputs):
    _, bank, run = _patched(unet, inputs, ReferenceConfig())
    assert bank.site_names == tuple(site.name for site in SD15_SITES)
    for site in SD15_SITES:
        assert bank.get(site).shape == (1, site.token_count(8, 8), site.channels(TINY_MODEL_CHANNELS))
    assert dict(run.reads) == {site.name: 1 for site in SD15_SITES}


def test_processors_are_restored_on_exit(unet, inputs):
    _patched(unet, inputs, ReferenceConfig())
    assert not any(isinstance(p, ReferenceAttnProcessor) for p in unet.attn_processors.values())


def test_strength_zero_is_bit_identical_to_the_unpatched_unet(unet, inputs):
    out, _, _ = _patched(unet, inputs, ReferenceConfig(strength=0.0))
    assert torch.equal(out, _plain(unet, inputs))


def test_inactive_schedule_is_bit_identical(unet, inputs):
    with torch.no_grad(), DiffusersReferenceHost(unet, ReferenceConfig()) as host:
        run = host.new_run(host.capture(inputs["reference"], torch.zeros(1), inputs["text"][:1]))
        out = host.forward(run, inputs["latents"], inputs["t"], inputs["text"], active=False).sample
    assert torch.equal(out, _plain(unet, inputs))


@pytest.mark.parametrize("mode", list(ReadMode))
def test_reading_changes_the_output(unet, inputs, mode):
    out, _, _ = _patched(unet, inputs, ReferenceConfig(mode=mode))
    assert (out - _plain(unet, inputs)).abs().max() > 1e-4


def test_uncond_policy_none_leaves_the_uncond_chunk_unpatched(unet, inputs):
    out, _, _ = _patched(unet, inputs, ReferenceConfig(uncond=UncondPolicy.NONE), cond_or_uncond=(1, 0))
    plain = _plain(unet, inputs)
    torch.testing.assert_close(out[:1], plain[:1], atol=1e-6, rtol=0)
    assert (out[1:] - plain[1:]).abs().max() > 1e-4


def test_zero_mask_equals_no_patch(unet, inputs):
    out, _, _ = _patched(unet, inputs, ReferenceConfig(mode=ReadMode.CROSS), mask=torch.zeros(1, 64, 64))
    assert torch.equal(out, _plain(unet, inputs))


def test_only_enabled_sites_are_written_and_read(unet, inputs):
    _, bank, run = _patched(unet, inputs, ReferenceConfig.for_group("middle"))
    assert bank.site_names == ("middle_0",)
    assert dict(run.reads) == {"middle_0": 1}


def test_learned_projections_initialised_from_the_layer_equal_layer_projection(unet, inputs):
    modules = dict(unet.named_modules())
    projections = ReferenceProjections.for_sd15(TINY_MODEL_CHANNELS)
    projections.initialise_from({
        site.name: (modules[site.diffusers_attn1].to_k.weight, modules[site.diffusers_attn1].to_v.weight)
        for site in SD15_SITES
    })
    config = ReferenceConfig(mode=ReadMode.CROSS, strength=0.7)
    learned, _, _ = _patched(unet, inputs, config, projections=projections)
    layer, _, _ = _patched(unet, inputs, config)
    torch.testing.assert_close(learned, layer, atol=1e-5, rtol=1e-5)


def test_gradients_reach_learned_projections(unet, inputs):
    projections = ReferenceProjections.for_sd15(TINY_MODEL_CHANNELS, ("output_11",))
    config = ReferenceConfig(mode=ReadMode.CROSS, site_weights={"output_11": 1.0})
    with DiffusersReferenceHost(unet, config, projections) as host:
        with torch.no_grad():
            bank = host.capture(inputs["reference"], torch.zeros(1), inputs["text"][:1])
        out = host.forward(host.new_run(bank), inputs["latents"], inputs["t"], inputs["text"]).sample
        out.pow(2).mean().backward()
    assert projections.to_k["output_11"].weight.grad.abs().sum() > 0
    assert projections.to_v["output_11"].weight.grad.abs().sum() > 0
    assert SITES_BY_NAME["output_11"].level == 0
