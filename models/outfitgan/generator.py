"""OutfitGAN's item generators (arXiv 2502.06827): encoder over the source item O_k and the target
reference mask, the Semantic Alignment Module, and a decoder that paints the target item inside
its mask. ``OutfitGenerator`` holds the N-1 item generators of the paper, or one generator shared
by every target item and conditioned on its category (the paper's open question, as an option).

Images at the module boundary are float (B, 3, H, W) in [0, 1]; masks (B, 1, H, W) in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import Encoder, ResidualBlock, conv_norm_act, level_channels
from .config import OutfitGANConfig
from .errors import OutfitInputError
from .sam import SemanticAlignment, concatenate_without_alignment


class ItemGenerator(nn.Module):
    """One item generator G_i: (source item O_k, target mask [+ category planes]) -> item.

    Args:
        config: sizes and the SAM switch.
        condition_channels: channels of the mask input (1, or 1 + number of categories when shared).
    """

    def __init__(self, config: OutfitGANConfig, condition_channels: int) -> None:
        super().__init__()
        base, depth = config.base_channels, config.downsamples
        self.source_encoder = Encoder(3, base, depth)
        self.mask_encoder = Encoder(condition_channels, base, depth)
        width = self.source_encoder.out_channels
        self.sam = SemanticAlignment(width, config.sam_temperature) if config.use_sam else None
        self.fuse = conv_norm_act(2 * width, width, 3)
        self.residual = nn.Sequential(*[ResidualBlock(width) for _ in range(config.residual_blocks)])
        # Decoder: upsample, then the target mask joins again at every level so edges stay on the silhouette.
        self.up = nn.ModuleList(
            conv_norm_act(level_channels(base, level + 1) + 1, level_channels(base, level), 3)
            for level in reversed(range(depth))
        )
        self.to_rgb = nn.Conv2d(base + 1, 3, 7, padding=3, padding_mode="reflect")

    def forward(self, source: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate one item; returns (image (B, 3, H, W) in [0, 1], SAM attention (B, V, U) or None)."""
        mask = condition[:, :1]
        f_x = self.source_encoder(source * 2.0 - 1.0)  # F_x (B, C, h, w)
        f_y = self.mask_encoder(condition * 2.0 - 1.0)  # F_y (B, C, h, w)
        if self.sam is not None:
            warped, attention = self.sam(f_x, f_y)
        else:
            warped, attention = concatenate_without_alignment(f_x, f_y), None
        hidden = self.residual(self.fuse(torch.cat([warped, f_y], dim=1)))  # (B, C, h, w)
        for layer in self.up:
            hidden = F.interpolate(hidden, scale_factor=2.0, mode="nearest")
            hidden = layer(torch.cat([hidden, _resize_mask(mask, hidden)], dim=1))
        image = torch.tanh(self.to_rgb(torch.cat([hidden, mask * 2.0 - 1.0], dim=1)))  # (B, 3, H, W)
        return (image + 1.0) / 2.0, attention


def _resize_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(mask, size=like.shape[-2:], mode="area") * 2.0 - 1.0  # (B, 1, h, w)


class OutfitGenerator(nn.Module):
    """The generator side of OutfitGAN: every target item from one source item and target masks.

    Args:
        config: ``shared_generator`` picks one category-conditioned generator or N-1 item generators.
    """

    def __init__(self, config: OutfitGANConfig) -> None:
        super().__init__()
        self.config = config
        self.slots = config.target_slots
        if config.shared_generator:
            self.shared = ItemGenerator(config, 1 + len(self.slots))
            self.items = None
        else:
            self.shared = None
            self.items = nn.ModuleDict({slot: ItemGenerator(config, 1) for slot in self.slots})

    def check_inputs(self, source: torch.Tensor, masks: dict[str, torch.Tensor]) -> None:
        """Raise an OutfitInputError naming the input unless shapes fit the config."""
        size = self.config.image_size
        if source.ndim != 4 or source.shape[1] != 3 or tuple(source.shape[-2:]) != (size, size):
            raise OutfitInputError(
                f"source item must be (B, 3, {size}, {size}); got {tuple(source.shape)}"
            )
        for slot in self.slots:
            if slot not in masks:
                raise OutfitInputError(f"no target mask for '{slot}'; give one per target item {self.slots}")
            mask = masks[slot]
            if mask.shape != (source.shape[0], 1, size, size):
                raise OutfitInputError(
                    f"target mask '{slot}' must be ({source.shape[0]}, 1, {size}, {size}); got {tuple(mask.shape)}"
                )

    def condition(self, mask: torch.Tensor, slot: str) -> torch.Tensor:
        """The generator's mask input: the mask alone, or with one-hot category planes when shared."""
        if self.shared is None:
            return mask
        planes = torch.zeros(mask.shape[0], len(self.slots), *mask.shape[-2:], dtype=mask.dtype, device=mask.device)
        planes[:, self.slots.index(slot)] = 1.0  # (B, N-1, H, W)
        return torch.cat([mask, planes], dim=1)

    def generate_item(self, source: torch.Tensor, mask: torch.Tensor, slot: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One target item of category ``slot``: (image (B, 3, H, W), SAM attention or None)."""
        if slot not in self.slots:
            raise OutfitInputError(f"'{slot}' is not a generated category of this model (generates {self.slots})")
        generator = self.shared if self.shared is not None else self.items[slot]
        return generator(source, self.condition(mask, slot))

    def forward(self, source: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every target item: slot -> (B, 3, H, W) in [0, 1]."""
        self.check_inputs(source, masks)
        return {slot: self.generate_item(source, masks[slot], slot)[0] for slot in self.slots}
