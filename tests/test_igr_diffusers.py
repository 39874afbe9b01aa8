"""The IGR diffusers host on a tiny SD1.5-layout UNet (16×16 latents): GarmNet's pass, the GarmFus
denoiser's paths, CFG policy, gradients and row routing."""

import pytest
import torch
from atelier.models.diffusers_host import DiffusersReferenceHost
from atelier.models.errors import ReferenceInputError
from atelier.models.igr.config import IGRConfig
from atelier.models.igr.diffusers_igr import (
    DiffusersIGRHost,
    IGRCrossAttnProcessor,
    IGRSelfAttnProcessor,
)
from atelier.models.igr.garmnet import GarmNet, mask_to_latent
from atelier.models.igr.ip_adapter import IPAdapter
from atelier.models.reference_config import ReferenceConfig, UncondPolicy
from atelier.models.sites import SD15_SITES, SITES_BY_NAME
from atelier.models.weight_format import BaseModel
from atelier.train.tiny import TINY_CONTEXT_DIM, TINY_MODEL_CHANNELS, tiny_unet

LATENT = 16
CONFIG = IGRConfig(garmnet_rank=4, garmnet_alpha=4.0, image_embed_dim=16)
BASE = BaseModel(model_channels=TINY_MODEL_CHANNELS, context_dim=TINY_CONTEXT_DIM)
NONE = ReferenceConfig(uncond=UncondPolicy.NONE)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet().eval().requires_grad_(False)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(21)
    mask = torch.zeros(2, 128, 128)
    mask[0, 20:90, 30:100] = 1.0
    mask[1, 50:128, 10:60] = 1.0
    return {
        "person": torch.randn(2, 4, LATENT, LATENT, generator=g),
        "mask": mask_to_latent(mask, (LATENT, LATENT)),
        "category": torch.randn(2, 5, TINY_CONTEXT_DIM, generator=g),
        "embeds": torch.randn(2, 16, generator=g),
        "noisy": torch.randn(2, 4, LATENT, LATENT, generator=g),
        "text": torch.randn(2, 5, TINY_CONTEXT_DIM, generator=g),
        "empty": torch.randn(2, 5, TINY_CONTEXT_DIM, generator=g),
        "t": torch.tensor([400.0, 400.0]),
    }


def _trained_garmnet(seed: int = 22) -> GarmNet:
    garmnet = GarmNet.for_sd15(CONFIG, TINY_MODEL_CHANNELS)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for up in garmnet.lora.up.values():
            up.copy_(0.05 * torch.randn(up.shape, generator=g))
        garmnet.mask_in.weight.copy_(0.3 * torch.randn(garmnet.mask_in.weight.shape, generator=g))
    return garmnet


def _adapter(seed: int = 23) -> IPAdapter:
    torch.manual_seed(seed)
    return IPAdapter.for_sd15(CONFIG, BASE)


def _bank(unet, garmnet, data, mask=None):
    with torch.no_grad(), DiffusersIGRHost(unet, garmnet, None, ReferenceConfig()) as host:
        return host.garmnet_pass(data["person"], data["mask"] if mask is None else mask, data["category"])


def _cfg(unet, data, garmnet, adapter, config=NONE, ip_strength=1.0, use_bank=True, use_ip=True):
    """A CFG call [uncond; cond] over two persons; returns the (4, 4, h, w) prediction."""
    sample = torch.cat([data["noisy"], data["noisy"]])
    context = torch.cat([data["empty"], data["text"]])
    with torch.no_grad(), DiffusersIGRHost(unet, garmnet, adapter, config) as host:
        bank = host.garmnet_pass(data["person"], data["mask"], data["category"]) if use_bank else None
        tokens = adapter.tokens(data["embeds"]) if use_ip else None
        run = host.new_run(bank, tokens, ip_strength)
        return host.forward(run, sample, data["t"].repeat(2), context, cond_or_uncond=(1, 0)).sample


