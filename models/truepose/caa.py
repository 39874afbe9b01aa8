"""CLIP-guided attention alignment, CAA (TruePose §4.3, eq. 9), host-free.

Symbols: A' (B, H, T', T') is the HPFA site's source attention map; the source parsing map H_s is
split into regions (``caa_regions``: ``models.parsing.LIP_REGIONS`` for LIP, one region per class
for ATR), each region's mask area-resized to the site's token grid. A region's average attention
score is the mean of A' over heads, over all query tokens, and over the region's tokens on the
**key** axis (the attention the region receives, the same axis HPFA's M uses), weighted by the
soft token mask. Regions with no token on this grid, or absent from the parsing map, are ignored.
The K regions with the lowest average are picked; their CLIP embeddings F^clip (one row each, an
input tensor here) are read by F̃ through Q̃ = W^{Q̃}F̃, K^clip = W^{K^clip}F^clip,
V^clip = W^{V^clip}F^clip: F̂ = Softmax(Q̃K^clipᵀ/√d)V^clip.

Eq. 9 calls F̂ "the final refined embedding"; read literally it would replace every token of F̃ by a
mix of K vectors, so we add it as a residual, F̃ + F̂, with W^{V^clip} zero-initialised: an untrained
CAA adds nothing and the TargetNet starts from HPFA alone. Regions and their averages depend only
on the source, so hosts rank once per sampling run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReferenceInputError
from ..parsing import LIP, LIP_REGIONS, Box, LabelSet, category_mask, region_boxes
from ..reference_attention import multihead_attention
from ..sites import SD15_SITES, AttentionSite
from .parsing_selection import mask_on_grid


class CAAInputError(ReferenceInputError):
    """CAA inputs that do not fit: no parsing region present, or mismatched shapes."""


def caa_regions(label_set: LabelSet) -> Mapping[str, tuple[str, ...]]:
    """Region name -> class names: :data:`LIP_REGIONS` for LIP, one region per non-background class otherwise."""
    if label_set == LIP:
        return LIP_REGIONS
    return {name: (name,) for name in label_set.labels[1:]}


def region_crop_boxes(label_map: np.ndarray, label_set: LabelSet, *, margin: int = 0) -> dict[str, Box]:
    """The bounding box R_i (x0, y0, x1, y1) of each present region, in :func:`caa_regions` order:
    the crops whose CLIP embeddings are F_i^clip (eq. 4). Absent regions are not keys."""
    return region_boxes(label_map, label_set, caa_regions(label_set), margin=margin)


def region_token_masks(
    label_map: np.ndarray, label_set: LabelSet, region_names: Sequence[str], grid: tuple[int, int]
) -> torch.Tensor:
    """(R, h·w, 1) soft masks of ``region_names`` on a token grid (area-resized, zero where absent)."""
    regions = caa_regions(label_set)
    unknown = [name for name in region_names if name not in regions]
    if unknown:
        raise CAAInputError(f"unknown parsing region(s) {unknown} for {label_set.name.upper()}; known: {list(regions)}")
    masks = np.stack([category_mask(label_map, label_set, regions[name]) for name in region_names])  # (R, H, W)
    return mask_on_grid(masks, grid)  # (R, h·w, 1)


def region_average_scores(scores: torch.Tensor, region_masks: torch.Tensor) -> torch.Tensor:
    """Average A' per region: scores (B, H, T', T'), masks (B, R, T', 1) -> (B, R); +inf where absent."""
    if region_masks.shape[0] != scores.shape[0] or region_masks.shape[2] != scores.shape[-1]:
        raise CAAInputError(
            f"region masks have shape {tuple(region_masks.shape)}; expected ({scores.shape[0]}, R, {scores.shape[-1]}, 1)"
        )
    received = scores.mean(dim=(1, 2))  # (B, T'): attention each source token receives
    weights = region_masks.squeeze(-1).to(scores.dtype)  # (B, R, T')
    area = weights.sum(dim=-1)  # (B, R)
    averages = (weights * received.unsqueeze(1)).sum(dim=-1) / area.clamp_min(1e-12)
    return torch.where(area > 0, averages, torch.full_like(averages, float("inf")))


def lowest_regions(averages: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (B, K) of the K lowest averages and (B, K) bool marking real (present) picks.

    Rows with fewer than K present regions get padded picks marked False; a row with none raises.
    """
    present = torch.isfinite(averages)
    if not present.any(dim=-1).all():
        raise CAAInputError("the source parsing map has no region on this token grid; check the source parsing input")
    count = min(k, averages.shape[-1])
    values, indices = torch.topk(averages, count, dim=-1, largest=False)  # ascending
    return indices, torch.isfinite(values)


