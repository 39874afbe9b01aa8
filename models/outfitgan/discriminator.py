"""Multi-scale discriminators of OutfitGAN (arXiv 2502.06827): one per target item, each a stack of
PatchGAN discriminators at successively halved resolutions (pix2pixHD style), conditioned on the
source item and the target mask. Training-only: they are not part of the exported weight file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Sizes of the discriminators.

    Args:
        channels: width of the first layer (doubles per layer, capped at 8x).
        layers: stride-2 layers of each PatchGAN.
        scales: number of resolutions (1 = full only; 2 adds half resolution, ...).
    """

    channels: int = 32
    layers: int = 3
    scales: int = 2


CONDITION_CHANNELS = 3 + 1  # source item + target mask


class PatchDiscriminator(nn.Module):
    """(B, 7, H, W) [source, mask, item] -> (B, 1, h, w) patch realness scores (LSGAN: no sigmoid)."""

    def __init__(self, channels: int, layers: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(CONDITION_CHANNELS + 3, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = channels
        for layer in range(1, layers):
            out = channels * min(2 ** layer, 8)
            blocks += [nn.Conv2d(width, out, 4, stride=2, padding=1), nn.InstanceNorm2d(out, affine=True),
                       nn.LeakyReLU(0.2, True)]
            width = out
        blocks.append(nn.Conv2d(width, 1, 3, padding=1))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MultiScaleDiscriminator(nn.Module):
    """``scales`` PatchGANs; scale k sees the input average-pooled k times."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(config.channels, config.layers) for _ in range(config.scales))

    def forward(self, source: torch.Tensor, mask: torch.Tensor, item: torch.Tensor) -> list[torch.Tensor]:
        """Patch scores per scale for item (B, 3, H, W) given source (B, 3, H, W) and mask (B, 1, H, W)."""
        x = torch.cat([source, mask, item], dim=1) * 2.0 - 1.0  # (B, 7, H, W)
        outputs = []
        for index, discriminator in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs


class OutfitDiscriminators(nn.Module):
    """One multi-scale discriminator D_i per target item ``slot``."""

    def __init__(self, slots: tuple[str, ...], config: DiscriminatorConfig) -> None:
        super().__init__()
        self.items = nn.ModuleDict({slot: MultiScaleDiscriminator(config) for slot in slots})

    def forward(self, slot: str, source: torch.Tensor, mask: torch.Tensor, item: torch.Tensor) -> list[torch.Tensor]:
        return self.items[slot](source, mask, item)
