"""Pattern fidelity inside a region, from a three-number signature of the surface.

Signature of a region (all fractions in [0, 1]):

1. coverage: share of pixels more than ``threshold`` delta E away from the region's median
   colour (a solid garment ~0, dots ~0.2, stripes ~0.33, checks ~0.44);
2. row change: share of vertically adjacent pixel pairs (both in the region) whose colours differ
   by more than ``threshold`` (horizontal stripes give about 2 / period);
3. column change: the same for horizontally adjacent pairs (0 for horizontal stripes).

Changes depend on the pattern's scale in pixels, so compare a picture with a ground truth of the
same framing (a generated person with the toy world's render of that person), not a worn garment
with its in-shop picture.
"""

import numpy as np
import torch

from .inputs import MetricInputError, as_image, as_mask, delta_e, srgb_to_lab

CHANGE_THRESHOLD = 10.0
FIDELITY_SCALE = 0.1


def pattern_signature(
    image: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor, threshold: float = CHANGE_THRESHOLD,
) -> np.ndarray:
    """(3,) float64 [coverage, row change, column change] of the region (see module docstring)."""
    pixels = as_image(image)
    region = as_mask(mask, pixels.shape[:2])
    if not region.any():
        raise MetricInputError("mask: the region is empty, so its pattern cannot be measured")
    lab = srgb_to_lab(pixels)  # (H, W, 3)
    median = np.median(lab[region], axis=0)
    coverage = float((delta_e(lab[region], median) > threshold).mean())

    def change(axis: int) -> float:
        first = [slice(None), slice(None)]
        second = [slice(None), slice(None)]
        first[axis], second[axis] = slice(None, -1), slice(1, None)
        pairs = region[tuple(first)] & region[tuple(second)]
        if not pairs.any():
            return 0.0
        steps = delta_e(lab[tuple(first)], lab[tuple(second)])  # (H-1, W) or (H, W-1)
        return float((steps[pairs] > threshold).mean())

    return np.array([coverage, change(0), change(1)])


def pattern_fidelity(
    image: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor, reference_mask: np.ndarray | torch.Tensor | None = None,
) -> float:
    """exp(-L1 distance of the two signatures / 0.1): 1.0 for the same pattern at the same scale,
    near 0 for a different one (stripes vs solid ~0.005, stripes vs checks ~0.05).

    Args:
        image: the picture to score.
        reference: the ground-truth picture.
        mask: region of ``image``.
        reference_mask: region of ``reference`` (defaults to ``mask``).
    """
    first = pattern_signature(image, mask)
    second = pattern_signature(reference, mask if reference_mask is None else reference_mask)
    return float(np.exp(-np.abs(first - second).sum() / FIDELITY_SCALE))
