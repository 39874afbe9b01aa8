"""Full-reference image similarity: PSNR and SSIM (Wang et al. 2004), against ground truth.

SSIM uses the standard setting: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
data range 1 (C1 = 0.0001, C2 = 0.0009), population (not sample) statistics, only windows fully
inside the image ("valid", as the reference MATLAB code), computed per RGB channel and averaged.
"""

import math

import cv2
import numpy as np
import torch

from .inputs import MetricInputError, as_image, as_mask

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1 = 0.01
K2 = 0.03


def _pair(image: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    first, second = as_image(image), as_image(reference, "reference")
    if first.shape != second.shape:
        raise MetricInputError(f"reference: shape {second.shape} differs from image {first.shape}")
    return first, second


def psnr(
    image: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB for data range 1: 10 log10(1 / MSE); inf for identical images.

    ``mask`` (H, W) restricts the mean squared error to a region.
    """
    first, second = _pair(image, reference)
    squared = (first - second) ** 2  # (H, W, 3)
    if mask is not None:
        region = as_mask(mask, first.shape[:2])
        if not region.any():
            raise MetricInputError("mask: the region is empty")
        squared = squared[region]
    mse = float(squared.mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> np.ndarray:
    """(size,) normalised 1-D Gaussian; the 2-D window is its outer product."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    weights = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return weights / weights.sum()


def _filter_valid(plane: np.ndarray, window: np.ndarray) -> np.ndarray:
    blurred = cv2.sepFilter2D(plane, cv2.CV_64F, window, window, borderType=cv2.BORDER_REFLECT)
    half = len(window) // 2
    return blurred[half:-half, half:-half]


def ssim_map(image: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor) -> np.ndarray:
    """(H - 10, W - 10, 3) local SSIM values (valid windows only)."""
    first, second = _pair(image, reference)
    height, width = first.shape[:2]
    if height < WINDOW_SIZE or width < WINDOW_SIZE:
        raise MetricInputError(f"image: SSIM needs at least {WINDOW_SIZE}x{WINDOW_SIZE} pixels, got {height}x{width}")
    window = gaussian_window()
    c1, c2 = K1**2, K2**2
    channels = []
    for channel in range(3):
        x, y = first[..., channel], second[..., channel]
        mu_x, mu_y = _filter_valid(x, window), _filter_valid(y, window)
        var_x = _filter_valid(x * x, window) - mu_x**2
        var_y = _filter_valid(y * y, window) - mu_y**2
        cov = _filter_valid(x * y, window) - mu_x * mu_y
        numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
        denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        channels.append(numerator / denominator)
    return np.stack(channels, axis=-1)


def ssim(
    image: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor | None = None,
) -> float:
    """Mean SSIM over valid windows and RGB channels; 1.0 for identical images.

    ``mask`` (H, W) restricts the mean to the windows centred inside a region (nan when no valid
    window is centred there).
    """
    local = ssim_map(image, reference)  # (H - 10, W - 10, 3)
    if mask is None:
        return float(local.mean())
    half = WINDOW_SIZE // 2
    region = as_mask(mask, (local.shape[0] + 2 * half, local.shape[1] + 2 * half))[half:-half, half:-half]
    return float(local[region].mean()) if region.any() else float("nan")
