"""AnyDressing core (models/anydressing/): Dressing-Attention math against explicit softmaxes, the GFE
LoRA, the GarmentsNet pass and DressingRun on a tiny SD1.5-layout UNet, the garment bank, IGL/GTL
losses and the "anydressing" weight file."""

import copy
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from atelier.models.anydressing.config import DEFAULT_SLOTS, DressingConfig
from atelier.models.anydressing.diffusers_garments import (
    DiffusersGarmentsNet,
    GarmentSelfAttnProcessor,
)
from atelier.models.anydressing.dressing_attention import dressing_attention
from atelier.models.anydressing.dressing_run import DressingRun
from atelier.models.anydressing.garment_bank import GarmentBank
from atelier.models.anydressing.garment_lora import GarmentLoRA
from atelier.models.anydressing.losses import (
    high_frequency_masks,
    localization_loss,
    predicted_x0,
    texture_loss,
)
from atelier.models.anydressing.spec import ANYDRESSING
from atelier.models.diffusers_host import DiffusersReferenceHost, ReferenceAttnProcessor
from atelier.models.errors import ReferenceInputError, WeightFileError
from atelier.models.reference_attention import multihead_attention
from atelier.models.reference_bank import ReferenceBank
from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from atelier.models.sites import SD15_SITES, SITES_BY_NAME
from atelier.models.weight_format import BaseModel
from atelier.models.weights import (
    export_untrained,
    load_weight_file,
    recognise_system,
    save_weight_file,
)
from atelier.train.tiny import TINY_CONTEXT_DIM, TINY_MODEL_CHANNELS, tiny_unet

HEADS = 2
HEAD_DIM = 4
WIDTH = HEADS * HEAD_DIM
LATENT = 8
TINY_BASE = BaseModel(model_channels=TINY_MODEL_CHANNELS, context_dim=TINY_CONTEXT_DIM)
ALL_SITES = tuple(site.name for site in SD15_SITES)


# --- hand computations -------------------------------------------------------------------------


def _heads(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], x.shape[1], HEADS, HEAD_DIM).transpose(1, 2)  # (R, H, T, D)


def _explicit_softmax(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """P = Softmax(Q K'ᵀ/√d) per head, (R, H, T, ΣL), written out without SDPA."""
    logits = _heads(q) @ _heads(k).transpose(-1, -2) / math.sqrt(HEAD_DIM)
    weights = torch.exp(logits - logits.amax(-1, keepdim=True))
    return weights / weights.sum(-1, keepdim=True)


def _hand_garment_term(q, k, v, segments, weights=None, masks=None) -> torch.Tensor:
    """Σ_k w_k · m_k ⊙ (P[:, span_k] V'[span_k]) with P over all garments, (R, T, H·D)."""
    prob = _explicit_softmax(q, k)
    values = _heads(v)
    total = torch.zeros_like(_heads(q))
    start = 0
    for garment, length in enumerate(segments):
        share = prob[..., start:start + length] @ values[:, :, start:start + length]  # (R, H, T, D)
        if weights is not None:
            share = share * float(weights[garment])
        if masks is not None:
            share = share * masks[:, :, garment].unsqueeze(1).unsqueeze(-1)
        total = total + share
        start += length
    return total.transpose(1, 2).reshape(q.shape[0], q.shape[1], WIDTH)


def _hand_maps(q, k, segments) -> torch.Tensor:
    """A_k = Σ_{j∈span_k} P_j (eq. 8), averaged over heads, (R, T, N)."""
    prob = _explicit_softmax(q, k)
    starts = np.cumsum((0,) + tuple(segments))
    per = [prob[..., starts[i]:starts[i + 1]].sum(-1) for i in range(len(segments))]  # each (R, H, T)
    return torch.stack(per, -1).mean(1)


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(3)
    segments = (3, 5, 2)
    q = torch.randn(2, 6, WIDTH, generator=g, dtype=torch.float64)
    k = torch.randn(2, sum(segments), WIDTH, generator=g, dtype=torch.float64)
    v = torch.randn(2, sum(segments), WIDTH, generator=g, dtype=torch.float64)
    return q, k, v, segments


# --- dressing_attention ------------------------------------------------------------------------


def test_plain_garment_term_is_one_softmax_over_all_garments(qkv):
    q, k, v, segments = qkv
    out, maps = dressing_attention(q, k, v, HEADS, segments)
    expected = (_explicit_softmax(q, k) @ _heads(v)).transpose(1, 2).reshape(q.shape)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    assert maps is None


def test_maps_are_per_garment_sums_of_the_softmax_and_sum_to_one(qkv):
    q, k, v, segments = qkv
    out, maps = dressing_attention(q, k, v, HEADS, segments, want_maps=True)
    assert maps.shape == (2, 6, 3)
    torch.testing.assert_close(maps, _hand_maps(q, k, segments), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 6, dtype=maps.dtype), rtol=1e-10, atol=1e-10)
    # the garment term itself is untouched by asking for the maps
    torch.testing.assert_close(out, _hand_garment_term(q, k, v, segments), rtol=1e-10, atol=1e-10)


