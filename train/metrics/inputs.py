"""Input conventions shared by every metric.

Images: numpy (H, W, 3) RGB, either uint8 (0..255) or float in [0, 1]; or a torch tensor
(3, H, W) float in [0, 1] (the torch channel-first convention). Everything is converted to a
numpy (H, W, 3) float64 array in [0, 1]. Masks: (H, W) bool-like numpy arrays or tensors.
Colours: sRGB triples in 0..255 (the toy world's palette convention).
"""

import numpy as np
import torch

RANGE_TOLERANCE = 1e-3


class MetricInputError(ValueError):
    """An image, mask or label list has the wrong type, shape or range; the message names it."""


def as_image(image: np.ndarray | torch.Tensor, name: str = "image") -> np.ndarray:
    """Convert an image to (H, W, 3) float64 in [0, 1] (see module docstring for what is accepted)."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise MetricInputError(f"{name}: a torch image must be (3, H, W), got {tuple(image.shape)}")
        array = image.detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()  # (H, W, 3)
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise MetricInputError(f"{name}: a numpy image must be (H, W, 3), got {image.shape}")
        array = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    else:
        raise MetricInputError(f"{name}: expected a numpy array or torch tensor, got {type(image).__name__}")
    low, high = float(array.min()), float(array.max())
    if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
        raise MetricInputError(f"{name}: float values must lie in [0, 1], got min {low:.3f} max {high:.3f}")
    return np.clip(array, 0.0, 1.0)


def as_mask(mask: np.ndarray | torch.Tensor, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """Convert a mask to (H, W) bool and check it matches an image of ``shape`` (H, W)."""
    array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if array.shape != tuple(shape):
        raise MetricInputError(f"{name}: expected shape {tuple(shape)}, got {array.shape}")
    return array.astype(bool)


def as_color(color: tuple[int, int, int] | np.ndarray, name: str = "color") -> np.ndarray:
    """Convert an sRGB 0..255 triple to a (3,) float64 array in [0, 1]."""
    array = np.asarray(color, dtype=np.float64)
    if array.shape != (3,) or array.min() < 0 or array.max() > 255:
        raise MetricInputError(f"{name}: expected an sRGB triple in 0..255, got {color!r}")
    return array / 255.0


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> (..., 3) CIE L*a*b* (D65 white)."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    matrix = np.array([
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ])
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    epsilon, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = np.where(xyz > epsilon, np.cbrt(xyz), (kappa * xyz + 16.0) / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e(first_lab: np.ndarray, second_lab: np.ndarray) -> np.ndarray:
    """CIE76 colour difference (Euclidean distance in Lab); about 2.3 is just noticeable."""
    return np.linalg.norm(first_lab - second_lab, axis=-1)
