"""A fixed, parameter-free "pixel VAE" for toy-world runs (no pretrained VAE can be downloaded).

Encoder E: the RGB image scaled to [-1, 1], average-pooled ``factor``x (SD's 8x by default), plus one
zero channel, so latents have SD's 4 channels. Decoder D: the first three channels bilinearly
upsampled back and mapped to [0, 1]. D(E(x)) is a blurred x; both are differentiable, so GTL's
Î = D(ẑ_0) (eq. 10) carries gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LATENT_CHANNELS = 4


class PixelVAE(nn.Module):
    """Average-pool encoder / bilinear decoder with SD's 4 latent channels.

    Args:
        factor: spatial down-sampling factor of the latent.
    """

    def __init__(self, factor: int = 8) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"PixelVAE factor must be >= 1, got {factor}")
        self.factor = factor

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> latents (B, 4, H/f, W/f)."""
        pooled = F.avg_pool2d(images * 2.0 - 1.0, self.factor)  # (B, 3, H/f, W/f)
        return torch.cat([pooled, torch.zeros_like(pooled[:, :1])], dim=1)  # (B, 4, H/f, W/f)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, 4, h, w) -> images (B, 3, h·f, w·f) in [0, 1] (not clamped, so gradients flow)."""
        size = (latents.shape[-2] * self.factor, latents.shape[-1] * self.factor)
        rgb = F.interpolate(latents[:, :3], size=size, mode="bilinear", align_corners=False)  # (B, 3, H, W)
        return (rgb + 1.0) / 2.0