def test_weights_and_masks_scale_each_garments_share_after_the_joint_softmax(qkv):
    q, k, v, segments = qkv
    g = torch.Generator().manual_seed(4)
    weights = torch.tensor([0.5, 0.0, 2.0], dtype=torch.float64)
    masks = torch.rand(2, 6, 3, generator=g, dtype=torch.float64)
    out, _ = dressing_attention(q, k, v, HEADS, segments, garment_weights=weights, garment_masks=masks)
    torch.testing.assert_close(out, _hand_garment_term(q, k, v, segments, weights, masks), rtol=1e-10, atol=1e-10)
    only_weights, _ = dressing_attention(q, k, v, HEADS, segments, garment_weights=weights)
    torch.testing.assert_close(only_weights, _hand_garment_term(q, k, v, segments, weights), rtol=1e-10, atol=1e-10)


def test_unit_weights_on_the_split_path_equal_the_single_attention_path(qkv):
    q, k, v, segments = qkv
    fast, _ = dressing_attention(q, k, v, HEADS, segments)
    split, _ = dressing_attention(q, k, v, HEADS, segments, garment_weights=torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(split, fast, rtol=1e-10, atol=1e-10)


def test_zero_weight_is_not_the_same_as_dropping_the_garment_from_the_softmax(qkv):
    q, k, v, segments = qkv
    weights = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    out, _ = dressing_attention(q, k, v, HEADS, segments, garment_weights=weights)
    dropped = multihead_attention(q, k[:, 3:], v[:, 3:], HEADS)
    assert (out - dropped).abs().max() > 1e-3


def test_segments_that_do_not_add_up_raise(qkv):
    q, k, v, _ = qkv
    with pytest.raises(ValueError, match=r"\(3, 5\).*10 reference tokens"):
        dressing_attention(q, k, v, HEADS, (3, 5))


# --- GarmentLoRA -------------------------------------------------------------------------------


def _random_lora(seed: int = 5) -> GarmentLoRA:
    lora = GarmentLoRA({"input_1": WIDTH, "middle_0": 2 * WIDTH}, slots=3, rank=2, scale=0.5)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in lora.site_names:
            lora.down[name].copy_(torch.randn(lora.down[name].shape, generator=g))
            lora.up[name].copy_(torch.randn(lora.up[name].shape, generator=g))
    return lora


def test_fresh_lora_gives_zero_deltas_and_has_the_documented_shapes():
    lora = GarmentLoRA.for_sd15(DressingConfig(rank=4, alpha=8.0), TINY_MODEL_CHANNELS)
    assert lora.site_names == ALL_SITES
    assert lora.scale == 2.0
    assert lora.down["middle_0"].shape == (len(DEFAULT_SLOTS), 3, 4, 128)
    assert lora.up["input_1"].shape == (len(DEFAULT_SLOTS), 3, 32, 4)
    hidden = torch.randn(2, 5, 32)
    for delta in lora.deltas("input_1", hidden, torch.tensor([0, 3])):
        assert delta.shape == (2, 5, 32)
        assert torch.equal(delta, torch.zeros_like(delta))


def test_deltas_are_x_at_bt_times_scale_with_each_rows_own_slot():
    lora = _random_lora()
    hidden = torch.randn(3, 4, 2 * WIDTH, generator=torch.Generator().manual_seed(6))
    slots = torch.tensor([2, 0, 1])
    deltas = lora.deltas("middle_0", hidden, slots)
    down, up = lora.down["middle_0"].detach(), lora.up["middle_0"].detach()
    for part, delta in enumerate(deltas):  # q, k, v
        for row, slot in enumerate(slots.tolist()):
            expected = hidden[row] @ down[slot, part].T @ up[slot, part].T * 0.5
            torch.testing.assert_close(delta[row], expected, rtol=1e-5, atol=1e-5)
    # q, k and v really use their own matrices
    assert (deltas[0] - deltas[1]).abs().max() > 1e-3


def test_changing_a_slot_changes_only_the_rows_of_that_slot():
    lora = _random_lora()
    hidden = torch.randn(3, 4, WIDTH, generator=torch.Generator().manual_seed(7))
    slots = torch.tensor([1, 1, 0])
    before = lora.deltas("input_1", hidden, slots)
    with torch.no_grad():
        lora.up["input_1"][0] += 1.0
        lora.down["input_1"][2] += 1.0  # slot 2: used by no row
    after = lora.deltas("input_1", hidden, slots)
    for old, new in zip(before, after, strict=True):
        assert torch.equal(old[:2], new[:2])
        assert (old[2] - new[2]).abs().max() > 1e-3


# --- DiffusersGarmentsNet ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def unet():
    return tiny_unet().eval()


@pytest.fixture(scope="module")
def garment_latents():
    return torch.randn(3, 4, LATENT, LATENT, generator=torch.Generator().manual_seed(8))


def _trained_lora(seed: int = 9, sites: tuple[str, ...] = ALL_SITES) -> GarmentLoRA:
    lora = GarmentLoRA.for_sd15(DressingConfig(sites=sites), TINY_MODEL_CHANNELS)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in lora.site_names:  # both A and B from g: equal seeds give equal LoRAs
            lora.down[name].copy_(0.2 * torch.randn(lora.down[name].shape, generator=g))
            lora.up[name].copy_(0.05 * torch.randn(lora.up[name].shape, generator=g))
    return lora


def _encode(unet, lora, latents, slots, sites=ALL_SITES) -> ReferenceBank:
    with torch.no_grad(), DiffusersGarmentsNet(unet, lora, sites) as garments_net:
        return garments_net.encode(latents, torch.tensor(slots))


def test_garments_net_banks_every_configured_site_as_rows(unet, garment_latents):
    bank = _encode(unet, _trained_lora(), garment_latents, [0, 1, 0])
    assert bank.site_names == ALL_SITES
    for site in SD15_SITES:
        assert bank.get(site).shape == (3, site.token_count(LATENT, LATENT), site.channels(TINY_MODEL_CHANNELS))
    subset = ("input_4", "output_11")
    sub_bank = _encode(unet, _trained_lora(sites=subset), garment_latents, [0, 1, 0], sites=subset)
    assert sub_bank.site_names == subset


def test_garments_net_skips_cross_attention(unet, garment_latents):
    lora = _trained_lora()
    other = copy.deepcopy(unet)
    with torch.no_grad():
        for name, module in other.named_modules():
            if name.endswith("attn2"):
                module.to_out[0].weight.mul_(3.0).add_(0.1)
                module.to_v.weight.add_(0.1)
                module.to_out[0].bias.add_(0.1)  # with a zero context, attn2 would output this bias
    text = torch.randn(1, 7, TINY_CONTEXT_DIM)
    with torch.no_grad():  # the edit is effective on the normal UNet
        changed = other(garment_latents[:1], torch.zeros(1), encoder_hidden_states=text).sample
        normal = unet(garment_latents[:1], torch.zeros(1), encoder_hidden_states=text).sample
    assert (changed - normal).abs().max() > 1e-3
    before = _encode(unet, lora, garment_latents, [0, 1, 2])
    after = _encode(other, lora, garment_latents, [0, 1, 2])
    for site in SD15_SITES:
        assert torch.equal(before.get(site), after.get(site))


def test_slot_lora_changes_only_rows_with_that_slot(unet, garment_latents):
    lora = _trained_lora()
    before = _encode(unet, lora, garment_latents, [1, 0, 0])
    with torch.no_grad():
        for name in lora.site_names:
            lora.up[name][0] += 0.05
            lora.up[name][2] += 0.05  # slot 2: no row uses it
    after = _encode(unet, lora, garment_latents, [1, 0, 0])
    last = SITES_BY_NAME["output_11"]
    assert torch.equal(before.get(last)[0], after.get(last)[0])
    assert (before.get(last)[1] - after.get(last)[1]).abs().max() > 1e-4
    assert (before.get(last)[2] - after.get(last)[2]).abs().max() > 1e-4
    first = SITES_BY_NAME["input_1"]  # banked before any LoRA acts
    assert torch.equal(before.get(first), after.get(first))


def test_garment_rows_are_encoded_independently(unet, garment_latents):
    lora = _trained_lora()
    before = _encode(unet, lora, garment_latents, [0, 1, 2])
    moved = garment_latents.clone()
    moved[1] += 0.5
    after = _encode(unet, lora, moved, [0, 1, 2])
    for site in SD15_SITES:
        assert torch.equal(before.get(site)[[0, 2]], after.get(site)[[0, 2]])
        assert (before.get(site)[1] - after.get(site)[1]).abs().max() > 1e-4


def test_garments_net_restores_processors_and_needs_the_context(unet, garment_latents):
    original = dict(unet.attn_processors)
    lora = _trained_lora()
    garments_net = DiffusersGarmentsNet(unet, lora, ALL_SITES)
    with pytest.raises(RuntimeError, match="context manager"):
        garments_net.encode(garment_latents, torch.tensor([0, 1, 2]))
    with pytest.raises(KeyError), garments_net:
        key = f"{SITES_BY_NAME['middle_0'].diffusers_attn1}.processor"
        assert isinstance(unet.attn_processors[key], GarmentSelfAttnProcessor)
        raise KeyError("inside")
    restored = unet.attn_processors
    assert restored.keys() == original.keys()
    assert all(restored[key] is original[key] for key in original)


# --- GarmentBank -------------------------------------------------------------------------------


def _rows_bank(rows: int, tokens: int, seed: int, sites=("input_1", "middle_0")) -> ReferenceBank:
    g = torch.Generator().manual_seed(seed)
    bank = ReferenceBank()
    for name in sites:
        site = SITES_BY_NAME[name]
        bank.store(site, torch.randn(rows, tokens, site.channels(TINY_MODEL_CHANNELS), generator=g))
    return bank


def test_from_rows_joins_garments_along_tokens_in_order():
    rows = _rows_bank(2, 5, seed=10)
    garments = GarmentBank.from_rows(rows, ["upper", "lower"])
    assert garments.count == 2 and garments.categories == ("upper", "lower")
    assert garments.segments == {"input_1": (5, 5), "middle_0": (5, 5)}
    for name in ("input_1", "middle_0"):
        site = SITES_BY_NAME[name]
        joined = garments.bank.get(site)
        assert joined.shape == (1, 10, site.channels(TINY_MODEL_CHANNELS))
        assert torch.equal(joined[0, :5], rows.get(site)[0]) and torch.equal(joined[0, 5:], rows.get(site)[1])
    assert garments.nbytes == garments.bank.nbytes > 0


def test_from_rows_with_one_garment_set_per_latent():
    rows = _rows_bank(4, 3, seed=11)  # latent 0: rows 0, 1; latent 1: rows 2, 3
    garments = GarmentBank.from_rows(rows, ["upper", "lower"], batch=2)
    site = SITES_BY_NAME["input_1"]
    joined = garments.bank.get(site)
    assert joined.shape == (2, 6, 32)
    assert torch.equal(joined[1, :3], rows.get(site)[2]) and torch.equal(joined[1, 3:], rows.get(site)[3])


def test_from_rows_rejects_a_row_count_that_does_not_fit():
    with pytest.raises(ReferenceInputError, match=r"banked 3 rows for 1 latent\(s\) x 2 garment"):
        GarmentBank.from_rows(_rows_bank(3, 5, seed=12), ["upper", "lower"])
    with pytest.raises(ReferenceInputError, match="0 garment"):
        GarmentBank.from_rows(_rows_bank(1, 5, seed=12), [])


def test_join_concatenates_tokens_segments_and_categories():
    first = GarmentBank.from_rows(_rows_bank(2, 4, seed=13), ["upper", "lower"])
    second = GarmentBank.from_rows(_rows_bank(1, 6, seed=14), ["hat"])
    joined = GarmentBank.join([first, second])
    assert joined.categories == ("upper", "lower", "hat")
    assert joined.segments["middle_0"] == (4, 4, 6)
    site = SITES_BY_NAME["middle_0"]
    assert torch.equal(joined.bank.get(site), torch.cat([first.bank.get(site), second.bank.get(site)], dim=1))
    assert GarmentBank.join([first]) is first


def test_join_errors_name_the_fix():
    with pytest.raises(ReferenceInputError, match="connect at least one garment"):
        GarmentBank.join([])
    first = GarmentBank.from_rows(_rows_bank(1, 4, seed=15), ["upper"])
    other = GarmentBank.from_rows(_rows_bank(1, 4, seed=16, sites=("input_1",)), ["lower"])
    with pytest.raises(ReferenceInputError, match="same dressing weight file"):
        GarmentBank.join([first, other])


def test_to_returns_a_moved_copy():
    garments = GarmentBank.from_rows(_rows_bank(2, 4, seed=17), ["upper", "lower"])
    moved = garments.to("meta")
    site = SITES_BY_NAME["input_1"]
    assert moved.bank.get(site).device.type == "meta" and garments.bank.get(site).device.type == "cpu"
    assert moved.segments == garments.segments and moved.categories == garments.categories
    same = garments.to("cpu")
    same.bank.clear()
    assert len(garments.bank) == 2


# --- DressingRun through the diffusers host ----------------------------------------------------


@pytest.fixture(scope="module")
def garments(unet, garment_latents):
    rows = _encode(unet, _trained_lora(), garment_latents[:2], [0, 1])
    return GarmentBank.from_rows(rows, ["upper", "lower"])


@pytest.fixture(scope="module")
def sample():
    g = torch.Generator().manual_seed(18)
    return {
        "latents": torch.randn(2, 4, LATENT, LATENT, generator=g),
        "text": torch.randn(2, 7, TINY_CONTEXT_DIM, generator=g),
        "t": torch.tensor([500.0, 500.0]),
    }


@pytest.fixture(scope="module")
def plain(unet, sample):
    """The unpatched UNet's output on ``sample``."""
    with torch.no_grad():
        return unet(sample["latents"], sample["t"], encoder_hidden_states=sample["text"]).sample


def _dressed(unet, sample, garments, active=True, cond_or_uncond=(1, 0), **run_kwargs):
    config = run_kwargs.pop("config", ReferenceConfig(mode=ReadMode.CROSS, strength=0.7))
    with torch.no_grad(), DiffusersReferenceHost(unet, config) as host:
        run = DressingRun(config, garments, **run_kwargs)
        out = host.forward(
            run, sample["latents"], sample["t"], sample["text"], cond_or_uncond=cond_or_uncond, active=active
        ).sample
    assert not any(isinstance(p, ReferenceAttnProcessor) for p in unet.attn_processors.values())
    return out, run


@pytest.fixture(scope="module")
def dressed_full(unet, sample, garments):
    """Both garments read at λ = 0.7 with unit weights: (output, run)."""
    return _dressed(unet, sample, garments)


@pytest.fixture(scope="module")
def dressed_second_only_weighted(unet, sample, garments):
    """Garment weights (0, 1): (output, run)."""
    return _dressed(unet, sample, garments, garment_weights=(0.0, 1.0))


def test_dressing_changes_the_output_and_reads_every_site(dressed_full, plain):
    out, run = dressed_full
    assert (out - plain).abs().max() > 1e-3
    assert dict(run.reads) == {name: 1 for name in ALL_SITES}


def test_strength_zero_or_an_inactive_call_is_the_plain_unet(unet, sample, garments, plain):
    off, _ = _dressed(unet, sample, garments, config=ReferenceConfig(mode=ReadMode.CROSS, strength=0.0))
    assert torch.equal(off, plain)
    inactive, _ = _dressed(unet, sample, garments, active=False)
    assert torch.equal(inactive, plain)


def test_uncond_policy_none_leaves_the_uncond_chunk_bit_identical(unet, sample, garments, plain):
    config = ReferenceConfig(mode=ReadMode.CROSS, strength=0.7, uncond=UncondPolicy.NONE)
    out, _ = _dressed(unet, sample, garments, config=config, cond_or_uncond=(1, 0))
    assert torch.equal(out[:1], plain[:1])
    assert (out[1:] - plain[1:]).abs().max() > 1e-3


def test_zero_weights_everywhere_equal_the_plain_unet(unet, sample, garments, plain):
    out, _ = _dressed(unet, sample, garments, garment_weights=(0.0, 0.0))
    assert torch.equal(out, plain)


def test_weight_zero_keeps_the_joint_softmax_instead_of_dropping_the_garment(
    unet, sample, garments, garment_latents, dressed_full, dressed_second_only_weighted
):
    """w = (0, 1) zeroes garment 1's share after the joint softmax: it differs from both the full
    read and a bank holding only garment 2 (which would renormalise the softmax over garment 2)."""
    weighted, full = dressed_second_only_weighted[0], dressed_full[0]
    second_only = GarmentBank.from_rows(_encode(unet, _trained_lora(), garment_latents[1:2], [1]), ["lower"])
    middle = SITES_BY_NAME["middle_0"]  # one token per garment there
    torch.testing.assert_close(second_only.bank.get(middle)[0], garments.bank.get(middle)[0, 1:], rtol=0, atol=1e-4)
    alone, _ = _dressed(unet, sample, second_only)
    assert (weighted - full).abs().max() > 1e-4
    assert (weighted - alone).abs().max() > 1e-4


def test_read_with_weights_is_plain_plus_lambda_times_the_weighted_joint_share(garments):
    """DressingRun.read on hand-made q/k/v: the docstring's formula, written out."""
    config = ReferenceConfig(mode=ReadMode.CROSS, strength=0.7)
    run = DressingRun(config, garments, garment_weights=(0.0, 1.0))
    run.begin_call(2, (1, 0), (LATENT, LATENT), active=True)
    site = SITES_BY_NAME["input_1"]
    g = torch.Generator().manual_seed(19)
    q = torch.randn(2, 6, WIDTH, generator=g, dtype=torch.float64)
    k_self = torch.randn(2, 6, WIDTH, generator=g, dtype=torch.float64)
    v_self = torch.randn(2, 6, WIDTH, generator=g, dtype=torch.float64)
    segments = garments.segments["input_1"]
    k_ref = torch.randn(2, sum(segments), WIDTH, generator=g, dtype=torch.float64)
    v_ref = torch.randn(2, sum(segments), WIDTH, generator=g, dtype=torch.float64)

    def plain(q_, k_, v_):
        return multihead_attention(q_, k_, v_, HEADS)

    out = run.read(site, q, k_self, v_self, k_ref, v_ref, HEADS, plain)
    expected = plain(q, k_self, v_self) + 0.7 * _hand_garment_term(q, k_ref, v_ref, segments, weights=(0.0, 1.0))
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_a_zero_garment_mask_removes_that_garments_contribution(
    unet, sample, garments, plain, dressed_full, dressed_second_only_weighted
):
    mask = torch.ones(1, 2, 64, 64)
    mask[:, 0] = 0.0
    masked, _ = _dressed(unet, sample, garments, garment_masks=mask)
    torch.testing.assert_close(masked, dressed_second_only_weighted[0], rtol=0, atol=1e-6)
    assert (masked - dressed_full[0]).abs().max() > 1e-4
    nothing, _ = _dressed(unet, sample, garments, garment_masks=torch.zeros(1, 2, 64, 64))
    torch.testing.assert_close(nothing, plain, rtol=0, atol=1e-6)


def test_a_garment_mask_limits_the_change_to_its_region(unet, sample, garments):
    """Only the top half may wear the garments: the first site's output changes there only."""
    mask = torch.zeros(1, 2, LATENT, LATENT)
    mask[..., : LATENT // 2, :] = 1.0
    config = ReferenceConfig(mode=ReadMode.CROSS, strength=0.7, site_weights={"input_1": 1.0})
    seen = {}

    def keep(module, args, output):
        seen.setdefault("outs", []).append(output.detach().clone())

    attn = dict(unet.named_modules())[SITES_BY_NAME["input_1"].diffusers_attn1]
    handle = attn.register_forward_hook(keep)
    try:
        _dressed(unet, sample, garments, config=config, garment_masks=mask)
        with torch.no_grad():
            unet(sample["latents"], sample["t"], encoder_hidden_states=sample["text"])
    finally:
        handle.remove()
    dressed_site, plain_site = seen["outs"]
    change = (dressed_site - plain_site).abs().amax(-1).reshape(2, LATENT, LATENT)  # (B, h, w)
    assert change[:, LATENT // 2:].max() == 0.0
    assert change[:, : LATENT // 2].min() > 0.0


def test_record_maps_fills_every_site_with_maps_summing_to_one(unet, sample, garments):
    _, run = _dressed(unet, sample, garments, record_maps=True)
    assert tuple(run.maps) == ALL_SITES
    for name, maps in run.maps.items():
        assert maps.shape == (2, SITES_BY_NAME[name].token_count(LATENT, LATENT), 2)
        torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:2]), rtol=0, atol=1e-5)
    run.release()
    assert len(garments.bank) == 16, "releasing a run must not empty the caller's (cached) garments"
    assert run.maps == {}


def test_dressing_run_input_errors(garments):
    with pytest.raises(ReferenceInputError, match="IGL's attention maps are recorded in 'cross' mode"):
        DressingRun(ReferenceConfig(mode=ReadMode.CONCAT), garments, record_maps=True)
    config = ReferenceConfig(mode=ReadMode.CROSS)
    with pytest.raises(ReferenceInputError, match="got 3 garment strengths for 2 garments"):
        DressingRun(config, garments, garment_weights=(1.0, 1.0, 1.0))
    with pytest.raises(ReferenceInputError, match=r"\(batch, 2, H, W\).*\(1, 3, 8, 8\)"):
        DressingRun(config, garments, garment_masks=torch.ones(1, 3, 8, 8))


# --- losses ------------------------------------------------------------------------------------


def _block_masks() -> torch.Tensor:
    masks = torch.zeros(2, 2, LATENT, LATENT)  # (R, N, H, W)
    masks[0, 0, :4] = 1.0
    masks[0, 1, 4:, :3] = 1.0
    masks[1, 0, 2:6, 2:6] = 1.0
    masks[1, 1, :, 5:] = 1.0
    return masks


def _maps_equal_to_masks(masks: torch.Tensor, sites: tuple[str, ...]) -> dict[str, torch.Tensor]:
    maps = {}
    for name in sites:
        size = LATENT // 2 ** SITES_BY_NAME[name].level
        pooled = F.avg_pool2d(masks, LATENT // size)  # (R, N, h, w): area average per token
        maps[name] = pooled.flatten(2).transpose(1, 2).clone()  # (R, T, N)
    return maps


def test_localization_loss_is_zero_on_the_masks_and_the_mean_square_otherwise():
    masks = _block_masks()
    sites = ("input_1", "input_4", "input_7", "middle_0")
    maps = _maps_equal_to_masks(masks, sites)
    assert localization_loss(maps, masks, (LATENT, LATENT)).item() == pytest.approx(0.0, abs=1e-12)
    maps["input_4"] = maps["input_4"].clone()
    maps["input_4"][1, 3, 0] += 0.5
    loss = localization_loss(maps, masks, (LATENT, LATENT))
    rows, tokens, count = maps["input_4"].shape
    assert loss.item() == pytest.approx(0.25 / (rows * tokens * count) / len(sites), rel=1e-5)


def test_localization_loss_gives_the_maps_a_gradient():
    masks = _block_masks()
    maps = _maps_equal_to_masks(masks, ("input_1", "middle_0"))
    maps = {name: value.requires_grad_() for name, value in maps.items()}
    with torch.no_grad():
        maps["input_1"][0, 0, 1] += 0.3
    localization_loss(maps, masks, (LATENT, LATENT)).backward()
    grad = maps["input_1"].grad
    assert grad[0, 0, 1] > 0
    assert grad.abs().sum() == grad[0, 0, 1].abs()
    with pytest.raises(ValueError, match="record_maps=True"):
        localization_loss({}, masks, (LATENT, LATENT))


def test_predicted_x0_inverts_the_forward_noising():
    g = torch.Generator().manual_seed(20)
    z0 = torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64)
    noise = torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64)
    alphas = torch.tensor([0.99, 0.5, 0.05], dtype=torch.float64)
    noisy = alphas.sqrt().view(-1, 1, 1, 1) * z0 + (1 - alphas).sqrt().view(-1, 1, 1, 1) * noise
    torch.testing.assert_close(predicted_x0(noisy, noise, alphas), z0, rtol=1e-12, atol=1e-12)
    swapped = predicted_x0(noisy, noise, alphas.flip(0))
    assert (swapped - z0).abs().max() > 1e-2


