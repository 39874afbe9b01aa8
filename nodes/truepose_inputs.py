"""Checking and converting the TruePose nodes' inputs; every error names the input to fix.

- ``source_parsing``: a palette IMAGE (LIP or ATR colours, exact) or a label-id IMAGE (grey value ×
  255 = class id, e.g. a single-channel PNG loaded with LoadImage) -> LIP label maps, matched to the
  source image (one parsing for all sources or one per source; another resolution of the same
  aspect ratio is resized with nearest neighbour, as label ids must not blend).
- ``target_pose``: POSE_KEYPOINT (one pose per frame, of the chosen person) -> BodyPose list.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..models.errors import ReferenceInputError
from ..models.parsing import (
    ATR,
    LIP,
    LabelSet,
    ParsingError,
    convert_label_map,
    palette_image_to_labels,
)
from ..models.pose import BodyPose, PoseError, read_pose_keypoint_frames
from .reference_image import crop_to_multiple_of_8

PARSING_FORMATS: dict[str, tuple[LabelSet, bool]] = {
    "lip_palette": (LIP, True),
    "atr_palette": (ATR, True),
    "lip_ids": (LIP, False),
    "atr_ids": (ATR, False),
}
ASPECT_TOLERANCE = 0.02  # relative difference of height/width below which a parsing is simply resized
MIN_VISIBLE_KEYPOINTS = 4  # fewer visible points cannot say which body parts the target shows


def _image_labels(row: np.ndarray, label_set: LabelSet, palette: bool, index: int) -> np.ndarray:
    """One parsing row (H, W, 3) uint8 -> (H, W) LIP label ids."""
    try:
        if palette:
            labels = palette_image_to_labels(row, label_set)
        else:
            if not (np.array_equal(row[..., 0], row[..., 1]) and np.array_equal(row[..., 0], row[..., 2])):
                raise ParsingError("a label-id image must be grey (all three channels equal)")
            labels = row[..., 0].astype(np.int64)
            if labels.max() >= len(label_set.labels):
                raise ParsingError(
                    f"it holds id {int(labels.max())} but {label_set.name.upper()} has ids 0..{len(label_set.labels) - 1}"
                )
    except ParsingError as error:
        raise ReferenceInputError(
            f"'source_parsing' row {index} does not fit parsing_format ({label_set.name.upper()} "
            f"{'palette' if palette else 'ids'}): {error}"
        ) from error
    return labels if label_set == LIP else convert_label_map(labels, label_set, LIP)


def source_labels(parsing: torch.Tensor, parsing_format: str, source: torch.Tensor) -> torch.Tensor:
    """LIP label maps (B, H8, W8) int64 for the source IMAGE (B, H, W, C), cropped like its pixels."""
    if parsing.ndim != 4 or parsing.shape[-1] < 3:
        raise ReferenceInputError(f"'source_parsing' must be an IMAGE (batch, height, width, 3); got {tuple(parsing.shape)}")
    batch, height, width = source.shape[:3]
    if parsing.shape[0] not in (1, batch):
        raise ReferenceInputError(
            f"'source_parsing' holds {parsing.shape[0]} maps for {batch} source images; give one for all or one per image"
        )
    label_set, palette = PARSING_FORMATS[parsing_format]
    rows = (parsing[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()  # (P, h, w, 3)
    labels = torch.from_numpy(np.stack([_image_labels(row, label_set, palette, i) for i, row in enumerate(rows)]))
    parse_h, parse_w = labels.shape[1:]
    if (parse_h, parse_w) != (height, width):
        if abs(parse_h / parse_w - height / width) > ASPECT_TOLERANCE * height / width:
            raise ReferenceInputError(
                f"'source_parsing' is {parse_w}×{parse_h} px but 'source_image' is {width}×{height} px, a different "
                "aspect ratio; parse the same image (any resolution of it is fine)"
            )
        labels = F.interpolate(labels[:, None].float(), size=(height, width), mode="nearest")[:, 0].long()  # (P, H, W)
    labels = crop_to_multiple_of_8(labels.unsqueeze(-1)).squeeze(-1)  # (P, H8, W8)
    if int(labels.max()) == 0:
        raise ReferenceInputError("'source_parsing' is all background; connect the parsing of the person in 'source_image'")
    return labels.expand(batch, -1, -1).clone() if labels.shape[0] == 1 else labels


def target_poses(pose_keypoint, person: int) -> list[BodyPose]:
    """One BodyPose per POSE_KEYPOINT frame (person ``person`` of each)."""
    if pose_keypoint is None or (isinstance(pose_keypoint, list) and not pose_keypoint):
        raise ReferenceInputError("'target_pose' is empty; connect a POSE_KEYPOINT with at least one frame")
    try:
        return read_pose_keypoint_frames(
            pose_keypoint if isinstance(pose_keypoint, list) else [pose_keypoint],
            person=person, min_visible=MIN_VISIBLE_KEYPOINTS,
        )
    except PoseError as error:
        raise ReferenceInputError(f"'target_pose' (person {person}) cannot be used: {error}") from error
