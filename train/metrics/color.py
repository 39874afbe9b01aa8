"""Colour fidelity inside a parsing region, and leakage of a garment's colour into other regions.

Distances are CIE76 delta E in L*a*b*. A tolerance of 15 separates every pair of toy-world
palette colours (the closest pair, blue and purple, is about 27 apart) while accepting mild noise or shading.
"""

from collections.abc import Sequence

import numpy as np
import torch

from .inputs import MetricInputError, as_color, as_image, as_mask, delta_e, srgb_to_lab

DEFAULT_TOLERANCE = 15.0


def region_lab(image: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """L*a*b* of the pixels of ``image`` inside ``mask``, (N, 3); an empty mask is an error."""
    pixels = as_image(image)
    region = as_mask(mask, pixels.shape[:2])
    if not region.any():
        raise MetricInputError("mask: the region is empty, so its colour cannot be measured")
    return srgb_to_lab(pixels[region])  # (N, 3)


def region_mean_lab(image: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """The mean L*a*b* colour of ``image`` inside ``mask``, (3,): the colour the region shows as
    drawn, its pattern included (at toy sizes a pattern can cover more than half of a garment, so a
    median would name the pattern's colour)."""
    return region_lab(image, mask).mean(0)


def mean_color_error(image: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor,
                     mask: np.ndarray | torch.Tensor) -> float:
    """CIE76 ΔE between the mean L*a*b* colours of two pictures (H, W, 3) inside ``mask`` (H, W)."""
    return float(delta_e(region_mean_lab(image, mask), region_mean_lab(reference, mask)))


def region_color_error(
    image: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor, color: tuple[int, int, int],
) -> float:
    """Delta E between the region's dominant colour (per-channel median in Lab) and ``color``.

    The median ignores a pattern's second colour as long as it covers under half the region
    (true of every toy-world pattern), so this measures the garment's main colour. 0 is exact.
    """
    lab = region_lab(image, mask)
    target = srgb_to_lab(as_color(color))
    return float(delta_e(np.median(lab, axis=0), target))


def color_fidelity(
    image: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor,
    colors: Sequence[tuple[int, int, int]], tolerance: float = DEFAULT_TOLERANCE,
) -> float:
    """Fraction of the region's pixels within ``tolerance`` delta E of any of ``colors``.

    Pass every colour the garment shows (``GarmentSpec.colors()``: main, pattern and part
    colours) to score a render against its garment; pass only the main colour to ask how much of
    the region is that colour. 1.0 is a perfect match, 0.0 no pixel matches.
    """
    lab = region_lab(image, mask)
    if len(colors) == 0:
        raise MetricInputError("colors: give at least one expected colour")
    targets = srgb_to_lab(np.stack([as_color(color) for color in colors]))  # (K, 3)
    distances = delta_e(lab[:, None, :], targets[None, :, :])  # (N, K)
    return float((distances.min(axis=1) <= tolerance).mean())


def color_leakage(
    image: np.ndarray | torch.Tensor, color: tuple[int, int, int], region_mask: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor | None = None, tolerance: float = DEFAULT_TOLERANCE,
) -> float:
    """Fraction of ``region_mask`` pixels that took on a garment's colour.

    Args:
        image: the picture to check.
        color: the garment's colour (sRGB 0..255).
        region_mask: where that garment is not, e.g. the other garments' or the skin's parsing
            regions (``np.isin(parsing, labels)``).
        reference: the ground-truth picture; pixels whose true colour is already within
            ``tolerance`` of ``color`` (a white collar next to a white shirt) are not counted.
        tolerance: delta E below which a pixel counts as that colour.

    Returns:
        0.0 for no leakage up to 1.0 when every counted pixel has the garment's colour; 0.0 when
        no pixel is left to count.
    """
    pixels = as_image(image)
    region = as_mask(region_mask, pixels.shape[:2], "region_mask")
    target = srgb_to_lab(as_color(color))
    if reference is not None:
        truth = as_image(reference, "reference")
        if truth.shape != pixels.shape:
            raise MetricInputError(f"reference: shape {truth.shape} differs from image {pixels.shape}")
        region = region & (delta_e(srgb_to_lab(truth), target) > tolerance)
    if not region.any():
        return 0.0
    near = delta_e(srgb_to_lab(pixels[region]), target) <= tolerance
    return float(near.mean())