class CAAProjections(nn.Module):
    """W^{Q̃} (on F̃), W^{K^clip}, W^{V^clip} (on F^clip) per site; W^{V^clip} starts at zero.

    Args:
        site_dims: site name -> attention width of that site.
        clip_embed_dim: width E of one CLIP region embedding.
    """

    def __init__(self, site_dims: Mapping[str, int], clip_embed_dim: int) -> None:
        super().__init__()
        self.to_q = nn.ModuleDict({name: nn.Linear(inner, inner, bias=False) for name, inner in site_dims.items()})
        self.to_k = nn.ModuleDict({name: nn.Linear(clip_embed_dim, inner, bias=False) for name, inner in site_dims.items()})
        self.to_v = nn.ModuleDict({name: nn.Linear(clip_embed_dim, inner, bias=False) for name, inner in site_dims.items()})
        for layer in self.to_v.values():
            nn.init.zeros_(layer.weight)

    @classmethod
    def for_sd15(cls, model_channels: int, site_names: tuple[str, ...], clip_embed_dim: int) -> CAAProjections:
        """Projections for SD1.5-layout sites."""
        sites = [s for s in SD15_SITES if s.name in site_names]
        return cls({s.name: s.channels(model_channels) for s in sites}, clip_embed_dim)

    def project_clip(self, site: AttentionSite, clip_embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K^clip, V^clip (B, K, inner) of the selected CLIP embeddings (B, K, E)."""
        return F.linear(clip_embeds, self.to_k[site.name].weight), F.linear(clip_embeds, self.to_v[site.name].weight)


def select_clip_embeddings(clip_embeds: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """F^clip (B, K, E): the picked rows of per-region embeddings (B, R, E)."""
    if clip_embeds.ndim != 3 or clip_embeds.shape[0] != indices.shape[0]:
        raise CAAInputError(
            f"CLIP region embeddings must be (B, R, E) with B = {indices.shape[0]}, got {tuple(clip_embeds.shape)}"
        )
    gather = indices.unsqueeze(-1).expand(-1, -1, clip_embeds.shape[-1])  # (B, K, E)
    return clip_embeds.gather(1, gather)


def padding_bias(valid: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, K) logit bias that hides padded picks (-inf where ``valid`` (B, K) is False)."""
    bias = torch.zeros(valid.shape, dtype=like.dtype, device=like.device).masked_fill(~valid, float("-inf"))
    return bias.view(valid.shape[0], 1, 1, -1)  # (B, 1, 1, K)


def caa_attend(projections: CAAProjections, site: AttentionSite, fused: torch.Tensor, k_clip: torch.Tensor,
               v_clip: torch.Tensor, bias: torch.Tensor, heads: int) -> torch.Tensor:
    """F̂ of eq. 9 from already-projected K^clip, V^clip (B, K, inner): Softmax(W^{Q̃}F̃ K^clipᵀ/√d)V^clip."""
    q = F.linear(fused, projections.to_q[site.name].weight.to(fused.dtype))  # (B, T, inner)
    return multihead_attention(q, k_clip, v_clip, heads, bias)  # (B, T, inner)


def caa_read(
    projections: CAAProjections,
    site: AttentionSite,
    fused: torch.Tensor,
    clip_selected: torch.Tensor,
    valid: torch.Tensor,
    heads: int,
) -> torch.Tensor:
    """F̂ of eq. 9 for F̃ (B, T, inner) and F^clip (B, K, E); ``valid`` (B, K) masks padded picks.

    Returns the residual term (B, T, inner); the refined embedding is ``fused + caa_read(...)``.
    """
    if clip_selected.shape[0] != fused.shape[0]:
        raise CAAInputError(f"F^clip has batch {clip_selected.shape[0]} but F̃ has {fused.shape[0]}")
    k_clip, v_clip = projections.project_clip(site, clip_selected)
    return caa_attend(projections, site, fused, k_clip, v_clip, padding_bias(valid, k_clip), heads)
