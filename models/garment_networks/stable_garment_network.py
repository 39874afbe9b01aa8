"""StableGarment text2img as a ``Family``: the published garment encoder (``garment_encoder/``), read
by the denoiser's own frozen self-attention and re-run at every step.

The published ``diffusion_pytorch_model.safetensors`` is pruned (662 tensors, see
``stable_garment.PRUNED_KEYS``) and recognised by its keys alone. A garment encoder saved whole has a
plain UNet's keys, which only its folder's ``config.json`` (``"_class_name": "GarmentEncoderModel"``)
tells apart from MagicClothing's; ``families.read_garment_network`` checks that file.
"""

from __future__ import annotations

import os

import torch

from . import stable_garment
from .magic_clothing_network import base_of
from .network import Family, GarmentContext, GarmentNetwork

DISPLAY_NAME = "StableGarment (text2img)"


def read(state: dict[str, torch.Tensor], path: str) -> GarmentNetwork:
    """The garment encoder as a whole UNet (the pruned tail zero-filled: it never reaches the bank),
    read as the public ``MODE == "read"`` block does: CROSS with W' = W (no projections), λ = 1, at
    middle_0 and output_3..11 ("midup"), the unconditional rows reading nothing (style_fidelity 1),
    its context a prompt (CLIP("") in app.py), its pass rerun at every step."""
    settings = stable_garment.STABLE_GARMENT_T2I
    unet = stable_garment.garment_unet_state(state, base=base_of(state), source=os.path.basename(path))
    return GarmentNetwork(
        family=stable_garment.FAMILY, display_name=DISPLAY_NAME, garment_unet=unet, mode=settings.mode,
        strength=settings.strength, no_garment=settings.uncond, context=GarmentContext.PROMPT, projections=None,
        resampler=None, licence=stable_garment.LICENCE, sites=settings.sites, every_step=True,
    )


def converted(state: dict[str, torch.Tensor], path: str) -> dict[str, torch.Tensor]:
    """The file's own tensors, checked (the published layout, or a whole UNet, stays as it is)."""
    stable_garment.garment_unet_state(state, base=base_of(state), source=os.path.basename(path))
    return dict(state)


STABLE_GARMENT = Family(
    name=stable_garment.FAMILY, display_name=DISPLAY_NAME, matches=stable_garment.matches, read=read,
    converted=converted,
)

