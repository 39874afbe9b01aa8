"""A batch of label maps as the tensors ComfyUI passes between nodes.

- palette IMAGE (B, H, W, 3): each pixel is its class's LIP/ATR palette colour / 255, exactly, so
  ``(x * 255).round()`` gives the colour back (what Garment Mask From Parsing and Encode Pose
  Source's ``*_palette`` formats read);
- label-id IMAGE (B, H, W, 3): grey, every channel ``id / 255`` (Encode Pose Source's ``*_ids``
  formats; saved as PNG it is a grey label-id map);
- MASK (B, H, W) or (B·G, H, W): 1 where the class is one of the chosen categories.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .parsing import LabelSet, convert_label_map


def convert_labels(labels: torch.Tensor, source: LabelSet, target: LabelSet) -> torch.Tensor:
    """(B, H, W) ids of ``source`` -> (B, H, W) int64 ids of ``target`` (see ``convert_label_map``)."""
    if source == target:
        return labels.long()
    rows = [convert_label_map(row, source, target) for row in labels.cpu().numpy()]  # each (H, W)
    return torch.from_numpy(np.stack(rows)).to(labels.device)  # (B, H, W)


def palette_images(labels: torch.Tensor, label_set: LabelSet) -> torch.Tensor:
    """(B, H, W) ids -> (B, H, W, 3) float32 palette IMAGE in [0, 1]."""
    palette = torch.tensor(label_set.palette, dtype=torch.float32, device=labels.device) / 255.0  # (C, 3)
    return palette[labels.long()]  # (B, H, W, 3)


def label_id_images(labels: torch.Tensor) -> torch.Tensor:
    """(B, H, W) ids -> (B, H, W, 3) float32 grey IMAGE whose value × 255 is the id."""
    grey = labels.float() / 255.0  # (B, H, W)
    return grey.unsqueeze(-1).expand(*grey.shape, 3).contiguous()  # (B, H, W, 3)


def category_masks(
    labels: torch.Tensor, label_set: LabelSet, groups: Sequence[Sequence[str]], *, combined: bool = True,
) -> torch.Tensor:
    """MASKs of class groups.

    Args:
        labels: (B, H, W) ids of ``label_set``.
        groups: class-name groups (from ``parser_labels.category_groups``).
        combined: one mask per image covering every group (B, H, W); otherwise one mask per group
            for each image, image-major: image 0's groups in order, then image 1's (B·G, H, W),
            the layout of Apply Dressing's per-latent ``garment_masks``.

    Returns:
        float32 masks, 1.0 inside.
    """
    per_group = []
    for names in groups:
        ids = torch.tensor(label_set.ids(names), device=labels.device)  # (n,)
        per_group.append(torch.isin(labels, ids))  # (B, H, W)
    stacked = torch.stack(per_group, dim=1)  # (B, G, H, W)
    if combined:
        return stacked.any(dim=1).float()  # (B, H, W)
    return stacked.flatten(0, 1).float()  # (B·G, H, W), image-major
