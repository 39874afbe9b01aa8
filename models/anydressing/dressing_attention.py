"""Dressing-Attention over N garments (eq. 6) and the per-garment attention maps of IGL (eq. 7–8).

Eq. 6: Z_new = Softmax(QKᵀ/√d)V + λ·Softmax(Q K'ᵀ/√d)V', with K' = F_all·W'k, V' = F_all·W'v over all
garments' tokens joined. This module computes the second term without λ, for the reading rows:

    Σ_k w_k · m_k ⊙ (P[:, span_k] · V'[span_k]),   P = Softmax(Q K'ᵀ/√d)   (one softmax over all garments)

With every w_k = 1 and no masks this is exactly Softmax(QK'ᵀ/√d)V'. Per-garment weights w_k and
target-region masks m_k (an inference-time control, not in the paper) scale garment k's share after
the joint softmax, so they never change how attention is split among the garments.

The split is computed in one attention call: garment k's values are placed in their own block of
value columns (zero for other garments' tokens), and optionally one indicator column per garment
whose output is A_k = Σ_{j∈span_k} P_j (eq. 8). Nothing of size T × ΣL is materialised here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..reference_attention import multihead_attention


def dressing_attention(
    q: torch.Tensor,
    k_ref: torch.Tensor,
    v_ref: torch.Tensor,
    heads: int,
    segments: Sequence[int],
    garment_weights: torch.Tensor | None = None,
    garment_masks: torch.Tensor | None = None,
    want_maps: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The garment term of eq. 6 and, if asked, the IGL maps.

    Args:
        q: (R, T, H·D) queries of the reading rows.
        k_ref, v_ref: (R, ΣL, H·D) K', V' of all garments, joined along tokens in ``segments`` order.
        segments: L_k, the token count of each garment.
        garment_weights: (N,) w_k, or None for all 1 (callers pass None rather than ones: it takes
            the single-attention path).
        garment_masks: (R, T, N) m_k on the query grid, or None for everywhere.
        want_maps: also return A_k.

    Returns:
        (R, T, H·D) garment features, and (R, T, N) A_k averaged over heads (or None).
    """
    if sum(segments) != k_ref.shape[1]:
        raise ValueError(f"garment spans {tuple(segments)} do not add up to the {k_ref.shape[1]} reference tokens")
    if garment_weights is None and garment_masks is None and not want_maps:
        return multihead_attention(q, k_ref, v_ref, heads), None

    rows, queries, width = q.shape
    head_dim = width // heads
    count = len(segments)
    tokens = k_ref.shape[1]
    qh = q.reshape(rows, queries, heads, head_dim).transpose(1, 2)  # (R, H, T, D)
    kh = k_ref.reshape(rows, tokens, heads, head_dim).transpose(1, 2)  # (R, H, ΣL, D)
    vh = v_ref.reshape(rows, tokens, heads, head_dim).transpose(1, 2)  # (R, H, ΣL, D)
    extra = count if want_maps else 0
    values = vh.new_zeros(rows, heads, tokens, count * head_dim + extra)  # block-diagonal V' (+ indicators)
    start = 0
    for garment, length in enumerate(segments):
        values[:, :, start:start + length, garment * head_dim:(garment + 1) * head_dim] = vh[:, :, start:start + length]
        if want_maps:
            values[:, :, start:start + length, count * head_dim + garment] = 1.0
        start += length
    out = F.scaled_dot_product_attention(qh, kh, values)  # (R, H, T, N·D + extra)
    per_garment = out[..., : count * head_dim].reshape(rows, heads, queries, count, head_dim)  # (R, H, T, N, D)
    scale = q.new_ones(rows, queries, count)  # (R, T, N)
    if garment_weights is not None:
        scale = scale * garment_weights.to(q).view(1, 1, count)
    if garment_masks is not None:
        scale = scale * garment_masks.to(q)
    combined = (per_garment * scale.unsqueeze(1).unsqueeze(-1)).sum(3)  # (R, H, T, D)
    combined = combined.transpose(1, 2).reshape(rows, queries, width)  # (R, T, H·D)
    maps = out[..., count * head_dim:].mean(1) if want_maps else None  # (R, T, N)
    return combined, maps
