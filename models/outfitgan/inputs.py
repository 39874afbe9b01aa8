"""Fitting user images and masks to an OutfitGAN model, and the outfit preview grid (pure torch).

Resize policy (what the nodes document): an item IMAGE of any size is padded to a square with white
(in-shop pictures sit on white), centred, then resized (bilinear, antialiased) to the model's
``image_size``; a MASK is padded with 0 the same way, area-resized, and binarised at 0.5. So a
non-square picture keeps its aspect ratio and nothing is cropped. Outputs are at ``image_size``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .config import OUTFIT_ORDER
from .errors import OutfitInputError

ITEM_BACKGROUND = 1.0
MASK_THRESHOLD = 0.5


def _pad_to_square(x: torch.Tensor, value: float) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, L, L), L = max(H, W), centred, padded with ``value``."""
    height, width = x.shape[-2:]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    return F.pad(x, (left, side - width - left, top, side - height - top), value=value)


def fit_item_image(image: torch.Tensor, size: int, input_name: str) -> torch.Tensor:
    """ComfyUI IMAGE (B, H, W, C) in [0, 1] -> (B, 3, size, size), by the module's resize policy."""
    if image.ndim != 4 or image.shape[-1] < 3:
        raise OutfitInputError(f"'{input_name}' must be an IMAGE (batch, height, width, 3); got shape {tuple(image.shape)}")
    pixels = image[..., :3].permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    square = _pad_to_square(pixels, ITEM_BACKGROUND)
    if square.shape[-1] != size:
        square = F.interpolate(square, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return square.clamp(0.0, 1.0)


def fit_mask(mask: torch.Tensor, size: int, batch: int, input_name: str) -> torch.Tensor:
    """ComfyUI MASK (H, W) or (B, H, W) -> binary (batch, 1, size, size); one mask serves a whole batch."""
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise OutfitInputError(f"'{input_name}' must be a MASK (height, width) or (batch, height, width); got shape {tuple(mask.shape)}")
    if mask.shape[0] not in (1, batch):
        raise OutfitInputError(
            f"'{input_name}' holds {mask.shape[0]} masks for {batch} source items; give one mask or one per item"
        )
    square = _pad_to_square(mask[:, None].float(), 0.0)  # (B', 1, L, L)
    if square.shape[-1] != size:
        square = F.interpolate(square, size=(size, size), mode="area")
    binary = (square >= MASK_THRESHOLD).float()
    if not bool(binary.flatten(1).any(dim=1).all()):
        raise OutfitInputError(f"'{input_name}' is empty (no pixel >= {MASK_THRESHOLD} after resizing to {size}x{size})")
    return binary.expand(batch, -1, -1, -1)


def to_comfy_image(items: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) -> ComfyUI IMAGE (B, S, S, 3) float32 on the CPU."""
    return items.permute(0, 2, 3, 1).float().cpu().contiguous()


def outfit_grid(outfit: dict[str, torch.Tensor]) -> torch.Tensor:
    """One row per outfit, items left to right in ``OUTFIT_ORDER``: (B, S, 4*S, 3) IMAGE."""
    row = torch.cat([outfit[slot] for slot in OUTFIT_ORDER], dim=-1)  # (B, 3, S, 4S)
    return to_comfy_image(row)
