"""Tiny, randomly initialised models with the SD1.5 block layout, for tests and toy-world runs.

The UNet has SD1.5's 16 self-attention sites at widths 32/64/128/128 and a 64-wide text context: the
same shapes as the tiny SD1.5-shaped ComfyUI checkpoint the tests load. By default every attention
layer has 8 heads (4-16 wide, as that checkpoint); ``head_dim`` gives each layer width/head_dim
heads instead, and ``tied_qk_gain`` starts the self-attentions as similarity attentions (the toy
substrate's few, wide, sharp heads, see ``train/substrate.py``).
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


def tie_self_attention(unet: UNet2DConditionModel, gain: float) -> None:
    """Start every self-attention (attn1) as a similarity attention: Wq ← gain·Wq and Wk ← Wq, so a
    token's logits are gain²·⟨Wq x_i, Wq x_j⟩/√d, largest for tokens like itself. The two stay
    separate parameters; training unties them."""
    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith("attn1"):
                module.to_q.weight.mul_(gain)
                module.to_k.weight.copy_(module.to_q.weight)


def tiny_unet(seed: int = 0, in_channels: int = 4, widths: tuple[int, ...] = (TINY_MODEL_CHANNELS, 64, 128, 128),
              context_dim: int = TINY_CONTEXT_DIM, head_dim: int | None = None,
              tied_qk_gain: float | None = None) -> UNet2DConditionModel:
    """An SD1.5-layout UNet2DConditionModel (16 attention sites) at the given widths; 8 heads per
    attention layer, or width // ``head_dim`` heads; ``tied_qk_gain``: ``tie_self_attention``."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=in_channels, block_out_channels=widths,
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=context_dim, attention_head_dim=attention_heads(widths, head_dim), norm_num_groups=32,
    )
    if tied_qk_gain is not None:
        tie_self_attention(unet, tied_qk_gain)
    return unet