def _texture_case():
    """A ground truth with one sharp square inside garment 0's mask; garment 1 covers a flat area."""
    target = torch.full((2, 3, 32, 32), 0.2)
    target[:, :, 8:20, 8:20] = 0.9
    generated = target.clone()
    generated += 0.1 * torch.randn(generated.shape, generator=torch.Generator().manual_seed(21))
    masks = torch.zeros(2, 2, 32, 32)
    masks[:, 0, 4:24, 4:24] = 1.0
    masks[:, 1, 26:, :] = 1.0
    return generated, target, masks


def _hand_high_frequency(generated, target, masks, dilation=1) -> float:
    total = 0.0
    for garment in range(masks.shape[1]):
        squared, count = 0.0, 0.0
        for row in range(target.shape[0]):
            pixels = (target[row].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3)
            gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
            edges = cv2.dilate(cv2.Canny(gray, 100, 200), np.ones((2 * dilation + 1,) * 2, np.uint8)) > 0
            region = torch.from_numpy(edges).float() * masks[row, garment]
            squared += float(((generated[row] - target[row]) ** 2 * region).sum())
            count += float(region.sum()) * 3
        total += squared / max(count, 1.0)
    return total / masks.shape[1]


def test_texture_loss_is_the_edge_mse_inside_the_masks():
    generated, target, masks = _texture_case()
    loss = texture_loss(generated, target, masks, torch.tensor([100, 350]), eta=350)
    assert loss.item() == pytest.approx(_hand_high_frequency(generated, target, masks), rel=1e-5)
    assert loss.item() > 0


