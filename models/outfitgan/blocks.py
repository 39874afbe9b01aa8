"""Convolution blocks shared by OutfitGAN's generators, CCM and discriminators."""

from __future__ import annotations

import torch
from torch import nn


def conv_norm_act(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Conv (reflect-padded) -> InstanceNorm (affine) -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, padding_mode="reflect"),
        nn.InstanceNorm2d(out_channels, affine=True),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x), width kept."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, 3),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def level_channels(base: int, level: int) -> int:
    """Width at encoder level ``level`` (0 = full resolution): base * 2**level, capped at base * 8."""
    return base * min(2 ** level, 8)


class Encoder(nn.Module):
    """A 7x7 stem and ``downsamples`` stride-2 convolutions: (B, C_in, H, W) -> (B, C, H/2**d, W/2**d)."""

    def __init__(self, in_channels: int, base: int, downsamples: int) -> None:
        super().__init__()
        layers = [conv_norm_act(in_channels, base, 7)]
        for level in range(downsamples):
            layers.append(conv_norm_act(level_channels(base, level), level_channels(base, level + 1), 3, stride=2))
        self.layers = nn.Sequential(*layers)
        self.out_channels = level_channels(base, downsamples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
