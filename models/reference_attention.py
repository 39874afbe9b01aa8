"""The reference-attention math, host-free: both the ComfyUI patches and the diffusers processors
call these functions with already-projected q/k/v, so one weight file gives one result in both.

Shapes: q (N, T, H·D); k/v of the layer (N, Tk, H·D); reference k/v for the reading rows
(R, Tr, H·D); masks (R, T, 1). ``plain_attention(q, k, v)`` is the host's own unpatched attention,
so rows and sites that do not read the reference stay bit-identical to the unpatched model.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .reference_config import ReadMode
from .row_plan import RowPlan

PlainAttention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# The CROSS read's attention term for the reading rows, (q_read, k_ref, v_ref) -> (R, T, H·D), before λ.
CrossAttention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# The CONCAT read for the reading rows, (q, k_self, v_self, k_ref, v_ref) -> (R, T, H·D), strengths included.
ConcatAttention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def multihead_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product attention over ``heads`` heads; (N, T, H·D) in and out."""
    rows, queries, width = q.shape
    head_dim = width // heads
    q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, head_dim).transpose(1, 2) for t in (q, k, v))  # (N, H, T, D)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    return out.transpose(1, 2).reshape(rows, queries, width)  # (N, T, H·D)


def concat_reference_attention(
    q: torch.Tensor,
    k_self: torch.Tensor,
    v_self: torch.Tensor,
    k_ref: torch.Tensor,
    v_ref: torch.Tensor,
    heads: int,
    strength: float,
) -> torch.Tensor:
    """One softmax over the layer's own keys and the reference keys ``[K; K_ref]``.

    ``strength`` s scales the reference tokens' unnormalised attention weights (a log s logit bias):
    s = 1 is plain reference-only concatenation; s → 0 removes the reference.
    """
    keys = torch.cat([k_self, k_ref], dim=1)  # (R, Ts + Tr, H·D)
    values = torch.cat([v_self, v_ref], dim=1)
    bias = None
    if strength != 1.0:
        bias = torch.zeros(keys.shape[1], dtype=q.dtype, device=q.device)
        bias[k_self.shape[1]:] = math.log(strength)
        bias = bias.view(1, 1, 1, -1)  # (1, 1, 1, Ts + Tr): broadcast over rows, heads, queries
    return multihead_attention(q, keys, values, heads, bias)


def read_reference(
    q: torch.Tensor,
    k_self: torch.Tensor,
    v_self: torch.Tensor,
    k_ref: torch.Tensor,
    v_ref: torch.Tensor,
    *,
    heads: int,
    mode: ReadMode,
    strength: float,
    plan: RowPlan,
    query_mask: torch.Tensor | None,
    plain_attention: PlainAttention,
    cross_attention: CrossAttention | None = None,
    concat_attention: ConcatAttention | None = None,
) -> torch.Tensor:
    """Self-attention output of one site with the reference read into the rows ``plan.rows``.

    Args:
        q, k_self, v_self: the layer's own projections for all N rows.
        k_ref, v_ref: projected reference tokens for the R reading rows (in ``plan.rows`` order).
        mode: CONCAT (joint softmax) or CROSS (``plain + λ·Softmax(QK'ᵀ/√d)V'``).
        strength: s for CONCAT, λ for CROSS; must be > 0 (callers skip the site at 0).
        query_mask: (R, T, 1) in [0, 1]: where on the denoiser's grid the reference applies; None = everywhere.
        plain_attention: the host's unpatched attention, used for rows that do not read.
        cross_attention: the CROSS term Softmax(QK'ᵀ/√d)V' for the reading rows; None = one softmax
            over all reference tokens (AnyDressing passes its per-garment Dressing-Attention).
        concat_attention: the CONCAT read for the reading rows; None = one softmax with the reference
            tokens' mass scaled by ``strength`` (a garment reader passes its per-garment weights).
    """
    rows = plan.rows.to(q.device)
    if mode == ReadMode.CONCAT and concat_attention is None:
        def concat_attention(q_read, k_own, v_own, k_read, v_read):
            return concat_reference_attention(q_read, k_own, v_own, k_read, v_read, heads, strength)

    if mode == ReadMode.CONCAT and plan.reads_all_rows and query_mask is None:
        return concat_attention(q, k_self, v_self, k_ref, v_ref)

    plain = plain_attention(q, k_self, v_self)
    if plan.reads_no_row:
        return plain
    q_read = q.index_select(0, rows)
    if mode == ReadMode.CONCAT:
        patched = concat_attention(q_read, k_self.index_select(0, rows), v_self.index_select(0, rows), k_ref, v_ref)
        delta = patched - plain.index_select(0, rows)
    elif cross_attention is None:
        delta = strength * multihead_attention(q_read, k_ref, v_ref, heads)
    else:
        delta = strength * cross_attention(q_read, k_ref, v_ref)
    if query_mask is not None:
        delta = delta * query_mask
    return plain.index_add(0, rows, delta)