def test_texture_loss_is_zero_above_eta_and_ignores_those_rows():
    generated, target, masks = _texture_case()
    assert texture_loss(generated, target, masks, torch.tensor([351, 999]), eta=350).item() == 0.0
    mixed = texture_loss(generated, target, masks, torch.tensor([100, 999]), eta=350)
    other = generated.clone()
    other[1] += 0.5
    assert texture_loss(other, target, masks, torch.tensor([100, 999]), eta=350).item() == mixed.item()
    near_only = _hand_high_frequency(generated[:1], target[:1], masks[:1])
    assert mixed.item() == pytest.approx(near_only * 0.5, rel=1e-5)


def test_texture_loss_uses_only_edge_pixels_inside_the_masks():
    generated, target, masks = _texture_case()
    timesteps = torch.tensor([100, 200])
    base = texture_loss(generated, target, masks, timesteps, eta=350).item()
    outside = generated.clone()
    outside[:, :, 1, 30] += 1.0  # outside every mask
    assert texture_loss(outside, target, masks, timesteps, eta=350).item() == base
    flat = generated.clone()
    flat[:, :, 14, 14] += 1.0  # inside garment 0, far from any edge
    assert texture_loss(flat, target, masks, timesteps, eta=350).item() == base
    edge = generated.clone()
    edge[:, :, 8, 14] += 1.0  # on the square's edge, inside garment 0
    assert texture_loss(edge, target, masks, timesteps, eta=350).item() > base
    edges = high_frequency_masks(target, masks)
    assert edges[:, 1].sum() == 0 and edges[:, 0].sum() > 0
    assert torch.all(edges <= masks)


