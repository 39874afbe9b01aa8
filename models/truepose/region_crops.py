"""CAA's source-side inputs of one source image: the parsing regions' masks and the bounding-box
crops whose CLIP image embeddings are F_i^clip (TruePose §4.3, eq. 9).

One layout for the ComfyUI node and the trainer: regions in ``caa.caa_regions(LIP)`` order (ATR maps
are converted to LIP first), each present region's bounding box R_i cropped from the image (not
masked: the paper embeds the box crop), zero-padded to a centred square and resized to the image
encoder's input size (IGR's ``garment_crop`` with a box mask). Absent regions have a zero mask and
no crop; their embedding rows stay zero and CAA never picks them (``region_average_scores`` gives
them +inf).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..igr.garment_crop import garment_crop
from ..parsing import LIP, category_mask
from .caa import CAAInputError, caa_regions, region_crop_boxes

REGION_NAMES: tuple[str, ...] = tuple(caa_regions(LIP))


@dataclass(frozen=True)
class SourceRegions:
    """The parsing regions of one source image.

    Attributes:
        masks: (R, H, W) float masks in :data:`REGION_NAMES` order, zero where a region is absent.
        present: (R,) bool, the regions that have pixels.
        crops: (P, S, S, 3) crops of the P present regions, in order, in [0, 1].
    """

    masks: torch.Tensor
    present: torch.Tensor
    crops: torch.Tensor


def source_regions(image: torch.Tensor, lip_labels: np.ndarray, crop_size: int) -> SourceRegions:
    """Region masks and box crops of ``image`` (H, W, 3) in [0, 1] with its LIP label map (H, W)."""
    if image.ndim != 3 or image.shape[-1] != 3 or tuple(image.shape[:2]) != tuple(lip_labels.shape):
        raise CAAInputError(
            f"the source image {tuple(image.shape)} and its parsing map {tuple(lip_labels.shape)} must be (H, W, 3) "
            "and (H, W) of the same size"
        )
    regions = caa_regions(LIP)
    masks = torch.from_numpy(np.stack([category_mask(lip_labels, LIP, regions[name]) for name in REGION_NAMES])).to(image)
    boxes = region_crop_boxes(lip_labels, LIP)
    if not boxes:
        raise CAAInputError("the source parsing map has no person region (only background); check the source parsing")
    present = torch.tensor([name in boxes for name in REGION_NAMES])
    box_masks = image.new_zeros(len(boxes), *lip_labels.shape)  # (P, H, W)
    for row, name in enumerate(name for name in REGION_NAMES if name in boxes):
        x0, y0, x1, y1 = boxes[name]
        box_masks[row, y0:y1, x0:x1] = 1.0
    crops = garment_crop(image.unsqueeze(0), box_masks, crop_size, margin=0.0)  # (P, S, S, 3)
    return SourceRegions(masks=masks, present=present, crops=crops)


def scatter_embeddings(present: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
    """(R, E) embedding rows in region order from the (P, E) embeddings of the present regions (zeros elsewhere)."""
    if int(present.sum()) != embeds.shape[0]:
        raise CAAInputError(f"{embeds.shape[0]} CLIP embeddings for {int(present.sum())} present regions")
    full = embeds.new_zeros(present.shape[0], embeds.shape[-1])  # (R, E)
    full[present.to(embeds.device)] = embeds
    return full
