"""How an OutfitGAN weight file is laid out (the ``SystemSpec`` registered in ``models.weight_systems``).

Components: ``generator`` (``OutfitGenerator``: the N-1 item generators, or the shared one) under
``outfitgan_generator.``, and ``ccm`` (the frozen Collocation Classification Module, used by the
compatibility-score node) under ``outfitgan_ccm.``. Discriminators are training-only and not exported.

What ``BaseModel`` means for a GAN: OutfitGAN has no base model to patch, so the file's
``atelier.base_model`` is ``{"family": "outfitgan", "model_channels": <generator base_channels>,
"context_dim": 0}`` (no text context). Every other size (image size, SAM grid, CCM widths, the
shared/per-item and SAM switches) is in ``atelier.config``, the ``OutfitGANConfig`` as JSON, which
alone decides the tensor shapes.
"""

from __future__ import annotations

from torch import nn

from ..weight_format import BaseModel, SystemSpec
from .ccm import CollocationClassifier
from .config import OutfitGANConfig
from .generator import OutfitGenerator

SYSTEM_NAME = "outfitgan"
FAMILY = "outfitgan"


def outfitgan_base(config: OutfitGANConfig) -> BaseModel:
    """The ``BaseModel`` written to an OutfitGAN file made with ``config``."""
    return BaseModel(family=FAMILY, model_channels=config.base_channels, context_dim=0)


def build_outfitgan(config: dict, base: BaseModel) -> dict[str, nn.Module]:
    """Generator and CCM with the shapes of ``config`` (``base`` carries no extra shape information)."""
    parsed = OutfitGANConfig.from_dict(config)
    return {"generator": OutfitGenerator(parsed), "ccm": CollocationClassifier(parsed)}


def default_outfitgan_config(base: BaseModel) -> dict:
    """The default 256x256 config (generator width from ``base`` when it is an outfitgan base)."""
    if base.family == FAMILY:
        return OutfitGANConfig(base_channels=base.model_channels).to_dict()
    return OutfitGANConfig().to_dict()


OUTFITGAN = SystemSpec(
    name=SYSTEM_NAME,
    prefixes={"generator": "outfitgan_generator.", "ccm": "outfitgan_ccm."},
    signature={"generator": "to_rgb.weight", "ccm": "lstm.weight_ih_l0_reverse"},
    build=build_outfitgan,
    default_config=default_outfitgan_config,
)