def test_texture_loss_calls_the_perceptual_term_per_garment_on_masked_images():
    generated, target, masks = _texture_case()
    timesteps = torch.tensor([100, 999])
    calls = []

    def perceptual(fake, real):
        calls.append((fake, real))
        return torch.tensor(0.3)

    without = texture_loss(generated, target, masks, timesteps, eta=350)
    with_perceptual = texture_loss(generated, target, masks, timesteps, eta=350, perceptual=perceptual)
    assert len(calls) == 2
    for garment, (fake, real) in enumerate(calls):
        assert fake.shape == (1, 3, 32, 32)  # only the row with t <= eta
        assert torch.equal(fake, generated[:1] * masks[:1, garment:garment + 1])
        assert torch.equal(real, target[:1] * masks[:1, garment:garment + 1])
    # (1/N)·Σ_k 0.3 on the near row, times the near fraction 1/2
    assert with_perceptual.item() == pytest.approx(without.item() + 0.3 * 0.5, rel=1e-6)
    outside = generated.clone()
    outside[:, :, 1, 30] += 1.0
    def squared(fake, real):
        return (fake - real).pow(2).sum()

    moved = texture_loss(outside, target, masks, timesteps, eta=350, perceptual=squared)
    assert moved.item() == texture_loss(generated, target, masks, timesteps, eta=350, perceptual=squared).item()


