"""Reading a generated item's dominant colour back as a toy-world palette colour.

Method: take the pixels inside the item's target mask, convert them to CIE L*a*b*, take the
per-channel median (robust to a pattern's second colour, which covers under half of every toy-world
garment), and name the nearest palette colour (``GARMENT_COLORS``) by CIE76 delta E. Checked on
ground-truth items by ``evaluate`` (readback accuracy).
"""

from __future__ import annotations

import numpy as np
import torch

from ..metrics.color import region_lab
from ..metrics.inputs import delta_e, srgb_to_lab
from ..toyworld.palette import GARMENT_COLORS, NamedColor

PALETTE_LAB = srgb_to_lab(np.array([color.rgb for color in GARMENT_COLORS], dtype=np.float64) / 255.0)  # (K, 3)


def dominant_color(image: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> NamedColor:
    """The palette colour nearest the Lab median of ``image`` (H, W, 3) inside ``mask`` (H, W)."""
    median = np.median(region_lab(image, mask), axis=0)  # (3,)
    return GARMENT_COLORS[int(np.argmin(delta_e(PALETTE_LAB, median[None, :])))]
