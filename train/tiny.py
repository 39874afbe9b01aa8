"""Tiny, randomly initialised models with the SD1.5 block layout, for tests and toy-world runs.

The UNet has SD1.5's 16 self-attention sites with 8 heads each, at widths 32/64/128/128 and a
64-wide text context: the same shapes as the tiny SD1.5-shaped ComfyUI checkpoint the tests load.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel

TINY_CONTEXT_DIM = 64
TINY_MODEL_CHANNELS = 32


def tiny_unet(seed: int = 0, in_channels: int = 4, widths: tuple[int, ...] = (TINY_MODEL_CHANNELS, 64, 128, 128),
              context_dim: int = TINY_CONTEXT_DIM) -> UNet2DConditionModel:
    """An SD1.5-layout UNet2DConditionModel (16 attention sites, 8 heads) at the given widths."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=in_channels, block_out_channels=widths,
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=context_dim, attention_head_dim=8, norm_num_groups=32,
    )
