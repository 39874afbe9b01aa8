"""Tiny models with the SD1.5 block layout (16 self-attention sites), built from configs with random weights."""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel

TINY_CONTEXT_DIM = 64
TINY_MODEL_CHANNELS = 32


def tiny_unet(seed: int = 0) -> UNet2DConditionModel:
    """A 32-channel UNet2DConditionModel with SD1.5's layout (8 heads per attention, like SD1.5)."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(TINY_MODEL_CHANNELS, 64, 128, 128),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TINY_CONTEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    return unet.eval()
