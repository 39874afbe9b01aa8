"""p_g = Resize(Crop(p·m)) (§3.2): the garment region of the person image, for the CLIP image encoder."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import ReferenceInputError

# OpenAI CLIP's pixel normalisation (ViT-H/14 of ip-adapter_sd15 uses the same).
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIZE = 224
MASK_THRESHOLD = 0.5


class GarmentMaskError(ReferenceInputError):
    """The garment mask is empty, or cannot be matched to the person image."""


def _bbox(mask: torch.Tensor, margin: float, row: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of ``mask`` (H, W) ≥ 0.5, grown by ``margin`` of its size, inside the image."""
    inside = mask >= MASK_THRESHOLD
    if not bool(inside.any()):
        raise GarmentMaskError(
            f"garment mask row {row} is empty (no value >= {MASK_THRESHOLD}); connect a mask that covers the garment"
        )
    rows = torch.nonzero(inside.any(dim=1)).flatten()
    cols = torch.nonzero(inside.any(dim=0)).flatten()
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    grow = math.ceil(margin * max(bottom - top, right - left))
    height, width = mask.shape
    return max(top - grow, 0), min(bottom + grow, height), max(left - grow, 0), min(right + grow, width)


def _match_batches(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Broadcast a batch of 1 against the other; resize the mask to the image when only the scale differs."""
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if image.ndim != 4 or image.shape[-1] != 3 or mask.ndim != 3:
        raise GarmentMaskError(
            f"need an IMAGE (B, H, W, 3) and a MASK (B, H, W); got image {tuple(image.shape)}, mask {tuple(mask.shape)}"
        )
    if image.shape[0] != mask.shape[0] and 1 not in (image.shape[0], mask.shape[0]):
        raise GarmentMaskError(
            f"the person image batch is {image.shape[0]} but the garment mask batch is {mask.shape[0]}: "
            f"connect one mask per image, or one mask for all"
        )
    batch = max(image.shape[0], mask.shape[0])
    image, mask = image.expand(batch, -1, -1, -1), mask.expand(batch, -1, -1)
    height, width = image.shape[1:3]
    if tuple(mask.shape[1:]) != (height, width):
        mask_h, mask_w = mask.shape[1:]
        if abs(mask_w / mask_h - width / height) > 0.01 * width / height:
            raise GarmentMaskError(
                f"the garment mask is {mask_w}×{mask_h} but the person image is {width}×{height}; "
                f"their aspect ratios differ, so the mask cannot be matched: make the mask from this image"
            )
        mask = F.interpolate(mask.unsqueeze(1).float(), size=(height, width), mode="bilinear").squeeze(1)  # (B, H, W)
    return image, mask.to(image)


def garment_crop(image: torch.Tensor, mask: torch.Tensor, size: int = CLIP_SIZE, margin: float = 0.05) -> torch.Tensor:
    """p_g for every row: image (B, H, W, 3) in [0, 1] times mask (B, H, W), cropped to the mask's
    bounding box grown by ``margin``, zero-padded to a centred square and resized to ``size``.

    Returns (B, size, size, 3). A batch of 1 on either input is shared by every row of the other.
    """
    image, mask = _match_batches(image, mask)
    crops = []
    for row in range(image.shape[0]):
        top, bottom, left, right = _bbox(mask[row], margin, row)
        masked = (image[row] * mask[row].unsqueeze(-1))[top:bottom, left:right]  # (h, w, 3)
        height, width = masked.shape[:2]
        side = max(height, width)
        pad_top, pad_left = (side - height) // 2, (side - width) // 2
        square = masked.new_zeros(side, side, 3)
        square[pad_top:pad_top + height, pad_left:pad_left + width] = masked
        resized = F.interpolate(
            square.permute(2, 0, 1).unsqueeze(0), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )  # (1, 3, size, size)
        crops.append(resized[0].permute(1, 2, 0))  # (size, size, 3)
    return torch.stack(crops).clamp(0.0, 1.0)  # (B, size, size, 3)


def clip_pixels(crops: torch.Tensor, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> torch.Tensor:
    """(B, S, S, 3) in [0, 1] -> (B, 3, S, S) normalised, the ``pixel_values`` of CLIPVisionModelWithProjection."""
    channels_first = crops.permute(0, 3, 1, 2)  # (B, 3, S, S)
    mean_t = torch.tensor(mean, dtype=crops.dtype, device=crops.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=crops.dtype, device=crops.device).view(1, 3, 1, 1)
    return (channels_first - mean_t) / std_t
