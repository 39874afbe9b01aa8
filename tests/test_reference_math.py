"""Pure-torch reference-attention math: concat/cross reads, strengths, masks, row plans."""

import math

import pytest
import torch

from atelier.models.errors import ReferenceInputError
from atelier.models.masks import as_mask_batch, mask_to_tokens
from atelier.models.reference_attention import concat_reference_attention, multihead_attention, read_reference
from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from atelier.models.row_plan import plan_rows

HEADS = 2


def _manual_attention(q, k, v, heads, key_weights=None):
    """Softmax attention written out, with optional per-key multiplicative weights on exp(logits)."""
    n, t, width = q.shape
    d = width // heads
    qh = q.view(n, t, heads, d).transpose(1, 2)
    kh = k.view(n, k.shape[1], heads, d).transpose(1, 2)
    vh = v.view(n, v.shape[1], heads, d).transpose(1, 2)
    weights = torch.exp(qh @ kh.transpose(-1, -2) / math.sqrt(d))
    if key_weights is not None:
        weights = weights * key_weights
    attn = weights / weights.sum(-1, keepdim=True)
    return (attn @ vh).transpose(1, 2).reshape(n, t, width)


def _qkv(rows=4, tokens=6, ref_tokens=5, width=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(rows, tokens, width, generator=g, dtype=torch.float64) for _ in range(3))
    k_ref, v_ref = (torch.randn(rows, ref_tokens, width, generator=g, dtype=torch.float64) for _ in range(2))
    return q, k, v, k_ref, v_ref


def test_multihead_attention_matches_manual_softmax():
    q, k, v, _, _ = _qkv()
    torch.testing.assert_close(multihead_attention(q, k, v, HEADS), _manual_attention(q, k, v, HEADS))


@pytest.mark.parametrize("strength", [1.0, 0.3, 2.5])
def test_concat_strength_scales_reference_attention_mass(strength):
    q, k, v, k_ref, v_ref = _qkv()
    key_weights = torch.cat([torch.ones(k.shape[1]), torch.full((k_ref.shape[1],), strength)]).double()
    expected = _manual_attention(q, torch.cat([k, k_ref], 1), torch.cat([v, v_ref], 1), HEADS, key_weights)
    torch.testing.assert_close(concat_reference_attention(q, k, v, k_ref, v_ref, HEADS, strength), expected)


def test_concat_with_vanishing_strength_tends_to_plain_attention():
    q, k, v, k_ref, v_ref = _qkv()
    out = concat_reference_attention(q, k, v, k_ref, v_ref, HEADS, 1e-12)
    torch.testing.assert_close(out, multihead_attention(q, k, v, HEADS), atol=1e-9, rtol=0)


def _plain(q, k, v):
    return multihead_attention(q, k, v, HEADS)


def test_cross_mode_adds_lambda_times_reference_attention():
    q, k, v, k_ref, v_ref = _qkv()
    plan = plan_rows(4, [1, 0], bank_batch=1, uncond=UncondPolicy.SAME)
    out = read_reference(q, k, v, k_ref, v_ref, heads=HEADS, mode=ReadMode.CROSS, strength=0.7, plan=plan,
                         query_mask=None, plain_attention=_plain)
    torch.testing.assert_close(out, _plain(q, k, v) + 0.7 * multihead_attention(q, k_ref, v_ref, HEADS))


@pytest.mark.parametrize("mode", list(ReadMode))
def test_rows_outside_the_plan_are_bit_identical_to_plain(mode):
    q, k, v, k_ref, v_ref = _qkv()
    plan = plan_rows(4, [1, 0], bank_batch=1, uncond=UncondPolicy.NONE)  # rows 0,1 = uncond chunk
    assert plan.rows.tolist() == [2, 3]
    out = read_reference(q, k, v, k_ref[2:], v_ref[2:], heads=HEADS, mode=mode, strength=1.0, plan=plan,
                         query_mask=None, plain_attention=_plain)
    assert torch.equal(out[:2], _plain(q, k, v)[:2])
    assert not torch.allclose(out[2:], _plain(q, k, v)[2:])


