"""The concatenation read over N garments: per-garment strengths and target regions as logit weights."""

import math

import pytest
import torch

from atelier.models.anydressing.dressing_run import DressingRun
from atelier.models.anydressing.garment_bank import GarmentBank
from atelier.models.anydressing.garment_concat import garment_concat_attention
from atelier.models.reference_attention import concat_reference_attention, multihead_attention
from atelier.models.reference_bank import ReferenceBank
from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from atelier.models.sites import SITES_BY_NAME

HEADS = 2
SEGMENTS = (3, 5)


def _manual(q, keys, values, key_weights):
    """Softmax attention written out, exp(logits) multiplied by (R, T, K) weights per query and key."""
    rows, queries, width = q.shape
    d = width // HEADS
    qh = q.view(rows, queries, HEADS, d).transpose(1, 2)
    kh = keys.view(rows, keys.shape[1], HEADS, d).transpose(1, 2)
    vh = values.view(rows, values.shape[1], HEADS, d).transpose(1, 2)
    weights = torch.exp(qh @ kh.transpose(-1, -2) / math.sqrt(d)) * key_weights.unsqueeze(1)
    attn = weights / weights.sum(-1, keepdim=True)
    return (attn @ vh).transpose(1, 2).reshape(rows, queries, width)


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 6, 8, generator=g, dtype=torch.float64) for _ in range(3))
    k_ref, v_ref = (torch.randn(2, sum(SEGMENTS), 8, generator=g, dtype=torch.float64) for _ in range(2))
    return q, k, v, k_ref, v_ref


def test_per_query_garment_weights_are_multipliers_on_each_garments_attention(qkv):
    q, k, v, k_ref, v_ref = qkv
    weights = torch.rand(2, 6, len(SEGMENTS), generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    key_weights = torch.cat([
        torch.ones(2, 6, k.shape[1], dtype=torch.float64),
        weights[..., :1].expand(-1, -1, SEGMENTS[0]), weights[..., 1:].expand(-1, -1, SEGMENTS[1]),
    ], dim=-1)
    expected = _manual(q, torch.cat([k, k_ref], 1), torch.cat([v, v_ref], 1), key_weights)
    out = garment_concat_attention(q, k, v, k_ref, v_ref, HEADS, SEGMENTS, weights)
    torch.testing.assert_close(out, expected)


def test_uniform_weight_equals_the_foundations_concat_strength(qkv):
    q, k, v, k_ref, v_ref = qkv
    weights = torch.full((2, 6, len(SEGMENTS)), 0.4, dtype=torch.float64)
    torch.testing.assert_close(
        garment_concat_attention(q, k, v, k_ref, v_ref, HEADS, SEGMENTS, weights),
        concat_reference_attention(q, k, v, k_ref, v_ref, HEADS, 0.4),
    )


def test_a_query_with_every_garment_weight_zero_gets_plain_self_attention(qkv):
    q, k, v, k_ref, v_ref = qkv
    weights = torch.ones(2, 6, len(SEGMENTS), dtype=torch.float64)
    weights[:, :3] = 0.0
    out = garment_concat_attention(q, k, v, k_ref, v_ref, HEADS, SEGMENTS, weights)
    plain = multihead_attention(q, k, v, HEADS)
    torch.testing.assert_close(out[:, :3], plain[:, :3])
    assert (out[:, 3:] - plain[:, 3:]).abs().max() > 1e-3


def test_segments_that_do_not_add_up_raise(qkv):
    q, k, v, k_ref, v_ref = qkv
    with pytest.raises(ValueError, match="do not add up"):
        garment_concat_attention(q, k, v, k_ref, v_ref, HEADS, (3, 3), torch.ones(2, 6, 2, dtype=torch.float64))


def _garments(width=8, tokens=(4, 4)):
    site = SITES_BY_NAME["input_1"]
    bank = ReferenceBank()
    g = torch.Generator().manual_seed(2)
    bank.store(site, torch.randn(len(tokens), tokens[0], width, generator=g))
    return site, GarmentBank.from_rows(bank, ("upper", "lower"))


def _read(run, site, q, k, v):
    run.begin_call(q.shape[0], [0] * q.shape[0], (8, 8), True)
    k_ref, v_ref = run.reference_kv(site, lambda states: (states, states))
    return run.read(site, q, k, v, k_ref, v_ref, HEADS, lambda a, b, c: multihead_attention(a, b, c, HEADS))


def test_concat_dressing_run_with_masks_leaves_queries_outside_every_garment_region_plain():
    site, garments = _garments()
    config = ReferenceConfig(mode=ReadMode.CONCAT, strength=1.0, site_weights={site.name: 1.0}, uncond=UncondPolicy.SAME)
    masks = torch.zeros(1, 2, 8, 8)
    masks[:, 0, :4] = 1.0  # upper garment: top half of the latent
    masks[:, 1, 4:6] = 1.0
    run = DressingRun(config, garments, garment_masks=masks)
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 64, 8, generator=g) for _ in range(3))
    out = _read(run, site, q, k, v)
    plain = multihead_attention(q, k, v, HEADS)
    torch.testing.assert_close(out[:, 48:], plain[:, 48:])  # rows 6–7: no garment region
    assert (out[:, :48] - plain[:, :48]).abs().amax() > 1e-3


def test_concat_dressing_run_with_unit_strengths_equals_the_plain_concat_read():
    site, garments = _garments()
    config = ReferenceConfig(mode=ReadMode.CONCAT, strength=0.7, site_weights={site.name: 1.0})
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 64, 8, generator=g) for _ in range(3))
    split = _read(DressingRun(config, garments, garment_weights=[1.0, 1.0 + 1e-12]), site, q, k, v)
    joint = _read(DressingRun(config, garments), site, q, k, v)
    torch.testing.assert_close(split, joint)