def _plain_cfg(unet, data):
    with torch.no_grad():
        return unet(torch.cat([data["noisy"], data["noisy"]]), data["t"].repeat(2),
                    encoder_hidden_states=torch.cat([data["empty"], data["text"]])).sample


def test_garmnet_pass_banks_every_site_and_fresh_garmnet_is_the_plain_unet_at_t0(unet, data):
    bank = _bank(unet, GarmNet.for_sd15(CONFIG, TINY_MODEL_CHANNELS), data)
    assert bank.site_names == tuple(site.name for site in SD15_SITES)
    for site in SD15_SITES:
        assert bank.get(site).shape == (2, site.token_count(LATENT, LATENT), site.channels(TINY_MODEL_CHANNELS))
    with torch.no_grad(), DiffusersReferenceHost(unet, ReferenceConfig()) as host:
        plain = host.capture(data["person"], torch.zeros(2), data["category"])
    for site in SD15_SITES:
        assert torch.equal(bank.get(site), plain.get(site)), site.name


def test_mask_channel_and_lora_change_the_bank(unet, data):
    fresh = GarmNet.for_sd15(CONFIG, TINY_MODEL_CHANNELS)
    before = _bank(unet, fresh, data)
    with torch.no_grad():
        fresh.mask_in.weight.normal_(0.0, 0.3)
    masked = _bank(unet, fresh, data)
    first = SITES_BY_NAME["input_1"]
    assert (masked.get(first) - before.get(first)).abs().max() > 1e-3
    empty_mask = _bank(unet, fresh, data, mask=torch.zeros(2, 1, LATENT, LATENT))
    assert torch.equal(empty_mask.get(first), before.get(first))  # mask_in has no bias: m = 0 adds nothing
    with torch.no_grad():
        fresh.lora.up["input_1"].normal_(0.0, 0.1)
    with_lora = _bank(unet, fresh, data)
    assert torch.equal(with_lora.get(first), masked.get(first))  # banked before its own LoRA acts
    last = SITES_BY_NAME["output_11"]
    assert (with_lora.get(last) - masked.get(last)).abs().max() > 1e-4


def test_uncond_rows_under_policy_none_are_bit_identical_to_the_plain_unet(unet, data):
    out = _cfg(unet, data, _trained_garmnet(), _adapter())
    plain = _plain_cfg(unet, data)
    assert torch.equal(out[:2], plain[:2])
    assert (out[2:] - plain[2:]).abs().amax(dim=(1, 2, 3)).min() > 1e-4


def test_each_path_at_strength_zero_reduces_to_the_other_path(unet, data):
    garmnet, adapter = _trained_garmnet(), _adapter()
    both = _cfg(unet, data, garmnet, adapter)
    high_only = _cfg(unet, data, garmnet, adapter, use_ip=False)
    ip_only = _cfg(unet, data, garmnet, adapter, use_bank=False)
    assert torch.equal(_cfg(unet, data, garmnet, adapter, ip_strength=0.0), high_only)
    no_high = ReferenceConfig(strength=0.0, uncond=UncondPolicy.NONE)
    assert torch.equal(_cfg(unet, data, garmnet, adapter, config=no_high), ip_only)
    plain = _plain_cfg(unet, data)
    for one, other in ((both, high_only), (both, ip_only), (high_only, plain), (ip_only, plain)):
        assert (one[2:] - other[2:]).abs().max() > 1e-4


def test_gradients_reach_garmnet_and_the_ip_adapter(unet, data):
    garmnet, adapter = _trained_garmnet(), _adapter()
    with DiffusersIGRHost(unet, garmnet, adapter, ReferenceConfig()) as host:
        bank = host.garmnet_pass(data["person"], data["mask"], data["category"], keep_grad=True)
        run = host.new_run(bank, adapter.tokens(data["embeds"]))
        out = host.forward(run, data["noisy"], data["t"], data["text"]).sample
    out.pow(2).mean().backward()
    grads = {
        "lora.up": garmnet.lora.up["output_4"].grad, "lora.down": garmnet.lora.down["input_5"].grad,
        "mask_in": garmnet.mask_in.weight.grad, "image_proj": adapter.image_proj.proj.weight.grad,
        "to_k_ip": adapter.ip_adapter["31"].to_k_ip.weight.grad, "to_v_ip": adapter.ip_adapter["1"].to_v_ip.weight.grad,
    }
    for name, grad in grads.items():
        assert grad is not None and grad.abs().sum() > 0, name


