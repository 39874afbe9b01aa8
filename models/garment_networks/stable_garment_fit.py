"""StableGarment's garment image preparation (``infer_t2i.py``, ``app.py``), in torch.

The public scripts fit the garment image to the output size H × W before the VAE encodes it:

    garment = Image.open(path).resize((W, H))                              # PIL, bicubic: stretched to H × W
    garment = CenterCrop((H, W))(Resize(max(H, W))(garment))               # shorter side -> max(H, W), bilinear

so the garment fills the output frame, zoomed by max(H, W) / min(H, W) about its centre when the
output is not square. Here the same on a ComfyUI IMAGE (float, antialiased ``F.interpolate`` instead
of PIL's 8-bit filters; the geometry — sizes and crop offsets — is torchvision's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _resize(pixels: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, height, width), antialiased; unchanged when the size already matches."""
    if tuple(pixels.shape[-2:]) == (height, width):
        return pixels
    return F.interpolate(pixels, size=(height, width), mode=mode, align_corners=False, antialias=True)


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision ``Resize(size)`` of an height × width image: the shorter side becomes ``size``, the
    longer one ``int(size · long / short)``."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def center_crop_box(height: int, width: int, crop_height: int, crop_width: int) -> tuple[int, int]:
    """torchvision ``CenterCrop``'s (top, left) offsets (the crop fits inside the image here)."""
    return round((height - crop_height) / 2.0), round((width - crop_width) / 2.0)


def public_garment_pixels(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The garment as the public pipeline encodes it for an height × width output.

    Args:
        image: (N, h, w, C) ComfyUI IMAGE in [0, 1] (channels beyond RGB are dropped).
        height, width: the output image size in pixels.

    Returns:
        (N, height, width, 3) in [0, 1].
    """
    pixels = image[..., :3].movedim(-1, 1)  # (N, 3, h, w)
    stretched = _resize(pixels, height, width, "bicubic").clamp(0.0, 1.0)  # (N, 3, H, W): PIL .resize((W, H))
    side = max(height, width)
    zoomed = _resize(stretched, *shorter_side_size(height, width, side), "bilinear")  # (N, 3, H', W'): Resize(max)
    top, left = center_crop_box(zoomed.shape[-2], zoomed.shape[-1], height, width)
    cropped = zoomed[..., top:top + height, left:left + width]  # (N, 3, H, W): CenterCrop((H, W))
    return cropped.movedim(1, -1).contiguous()  # (N, H, W, 3)