@pytest.mark.parametrize("mode", list(ReadMode))
def test_zero_mask_is_bit_identical_to_plain_and_one_mask_to_unmasked(mode):
    q, k, v, k_ref, v_ref = _qkv()
    plan = plan_rows(4, [0], bank_batch=1, uncond=UncondPolicy.SAME)
    kwargs = dict(heads=HEADS, mode=mode, strength=1.0, plan=plan, plain_attention=_plain)
    zero = read_reference(q, k, v, k_ref, v_ref, query_mask=torch.zeros(4, 6, 1, dtype=q.dtype), **kwargs)
    assert torch.equal(zero, _plain(q, k, v))
    ones = read_reference(q, k, v, k_ref, v_ref, query_mask=torch.ones(4, 6, 1, dtype=q.dtype), **kwargs)
    torch.testing.assert_close(ones, read_reference(q, k, v, k_ref, v_ref, query_mask=None, **kwargs))


def test_half_mask_patches_only_masked_tokens():
    q, k, v, k_ref, v_ref = _qkv()
    plan = plan_rows(4, [0], bank_batch=1, uncond=UncondPolicy.SAME)
    mask = torch.zeros(4, 6, 1, dtype=q.dtype)
    mask[:, :3] = 1
    out = read_reference(q, k, v, k_ref, v_ref, heads=HEADS, mode=ReadMode.CROSS, strength=1.0, plan=plan,
                         query_mask=mask, plain_attention=_plain)
    assert torch.equal(out[:, 3:], _plain(q, k, v)[:, 3:])
    assert not torch.allclose(out[:, :3], _plain(q, k, v)[:, :3])


@pytest.mark.parametrize(
    "cond_or_uncond, batch, policy, rows",
    [
        ([1, 0], 1, UncondPolicy.SAME, [0, 1]),
        ([1, 0], 1, UncondPolicy.NONE, [1]),
        ([0], 1, UncondPolicy.NONE, [0]),
        ([1], 2, UncondPolicy.NONE, []),
        ([1, 0], 2, UncondPolicy.NONE, [2, 3]),
        ([1, 0, 0], 2, UncondPolicy.NONE, [2, 3, 4, 5]),
        ([0, 1], 2, UncondPolicy.NONE, [0, 1]),
    ],
)
def test_row_plans_for_every_comfy_batch_layout(cond_or_uncond, batch, policy, rows):
    total = len(cond_or_uncond) * batch
    plan = plan_rows(total, cond_or_uncond, bank_batch=batch, uncond=policy, mask_batch=1)
    assert plan.rows.tolist() == rows
    assert plan.bank_rows.tolist() == [r % batch for r in rows]
    assert plan.mask_rows.tolist() == [0] * len(rows)


def test_shared_reference_is_read_by_every_latent():
    plan = plan_rows(6, [1, 0], bank_batch=1, uncond=UncondPolicy.SAME)
    assert plan.bank_rows.tolist() == [0] * 6


def test_mismatched_reference_and_mask_batches_name_the_input():
    with pytest.raises(ReferenceInputError, match="reference image batch is 3 but the latent batch is 2"):
        plan_rows(4, [1, 0], bank_batch=3, uncond=UncondPolicy.SAME)
    with pytest.raises(ReferenceInputError, match="mask batch is 3"):
        plan_rows(4, [1, 0], bank_batch=1, uncond=UncondPolicy.SAME, mask_batch=3)
    with pytest.raises(ReferenceInputError, match="cannot be split"):
        plan_rows(5, [1, 0], bank_batch=1, uncond=UncondPolicy.SAME)


def test_mask_resizing_to_token_grids():
    mask = as_mask_batch(torch.zeros(16, 16))
    mask[:, :, :8] = 1
    tokens = mask_to_tokens(mask, (4, 4))
    assert tokens.shape == (1, 16, 1)
    grid = tokens.view(4, 4)
    assert torch.all(grid[:, :2] == 1) and torch.all(grid[:, 2:] == 0)
    with pytest.raises(ReferenceInputError, match="mask must be"):
        as_mask_batch(torch.zeros(1, 1, 4, 4))


def test_config_validation_names_the_problem():
    with pytest.raises(ReferenceInputError, match="start_percent"):
        ReferenceConfig(start_percent=0.8, end_percent=0.2)
    with pytest.raises(ReferenceInputError, match="unknown site"):
        ReferenceConfig(site_weights={"middle_1": 1.0})
    with pytest.raises(ReferenceInputError, match="site group"):
        ReferenceConfig.for_group("everything")
    config = ReferenceConfig.for_group("output", strength=0.5)
    assert len(config.enabled_site_names) == 9

