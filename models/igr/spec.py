"""How an IGR weight file is laid out (the ``SystemSpec`` registered in ``models.weight_systems``).

Components:
- ``garmnet`` (GarmNet: attn1 LoRA + the zero-initialised mask channel) under ``igr_garmnet.``;
- ``ip_adapter`` (IPAdapter, its keys in the standard SD1.5 IP-Adapter layout) under ``igr_ip.``.
``atelier.config`` is the IGRConfig as JSON. The denoiser's own update is a separate file for the
core loaders: ``igr_denoiser_lora.safetensors`` (kohya LoRA) or ``igr_denoiser_unet.safetensors``.
Both components are always present; ``high_level`` / ``low_level`` say which were trained.
"""

from __future__ import annotations

from torch import nn

from ..weight_format import BaseModel, SystemSpec
from .config import IGRConfig
from .garmnet import GarmNet
from .ip_adapter import IPAdapter

SYSTEM_NAME = "igr"


def build_igr(config: dict, base: BaseModel) -> dict[str, nn.Module]:
    """GarmNet and the IP-Adapter with the shapes of ``config`` on ``base``."""
    parsed = IGRConfig.from_dict(config)
    return {
        "garmnet": GarmNet.for_sd15(parsed, base.model_channels),
        "ip_adapter": IPAdapter.for_sd15(parsed, base),
    }


def default_igr_config(base: BaseModel) -> dict:
    return IGRConfig().to_dict()


IGR = SystemSpec(
    name=SYSTEM_NAME,
    prefixes={"garmnet": "igr_garmnet.", "ip_adapter": "igr_ip."},
    signature={"garmnet": "mask_in.weight", "ip_adapter": "image_proj.proj.weight"},
    build=build_igr,
    default_config=default_igr_config,
)