# --- config, spec and weight file --------------------------------------------------------------


def test_slot_index_and_its_error_names_the_known_slots():
    config = DressingConfig()
    assert config.slot_index("lower") == 1
    with pytest.raises(ReferenceInputError) as error:
        config.slot_index("skirt")
    assert "'skirt'" in str(error.value)
    assert all(repr(slot) in str(error.value) for slot in DEFAULT_SLOTS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"slots": ("upper", "upper")}, "distinct"), ({"slots": ()}, "non-empty"), ({"rank": 0}, "rank must be >= 1"),
     ({"sites": ("input_3",)}, "input_3")],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ReferenceInputError, match=message):
        DressingConfig(**kwargs)


def test_config_round_trips_through_a_dict():
    config = DressingConfig(slots=("upper", "hat"), rank=3, alpha=6.0, sites=("middle_0",))
    assert DressingConfig.from_dict(config.to_dict()) == config
    assert config.scale == 2.0


def test_untrained_file_round_trips(tmp_path):
    path = str(tmp_path / "dressing.safetensors")
    export_untrained(path, ANYDRESSING, TINY_BASE)
    loaded = load_weight_file(path, expected_system="anydressing", expected_base=TINY_BASE)
    assert loaded.system == "anydressing" and loaded.base == TINY_BASE
    assert DressingConfig.from_dict(loaded.config) == DressingConfig()
    lora, projections = loaded.modules["garment_lora"], loaded.modules["projections"]
    assert lora.site_names == ALL_SITES == projections.site_names
    assert lora.down["middle_0"].shape == (len(DEFAULT_SLOTS), 3, 8, 128)
    assert projections.to_k["input_1"].weight.shape == (32, 32)
    assert all(torch.equal(up, torch.zeros_like(up)) for up in lora.up.values())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        rebuilt = ANYDRESSING.build(loaded.config, TINY_BASE)
    assert torch.equal(rebuilt["garment_lora"].down["output_11"], lora.down["output_11"])
    assert torch.equal(rebuilt["projections"].to_v["middle_0"].weight, projections.to_v["middle_0"].weight)


