"""TruePose's pose encoder (§4.4): four convolutions from the target skeleton image to conv_in's width.

Layout (ours; the paper says only "a lightweight network with four convolutional layers"): 3×3
convolutions with widths ``pose_encoder_widths`` then ``model_channels``, SiLU between them. The
last log2(f) of them have stride 2, so an (H, W) skeleton image lands on the (H/f, W/f) latent grid
of a VAE with factor f: SD's f = 8 strides the last three, a ×4 pixel VAE (the toy32 substrate) the
last two. The stride is the only difference, so every factor has the same keys and shapes. The
last convolution is zero-initialised: an untrained encoder outputs exactly zero, and its output is
**added** to the TargetNet's features after conv_in, so a fresh model equals the base UNet.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ReferenceInputError
from ..pose import BodyPose, render_skeleton

LATENT_FACTOR = 8  # SD's VAE, the factor of every ComfyUI SD1.5 latent
LATENT_FACTORS = (2, 4, 8)  # 1, 2 or 3 of the four convolutions stride by 2


def skeleton_stroke(height: int, width: int) -> int:
    """Stick half-width and joint radius of a drawn target skeleton: 4 px at 256×176 (the OpenPose
    preprocessors' default at that size), scaled with the shorter side, at least 1."""
    return max(1, round(min(height, width) / 44))


def draw_target_skeleton(pose: BodyPose, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 OpenPose drawing of ``pose`` as the pose encoder sees it (training and nodes alike)."""
    stroke = skeleton_stroke(height, width)
    return render_skeleton(pose, width, height, stick_width=stroke, joint_radius=stroke)


class SkeletonImageError(ReferenceInputError):
    """The target skeleton image has the wrong shape for the pose encoder."""


class LatentFactorError(ReferenceInputError, ValueError):
    """The pose encoder was asked for a latent factor it cannot stride to."""


def stride_count(latent_factor: int) -> int:
    """How many of the four convolutions stride by 2 to reach ``latent_factor`` (2, 4 or 8)."""
    if latent_factor not in LATENT_FACTORS:
        raise LatentFactorError(f"latent factor must be one of {list(LATENT_FACTORS)} (the VAE's down-sampling), "
                                f"got {latent_factor}")
    return latent_factor.bit_length() - 1


class PoseEncoder(nn.Module):
    """Skeleton image (B, 3, H, W) in [0, 1] -> features (B, model_channels, H/f, W/f).

    Args:
        model_channels: width of the UNet's conv_in output.
        widths: widths of the first three convolutions.
        in_channels: channels of the skeleton image.
        latent_factor: f, the VAE's down-sampling (8 for SD1.5, 4 for the toy32 substrate).
    """

    def __init__(self, model_channels: int, widths: tuple[int, ...] = (16, 32, 96), in_channels: int = 3,
                 latent_factor: int = LATENT_FACTOR) -> None:
        super().__init__()
        first, second, third = widths
        strided = stride_count(latent_factor)
        strides = [1] * (4 - strided) + [2] * strided  # the last log2(f) convolutions halve the grid
        self.in_channels = in_channels
        self.latent_factor = latent_factor
        self.convs = nn.ModuleList([
            nn.Conv2d(in_channels, first, 3, padding=1, stride=strides[0]),
            nn.Conv2d(first, second, 3, padding=1, stride=strides[1]),
            nn.Conv2d(second, third, 3, padding=1, stride=strides[2]),
        ])
        self.conv_out = nn.Conv2d(third, model_channels, 3, padding=1, stride=strides[3])
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self.activation = nn.SiLU()

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor:
        """Features to add after conv_in for ``skeleton`` (B, 3, H, W); H and W must be multiples of f."""
        if skeleton.ndim != 4 or skeleton.shape[1] != self.in_channels:
            raise SkeletonImageError(
                f"target skeleton image must be (B, {self.in_channels}, H, W), got {tuple(skeleton.shape)}"
            )
        height, width = skeleton.shape[-2:]
        if height % self.latent_factor or width % self.latent_factor:
            raise SkeletonImageError(
                f"target skeleton image is {width}x{height}; both sides must be multiples of {self.latent_factor}"
            )
        hidden = skeleton
        for conv in self.convs:
            hidden = self.activation(conv(hidden))
        return self.conv_out(hidden)  # (B, model_channels, H/f, W/f)
