"""How an AnyDressing weight file is laid out (the ``SystemSpec`` registered in ``models.weight_systems``).

Components:
- ``garment_lora`` (GarmentLoRA, GFE's ΔŴ_i per slot and site) under ``anydressing_gfe.``;
- ``projections`` (ReferenceProjections, Dressing-Attention's W'k, W'v per site) under ``anydressing_da.``.
``atelier.config`` is the DressingConfig as JSON (slots, rank, alpha, sites). With a fully trained
GarmentsNet (``train/anydressing --garments-net full``) the trained UNet is a separate
diffusion-model file that the core UNETLoader loads; it goes into the encode node's ``model`` input.
"""

from __future__ import annotations

from torch import nn

from ..reference_projections import ReferenceProjections
from ..weight_format import BaseModel, SystemSpec
from .config import DressingConfig
from .garment_lora import GarmentLoRA

SYSTEM_NAME = "anydressing"


def build_anydressing(config: dict, base: BaseModel) -> dict[str, nn.Module]:
    """GFE LoRA and DA projections with the shapes of ``config`` on ``base``."""
    parsed = DressingConfig.from_dict(config)
    return {
        "garment_lora": GarmentLoRA.for_sd15(parsed, base.model_channels),
        "projections": ReferenceProjections.for_sd15(base.model_channels, parsed.sites),
    }


def default_anydressing_config(base: BaseModel) -> dict:
    return DressingConfig().to_dict()


ANYDRESSING = SystemSpec(
    name=SYSTEM_NAME,
    prefixes={"garment_lora": "anydressing_gfe.", "projections": "anydressing_da."},
    # The prefixes are this system's own, so any key under each of them identifies the file.
    signature={"garment_lora": "", "projections": ".weight"},
    build=build_anydressing,
    default_config=default_anydressing_config,
)