def test_trained_values_and_a_custom_config_survive_save_and_load(tmp_path):
    config = DressingConfig(slots=("upper", "lower"), rank=2, alpha=4.0, sites=("input_1", "middle_0")).to_dict()
    modules = ANYDRESSING.build(config, TINY_BASE)
    with torch.no_grad():
        modules["garment_lora"].up["middle_0"].normal_()
    path = str(tmp_path / "custom.safetensors")
    save_weight_file(path, ANYDRESSING, TINY_BASE, config, modules)
    loaded = load_weight_file(path, expected_system="anydressing")
    assert loaded.config == config
    assert torch.equal(loaded.modules["garment_lora"].up["middle_0"], modules["garment_lora"].up["middle_0"])
    assert loaded.modules["garment_lora"].down["input_1"].shape == (2, 3, 2, 32)
    keys = {ANYDRESSING.prefixes["garment_lora"] + key for key in modules["garment_lora"].state_dict()}
    keys |= {ANYDRESSING.prefixes["projections"] + key for key in modules["projections"].state_dict()}
    assert recognise_system({}, keys) is ANYDRESSING


def test_loading_as_another_system_fails(tmp_path):
    path = str(tmp_path / "dressing.safetensors")
    export_untrained(path, ANYDRESSING, TINY_BASE)
    with pytest.raises(WeightFileError, match="'anydressing' weight file; this node needs a 'reference' file"):
        load_weight_file(path, expected_system="reference")


def test_inputs_that_cannot_combine_are_refused(garments):
    from atelier.models.anydressing.losses import localization_loss

    with pytest.raises(ReferenceInputError, match=">= 0"):
        DressingRun(ReferenceConfig(mode=ReadMode.CROSS), garments, garment_weights=[0.5, -0.1])
    site = SITES_BY_NAME["input_1"]
    per_sample = ReferenceBank()
    per_sample.store(site, torch.zeros(2, 4, 8))  # (B=2, N·L, C)
    shared = ReferenceBank()
    shared.store(site, torch.zeros(1, 4, 8))
    with pytest.raises(ReferenceInputError, match=r"different latent batches \[1, 2\]"):
        GarmentBank.join([GarmentBank(per_sample, {"input_1": (4,)}, ("upper",)), GarmentBank(shared, {"input_1": (4,)}, ("lower",))])
    maps = {"input_1": torch.zeros(2, 16, 2)}
    with pytest.raises(ValueError, match="one mask per garment for every reading row"):
        localization_loss(maps, torch.zeros(1, 2, 32, 32), (4, 4))
