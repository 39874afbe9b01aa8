"""TruePose's pose encoder (§4.4): four convolutions from the target skeleton image to conv_in's width.

Layout (ours; the paper says only "a lightweight network with four convolutional layers"): 3×3
convolutions with widths ``pose_encoder_widths`` then ``model_channels``, the last three with
stride 2, SiLU between them, so an (H, W) skeleton image lands on the (H/8, W/8) latent grid. The
last convolution is zero-initialised: an untrained encoder outputs exactly zero, and its output is
**added** to the TargetNet's features after conv_in, so a fresh model equals the base UNet.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ReferenceInputError
from ..pose import BodyPose, render_skeleton

LATENT_FACTOR = 8


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


class PoseEncoder(nn.Module):
    """Skeleton image (B, 3, H, W) in [0, 1] -> features (B, model_channels, H/8, W/8).

    Args:
        model_channels: width of the UNet's conv_in output.
        widths: widths of the first three convolutions.
        in_channels: channels of the skeleton image.
    """

    def __init__(self, model_channels: int, widths: tuple[int, ...] = (16, 32, 96), in_channels: int = 3) -> None:
        super().__init__()
        first, second, third = widths
        self.in_channels = in_channels
        self.convs = nn.ModuleList([
            nn.Conv2d(in_channels, first, 3, padding=1),
            nn.Conv2d(first, second, 3, padding=1, stride=2),
            nn.Conv2d(second, third, 3, padding=1, stride=2),
        ])
        self.conv_out = nn.Conv2d(third, model_channels, 3, padding=1, stride=2)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self.activation = nn.SiLU()

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor:
        """Features to add after conv_in for ``skeleton`` (B, 3, H, W); H and W must be multiples of 8."""
        if skeleton.ndim != 4 or skeleton.shape[1] != self.in_channels:
            raise SkeletonImageError(
                f"target skeleton image must be (B, {self.in_channels}, H, W), got {tuple(skeleton.shape)}"
            )
        height, width = skeleton.shape[-2:]
        if height % LATENT_FACTOR or width % LATENT_FACTOR:
            raise SkeletonImageError(
                f"target skeleton image is {width}x{height}; both sides must be multiples of {LATENT_FACTOR}"
            )
        hidden = skeleton
        for conv in self.convs:
            hidden = self.activation(conv(hidden))
        return self.conv_out(hidden)  # (B, model_channels, H/8, W/8)
