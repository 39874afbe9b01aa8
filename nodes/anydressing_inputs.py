"""Parsing and checking the AnyDressing nodes' inputs; every error names the input to fix."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.anydressing.config import DressingConfig
from ..models.errors import ReferenceInputError
from ..models.masks import as_mask_batch


def parse_categories(text: str, count: int, config: DressingConfig) -> list[str]:
    """'upper, lower' -> one category per garment image (a single category applies to all)."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if len(names) == 1:
        names = names * count
    if len(names) != count:
        raise ReferenceInputError(
            f"'categories' lists {len(names)} categories for {count} garment images; give one per image "
            f"(comma-separated) or a single one for all"
        )
    for name in names:
        config.slot_index(name)  # raises, naming the categories the weight file knows
    return names


def parse_strengths(text: str, count: int, default: float) -> list[float]:
    """'0.7, 0.5' -> λ per garment; empty = ``default`` for every garment, one value = that for all."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        return [default] * count
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise ReferenceInputError(f"'garment_strengths' must be numbers separated by commas, got {text!r}") from None
    if len(values) == 1:
        values = values * count
    if len(values) != count or any(value < 0 for value in values):
        raise ReferenceInputError(
            f"'garment_strengths' gives {len(values)} value(s) for {count} garments; give one λ >= 0 per garment "
            f"in the order they were encoded, or leave it empty to use 'strength' for all"
        )
    return values


def garment_mask_batch(mask: torch.Tensor, count: int) -> torch.Tensor:
    """A MASK input of N (shared) or B·N (per latent, latent-major) masks -> (B_m, N, H, W)."""
    masks = as_mask_batch(mask)  # (M, H, W)
    if masks.shape[0] % count:
        raise ReferenceInputError(
            f"'garment_masks' holds {masks.shape[0]} masks for {count} garments: give one per garment (shared by "
            f"every latent) or one per garment for each latent, latent by latent"
        )
    return masks.reshape(masks.shape[0] // count, count, *masks.shape[1:])  # (B_m, N, H, W)


def whiten_outside(images: torch.Tensor, mask: torch.Tensor | None, background: float = 1.0) -> torch.Tensor:
    """Paint garment-image pixels outside ``mask`` white (the in-shop background GarmentsNet expects),
    or the grey level ``background``.

    Args:
        images: (N, H, W, 3) in [0, 1].
        mask: a MASK of 1 (shared) or N masks, any size (resized bilinearly), or None.
        background: the value painted outside the mask (1 = white; MagicClothing's 0.5 = its
            ``image × mask`` in [-1, 1]).
    """
    if mask is None:
        return images
    masks = as_mask_batch(mask)  # (M, h, w)
    if masks.shape[0] not in (1, images.shape[0]):
        raise ReferenceInputError(
            f"'garment_masks' holds {masks.shape[0]} masks for {images.shape[0]} garment images; give one per image or one for all"
        )
    resized = F.interpolate(masks.unsqueeze(1), size=images.shape[1:3], mode="bilinear", align_corners=False)  # (M, 1, H, W)
    alpha = resized.squeeze(1).unsqueeze(-1).to(images)  # (M, H, W, 1)
    return images * alpha + background * (1.0 - alpha)
