"""The concatenation read over N garments, with a strength and a target region per garment.

Reference networks such as MagicClothing read a garment by joining its tokens to the denoiser's own
self-attention keys and values in one softmax (``concat`` mode). With N garments joined along the
tokens, giving garment k the weight w_k(q) ≥ 0 at query q means multiplying the unnormalised
attention of its tokens by w_k(q), i.e. a logit bias log w_k(q):

    out(q) = (P_0 O_0 + Σ_k w_k P_k O_k) / (P_0 + Σ_k w_k P_k)

where P_b is the share of block b (the layer's own tokens b = 0, garment k's tokens b = k) in the
plain joint softmax and O_b its softmax-weighted values within the block. With w_k = s it is the
foundation's uniform concat strength; with w_k(q) = 0 a query never sees garment k, so outside every
garment's region the layer computes exactly its own self-attention. One attention call gives every
P_b and P_b·O_b: each block's values sit in their own column block, with one indicator column per
block (as dressing_attention does for IGL's maps); nothing of size T × ΣL is materialised.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def garment_concat_attention(
    q: torch.Tensor,
    k_self: torch.Tensor,
    v_self: torch.Tensor,
    k_ref: torch.Tensor,
    v_ref: torch.Tensor,
    heads: int,
    segments: Sequence[int],
    garment_weights: torch.Tensor,
) -> torch.Tensor:
    """One softmax over ``[K; K_1 … K_N]`` with garment k's attention scaled by its weight per query.

    Args:
        q, k_self, v_self: (R, T, H·D) the reading rows' own projections.
        k_ref, v_ref: (R, ΣL, H·D) every garment's projected tokens, joined in ``segments`` order.
        segments: L_k, the token count of each garment.
        garment_weights: (R, T, N) w_k(q) ≥ 0 (strength × per-garment strength × target mask).

    Returns:
        (R, T, H·D).
    """
    if sum(segments) != k_ref.shape[1]:
        raise ValueError(f"garment spans {tuple(segments)} do not add up to the {k_ref.shape[1]} reference tokens")
    rows, queries, width = q.shape
    head_dim = width // heads
    count = len(segments)
    blocks = count + 1
    own = k_self.shape[1]
    keys = torch.cat([k_self, k_ref], dim=1)  # (R, T_s + ΣL, H·D)
    tokens = keys.shape[1]
    qh = q.reshape(rows, queries, heads, head_dim).transpose(1, 2)  # (R, H, T, D)
    kh = keys.reshape(rows, tokens, heads, head_dim).transpose(1, 2)  # (R, H, T_s + ΣL, D)
    vh = torch.cat([v_self, v_ref], dim=1).reshape(rows, tokens, heads, head_dim).transpose(1, 2)  # (R, H, T_s + ΣL, D)
    values = vh.new_zeros(rows, heads, tokens, blocks * head_dim + blocks)  # block-diagonal values + indicators
    bounds = [0, own]
    for length in segments:
        bounds.append(bounds[-1] + length)
    for block in range(blocks):
        start, end = bounds[block], bounds[block + 1]
        values[:, :, start:end, block * head_dim:(block + 1) * head_dim] = vh[:, :, start:end]
        values[:, :, start:end, blocks * head_dim + block] = 1.0
    out = F.scaled_dot_product_attention(qh, kh, values)  # (R, H, T, (N+1)·D + N + 1)
    weighted_values = out[..., : blocks * head_dim].reshape(rows, heads, queries, blocks, head_dim)  # (R, H, T, N+1, D): P_b·O_b
    shares = out[..., blocks * head_dim:]  # (R, H, T, N+1): P_b
    weights = torch.cat([garment_weights.new_ones(rows, queries, 1), garment_weights], dim=-1).to(q)  # (R, T, N+1)
    weights = weights.unsqueeze(1)  # (R, 1, T, N+1)
    numerator = (weighted_values * weights.unsqueeze(-1)).sum(3)  # (R, H, T, D)
    denominator = (shares * weights).sum(-1, keepdim=True)  # (R, H, T, 1); ≥ P_0 > 0
    combined = numerator / denominator
    return combined.transpose(1, 2).reshape(rows, queries, width)  # (R, T, H·D)
