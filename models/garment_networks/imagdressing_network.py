"""IMAGDressing-v1 as a ``Family``: its published file read into a ``GarmentNetwork``."""

from __future__ import annotations

import os

import torch

from . import imagdressing
from .network import Family, GarmentContext, GarmentNetwork

# The weight card says Apache-2.0, the code's README says research use only: treat it as research-only.
LICENCE = "research only (the code README restricts use to research; the weight card says Apache-2.0)"


def read(state: dict[str, torch.Tensor], path: str) -> GarmentNetwork:
    """The garment UNet (``ref_unet.``), the Resampler (``proj.``) and to_k_ref/to_v_ref as W'k, W'v."""
    parts = imagdressing.split_state_dict(state, os.path.basename(path))
    read_as = imagdressing.reference_config()  # the public inference: CROSS, λ = image_scale, uncond none
    return GarmentNetwork(
        family=imagdressing.FAMILY, display_name=imagdressing.DISPLAY_NAME, garment_unet=parts.garment_unet,
        mode=read_as.mode, strength=read_as.strength, no_garment=read_as.uncond, context=GarmentContext.CLIP_VISION,
        projections=imagdressing.reference_projections(parts), resampler=imagdressing.build_resampler(parts),
        licence=LICENCE, sites=read_as.enabled_site_names,
    )


def converted(state: dict[str, torch.Tensor], path: str) -> dict[str, torch.Tensor]:
    """The used tensors under their published names (the frozen training denoiser ``unet.*`` is dropped)."""
    return imagdressing.converted_state_dict(imagdressing.split_state_dict(state, os.path.basename(path)))


IMAGDRESSING = Family(
    name=imagdressing.FAMILY, display_name=imagdressing.DISPLAY_NAME, matches=imagdressing.matches, read=read,
    converted=converted,
)
