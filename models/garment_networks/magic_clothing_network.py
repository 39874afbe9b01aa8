"""MagicClothing / OMS as a ``Family``: a complete diffusers SD1.5 UNet read by concatenation.

Its published files are bare, complete diffusers UNets, so any complete SD1.5 UNet in that layout is
read this way (keys cannot tell MagicClothing's garment UNet from another UNet; the family decides
only how the garment is read, and every such UNet can be read so).
"""

from __future__ import annotations

import os

import torch

from ..weight_format import BaseModel
from . import magic_clothing
from .network import Family, GarmentContext, GarmentNetwork

DISPLAY_NAME = "MagicClothing / OMS"
CONTEXT_KEY = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"


def base_of(state: dict[str, torch.Tensor]) -> BaseModel:
    """The SD1.5 size a diffusers UNet state dict has (its shapes are then checked against it)."""
    width = state.get("conv_in.weight")
    context = state.get(CONTEXT_KEY)
    if width is None or context is None:
        return BaseModel()  # the check then names the missing key
    return BaseModel(model_channels=int(width.shape[0]), context_dim=int(context.shape[1]))


def read(state: dict[str, torch.Tensor], path: str) -> GarmentNetwork:
    """The garment UNet; the denoiser's own Wk, Wv read its tokens in one softmax (CONCAT, s = 1), and
    the unconditional branch reads zero tokens, as the public CFG does."""
    unet = magic_clothing.garment_unet_state(state, base=base_of(state), source=os.path.basename(path))
    read_as = magic_clothing.MAGIC_CLOTHING_768.reference_config()  # CONCAT, s = 1, uncond ZERO
    return GarmentNetwork(
        family=magic_clothing.FAMILY, display_name=DISPLAY_NAME, garment_unet=unet, mode=read_as.mode,
        strength=read_as.strength, no_garment=read_as.uncond, context=GarmentContext.PROMPT, projections=None,
        resampler=None, licence=magic_clothing.LICENCE, sites=read_as.enabled_site_names, background=0.5,
    )


def converted(state: dict[str, torch.Tensor], path: str) -> dict[str, torch.Tensor]:
    """The whole UNet, unchanged (MagicClothing publishes safetensors already)."""
    return magic_clothing.garment_unet_state(state, base=base_of(state), source=os.path.basename(path))


MAGIC_CLOTHING = Family(
    name=magic_clothing.FAMILY, display_name=DISPLAY_NAME, matches=magic_clothing.matches, read=read, converted=converted,
)
