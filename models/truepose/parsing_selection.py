"""Target-oriented source parsing selection (TruePose §4.2): M = ∪ {M_a | a ∈ A_τ}.

Keypoint → category rule (A_τ, the categories "contained in the target pose"): a body part is
visible in the target when its COCO-18 keypoints are (``models.pose.BODY_PART_KEYPOINTS``: head =
nose/eyes/ears; torso = neck or a shoulder *and* a hip; an arm = its shoulder and elbow; a leg = its
hip and knee; feet = an ankle), and each visible part contributes the LIP categories that can appear
on it (``models.pose.BODY_PART_TO_LIP``, garments listed under every part they cover). A back view
without nose/eyes/ears therefore drops face and hair; a crouch with hidden knees drops the legs.
The source label map's masks of those categories are united into M (H, W). ATR maps are converted
to LIP first (``models.parsing.convert_label_map``) so one rule serves both label sets.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..masks import mask_to_tokens
from ..parsing import LIP, LabelSet, category_mask, convert_label_map
from ..pose import (
    BodyPose,
    TooFewKeypointsError,
    lip_categories_for_parts,
    visible_body_parts,
)

logger = logging.getLogger("atelier.models.truepose.parsing_selection")


def target_categories(target_pose: BodyPose, threshold: float = 0.0) -> set[str]:
    """A_τ: the LIP categories visible in ``target_pose`` (rule in the module docstring).

    Raises :class:`TooFewKeypointsError` naming the target pose when no keypoint is visible.
    """
    if not target_pose.visible(threshold).any():
        raise TooFewKeypointsError(
            f"target pose has no visible keypoint (all 18 confidences <= {threshold}); "
            "connect a target pose with a detected person"
        )
    parts = visible_body_parts(target_pose, threshold)
    if not parts:
        logger.warning("target pose shows no whole body part; the selected parsing mask M is empty")
    return lip_categories_for_parts(parts)


def selected_source_mask(
    source_labels: np.ndarray, label_set: LabelSet, target_pose: BodyPose, threshold: float = 0.0
) -> np.ndarray:
    """M (H, W) bool: the source parsing regions of the categories visible in ``target_pose``.

    Args:
        source_labels: (H, W) label ids of the SOURCE image, in ``label_set`` (LIP or ATR).
        label_set: the label set of ``source_labels``.
        target_pose: the TARGET pose (any canvas size; only visibility matters).
        threshold: keypoint confidence above which a point counts as visible.
    """
    categories = target_categories(target_pose, threshold)
    lip_labels = source_labels if label_set == LIP else convert_label_map(source_labels, label_set, LIP)
    return category_mask(lip_labels, LIP, sorted(categories))


def mask_on_grid(mask: np.ndarray | torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """M (H, W) or (B, H, W) area-resized to a site's token grid (h, w), flattened to (B, h·w, 1)."""
    tensor = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).float()
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)  # (1, H, W)
    return mask_to_tokens(tensor, grid)  # (B, h·w, 1)
