"""What Atelier's nodes need from a public garment network: its garment UNet and how it is read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

import torch
from torch import nn

from ..reference_config import ReadMode, UncondPolicy
from ..reference_projections import ReferenceProjections
from ..sites import SITE_GROUPS


class GarmentContext(str, Enum):
    """What the garment UNet's cross-attention reads during the garment pass."""

    CLIP_VISION = "clip_vision"  # Resampler tokens of the garment's CLIP ViT-H penultimate states
    PROMPT = "prompt"  # a text prompt's CLIP embedding (MagicClothing: the empty prompt)


@dataclass(frozen=True, eq=False)
class GarmentNetwork:
    """A public garment reference network, read from its published file.

    Args:
        family: the family id (``imagdressing``, ``magic_clothing``, ``stable_garment``).
        display_name: its public name.
        garment_unet: the garment UNet's state dict in diffusers key names.
        mode: how the denoiser reads the banked garment features.
        strength: the strength the public inference uses (λ for ``cross``, the mass factor for ``concat``).
        no_garment: what the unconditional CFG branch reads when it gets "no garment": NONE (no read;
            IMAGDressing) or ZERO (as many zero tokens; MagicClothing trained its CFG so).
        context: what the garment pass's cross-attention reads.
        projections: learned W'k, W'v of the read, or None for the denoiser's own Wk, Wv.
        resampler: the module turning CLIP vision states into the garment pass's context, or None.
        licence: the weights' licence, as the publisher states it.
        sites: the self-attention sites that read the garment.
        every_step: the garment pass runs at every step at the current timestep (StableGarment)
            instead of once at t = 0; such a network is applied by its own node, not Apply Dressing.
        background: the grey level a garment mask paints outside the garment (1 = white; MagicClothing
            multiplies the [-1, 1] image by its mask: 0.5).
    """

    family: str
    display_name: str
    garment_unet: dict[str, torch.Tensor]
    mode: ReadMode
    strength: float
    no_garment: UncondPolicy
    context: GarmentContext
    projections: ReferenceProjections | None
    resampler: nn.Module | None
    licence: str
    sites: tuple[str, ...] = SITE_GROUPS["all"]
    every_step: bool = False
    background: float = 1.0


@dataclass(frozen=True)
class Family:
    """A public garment network family: how to recognise its published files and read them.

    Args:
        name: the family id.
        display_name: its public name, for messages.
        matches: whether a key set is this family's published layout.
        read: (tensors, file path) -> the network; raises WeightFileError naming the file key at fault.
        converted: (tensors, file path) -> the tensors a safetensors conversion keeps (``read`` must
            accept them back).
    """

    name: str
    display_name: str
    matches: Callable[[Iterable[str]], bool]
    read: Callable[[dict[str, torch.Tensor], str], GarmentNetwork]
    converted: Callable[[dict[str, torch.Tensor], str], dict[str, torch.Tensor]]
