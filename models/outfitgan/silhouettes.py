"""Default target reference masks, one per outfit category, for when the user gives none.

Each silhouette is drawn from a few shapes in normalised coordinates (x, y in [0, 1], y down), in
the framing of the toy world's in-shop pictures: an upper with long sleeves, a tote bag with a
handle, a pair of trousers, and a pair of shoes seen from above side by side.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import OUTFIT_ORDER
from .errors import OutfitInputError


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size
    return coords[None, :], coords[:, None]  # x (1, S), y (S, 1)


def _box(x, y, left, top, right, bottom) -> np.ndarray:
    return (x >= left) & (x <= right) & (y >= top) & (y <= bottom)


def _ellipse(x, y, cx, cy, rx, ry) -> np.ndarray:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _sleeve(x, y, shoulder_x, direction) -> np.ndarray:
    # A band slanting outwards and down from the shoulder, 0.12 wide, to y = 0.75.
    centre = shoulder_x + direction * (y - 0.2) * 0.35
    return (np.abs(x - centre) <= 0.07) & (y >= 0.2) & (y <= 0.75)


def _upper(x, y) -> np.ndarray:
    torso = _box(x, y, 0.3, 0.18, 0.7, 0.85)
    return torso | _sleeve(x, y, 0.3, -1.0) | _sleeve(x, y, 0.7, 1.0)


def _bag(x, y) -> np.ndarray:
    body = _box(x, y, 0.25, 0.45, 0.75, 0.85)
    ring = _ellipse(x, y, 0.5, 0.45, 0.18, 0.22) & ~_ellipse(x, y, 0.5, 0.45, 0.14, 0.18)
    return body | (ring & (y <= 0.45))


def _lower(x, y) -> np.ndarray:
    waist = _box(x, y, 0.3, 0.12, 0.7, 0.3)
    return waist | _box(x, y, 0.3, 0.3, 0.48, 0.9) | _box(x, y, 0.52, 0.3, 0.7, 0.9)


def _shoes(x, y) -> np.ndarray:
    return _ellipse(x, y, 0.3, 0.5, 0.12, 0.06) | _ellipse(x, y, 0.7, 0.5, 0.12, 0.06)


_DRAW = {"upper": _upper, "bag": _bag, "lower": _lower, "shoes": _shoes}


def default_silhouette(slot: str, size: int) -> torch.Tensor:
    """The default mask of category ``slot`` as float32 (1, size, size) in {0, 1}."""
    if slot not in _DRAW:
        raise OutfitInputError(f"no default silhouette for category '{slot}'; categories: {OUTFIT_ORDER}")
    x, y = _grid(size)
    mask = _DRAW[slot](x, y)  # (S, S) bool
    return torch.from_numpy(mask.astype(np.float32))[None]  # (1, S, S)
