"""Spatial masks on the denoiser side, resized to each site's token grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import ReferenceInputError


def as_mask_batch(mask: torch.Tensor) -> torch.Tensor:
    """Normalise a ComfyUI MASK ((H, W) or (B, H, W), values 0..1) to (B, H, W) float."""
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ReferenceInputError(f"mask must be (H, W) or (B, H, W), got shape {tuple(mask.shape)}")
    return mask.float().clamp(0.0, 1.0)


def mask_to_tokens(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resize a (B, H, W) mask to a (h, w) token grid and flatten to (B, h·w, 1).

    Area averaging: a token's value is the mask's mean over the pixels it covers, so a region edge
    gives fractional tokens only where the token really straddles it.
    """
    resized = F.interpolate(mask.unsqueeze(1), size=grid, mode="area")  # (B, 1, h, w)
    return resized.clamp(0.0, 1.0).flatten(2).transpose(1, 2)  # (B, h·w, 1)
