"""Tiny, randomly initialised models with the SD1.5 block layout, for tests and toy-world runs.

The UNet has SD1.5's 16 self-attention sites at widths 32/64/128/128 and a 64-wide text context: the
same shapes as the tiny SD1.5-shaped ComfyUI checkpoint the tests load. By default every attention
layer has 8 heads (4-16 wide, as that checkpoint); ``head_dim`` gives each layer width/head_dim
heads instead (the toy substrate's few, wide heads, see ``train/substrate.py``).
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel

TINY_CONTEXT_DIM = 64
TINY_MODEL_CHANNELS = 32
TINY_HEADS = 8


class TinyUNetError(ValueError):
    """A tiny UNet option does not fit its widths; the message names the option."""


def attention_heads(widths: tuple[int, ...], head_dim: int | None) -> int | tuple[int, ...]:
    """diffusers' ``attention_head_dim`` (which UNet2DConditionModel reads as the head COUNT per block):
    8 everywhere, or width // head_dim per block."""
    if head_dim is None:
        return TINY_HEADS
    if head_dim < 1 or any(width % head_dim for width in widths):
        raise TinyUNetError(f"head_dim {head_dim} must divide every block width {widths}")
    return tuple(width // head_dim for width in widths)


def tiny_unet(seed: int = 0, in_channels: int = 4, widths: tuple[int, ...] = (TINY_MODEL_CHANNELS, 64, 128, 128),
              context_dim: int = TINY_CONTEXT_DIM, head_dim: int | None = None) -> UNet2DConditionModel:
    """An SD1.5-layout UNet2DConditionModel (16 attention sites) at the given widths; 8 heads per
    attention layer, or width // ``head_dim`` heads."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=in_channels, block_out_channels=widths,
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=context_dim, attention_head_dim=attention_heads(widths, head_dim), norm_num_groups=32,
    )