def test_each_person_reads_its_own_bank_and_tokens(unet, data):
    garmnet, adapter = _trained_garmnet(), _adapter()
    config = ReferenceConfig()
    with torch.no_grad(), DiffusersIGRHost(unet, garmnet, adapter, config) as host:
        bank = host.garmnet_pass(data["person"], data["mask"], data["category"])
        batched = host.forward(host.new_run(bank, adapter.tokens(data["embeds"])), data["noisy"], data["t"], data["text"]).sample
        for person in (0, 1):
            rows = slice(person, person + 1)
            own = host.garmnet_pass(data["person"][rows], data["mask"][rows], data["category"][rows])
            alone = host.forward(host.new_run(own, adapter.tokens(data["embeds"][rows])),
                                 data["noisy"][rows], data["t"][rows], data["text"][rows]).sample
            torch.testing.assert_close(batched[rows], alone, rtol=1e-4, atol=1e-5)
        swapped_bank = host.garmnet_pass(data["person"].flip(0), data["mask"].flip(0), data["category"].flip(0))
        swapped = host.forward(host.new_run(swapped_bank, adapter.tokens(data["embeds"].flip(0))),
                               data["noisy"], data["t"], data["text"]).sample
    assert (swapped - batched).abs().amax(dim=(1, 2, 3)).min() > 1e-4


def test_processors_are_installed_and_restored_and_inputs_are_checked(unet, data):
    original = dict(unet.attn_processors)
    host = DiffusersIGRHost(unet, _trained_garmnet(), _adapter(), ReferenceConfig())
    with pytest.raises(RuntimeError, match="context manager"):
        host.garmnet_pass(data["person"], data["mask"], data["category"])
    with host:
        processors = unet.attn_processors
        assert sum(isinstance(p, IGRSelfAttnProcessor) for p in processors.values()) == 16
        assert sum(isinstance(p, IGRCrossAttnProcessor) for p in processors.values()) == 16
        with pytest.raises(ReferenceInputError, match=r"\(1 or 2, 1, 16, 16\).*\(2, 1, 8, 8\)"):
            host.garmnet_pass(data["person"], torch.zeros(2, 1, 8, 8), data["category"])
    restored = unet.attn_processors
    assert all(restored[key] is original[key] for key in original)
    with DiffusersIGRHost(unet, None, _adapter(), ReferenceConfig()) as ip_only, \
            pytest.raises(ReferenceInputError, match="no GarmNet"):
        ip_only.garmnet_pass(data["person"], data["mask"], data["category"])


def test_ip_adapter_initialised_from_cross_attention_reads_image_tokens_like_text(unet, data):
    """After init_from_cross_attention, K_ll / V_ll are the layer's own to_k / to_v of the image tokens."""
    from atelier.models.igr.ip_layout import diffusers_attn2

    adapter = _adapter()
    adapter.init_from_cross_attention(unet)
    tokens = adapter.tokens(data["embeds"])  # (2, N, D)
    modules = dict(unet.named_modules())
    for name in ("input_1", "middle_0", "output_11"):
        attention = modules[diffusers_attn2(SITES_BY_NAME[name])]
        k_ip, v_ip = adapter.kv(name, tokens)
        torch.testing.assert_close(k_ip, attention.to_k(tokens))
        torch.testing.assert_close(v_ip, attention.to_v(tokens))
    fresh = _adapter()
    assert not torch.allclose(fresh.kv("input_1", tokens)[0], adapter.kv("input_1", tokens)[0])
