"""Checking and matching the garment-restoration node's inputs; every error names the input to fix."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.errors import ReferenceInputError
from ..models.masks import as_mask_batch
from .reference_image import check_reference_image, crop_to_multiple_of_8

ASPECT_TOLERANCE = 0.02  # relative difference of height/width below which a mask is simply resized


def person_pixels(person: torch.Tensor) -> torch.Tensor:
    """The person IMAGE (B, H, W, C) as RGB, center-cropped to multiples of 8: (B, H8, W8, 3)."""
    check_reference_image(person, "person")
    return crop_to_multiple_of_8(person)[..., :3]


def person_masks(mask: torch.Tensor, person: torch.Tensor) -> torch.Tensor:
    """The garment MASK matched to the person IMAGE (B, H, W, C): (B, H8, W8) like ``person_pixels``.

    One mask serves every person; otherwise one per person. A mask of another size is resized when
    its aspect ratio is the person's (a mask made at another resolution) and refused otherwise.
    """
    masks = as_mask_batch(mask)  # (M, h, w)
    batch, height, width = person.shape[0], person.shape[1], person.shape[2]
    if masks.shape[0] not in (1, batch):
        raise ReferenceInputError(
            f"'garment_mask' holds {masks.shape[0]} masks for {batch} person images; give one mask for all or one per person"
        )
    mask_h, mask_w = masks.shape[1], masks.shape[2]
    if (mask_h, mask_w) != (height, width):
        if abs(mask_h / mask_w - height / width) > ASPECT_TOLERANCE * height / width:
            raise ReferenceInputError(
                f"'garment_mask' is {mask_w}×{mask_h} px but 'person' is {width}×{height} px, a different aspect "
                f"ratio; make the mask from the same image (any resolution of it is fine)"
            )
        masks = F.interpolate(masks.unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False).squeeze(1)
    masks = crop_to_multiple_of_8(masks.unsqueeze(-1)).squeeze(-1)  # (M, H8, W8)
    empty = [index for index in range(masks.shape[0]) if float(masks[index].max()) < 0.5]
    if empty:
        raise ReferenceInputError(
            f"'garment_mask' row(s) {empty} mark no garment pixels (no value >= 0.5); the mask must cover the garment to restore"
        )
    return masks.expand(batch, -1, -1).clone() if masks.shape[0] == 1 else masks
