"""GarmentsNet's Garment-Specific Feature Extractor (GFE, §4.1): one LoRA per garment slot on the
q/k/v projections of every self-attention, ΔŴ_i = {ΔŴ_q^i, ΔŴ_k^i, ΔŴ_v^i} (eq. 3).

The deltas are applied in activation space, Q_i = F_i·Ŵ_q + (F_i·A_q^i)·B_q^i·(alpha/r), so all N
garments run as N rows of one batched UNet pass and nothing re-patches the UNet's weights; the
base projections F_i·Ŵ come from the host (ComfyUI's patched layer, or diffusers' module).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from ..sites import SITES_BY_NAME
from .config import DressingConfig

QKV = 3  # ΔŴ_q, ΔŴ_k, ΔŴ_v


class GarmentLoRA(nn.Module):
    """Per-site, per-slot low-rank deltas of the self-attention q/k/v.

    ``down[site]`` is A, (slots, 3, r, C); ``up[site]`` is B, (slots, 3, C, r), zero-initialised so
    an untrained file leaves GarmentsNet equal to the base UNet.

    Args:
        site_dims: site name -> C, the width of that self-attention (inner width = C in SD1.5).
        slots: number of garment slots.
        rank: r.
        scale: alpha / r.
    """

    def __init__(self, site_dims: Mapping[str, int], slots: int, rank: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.down = nn.ParameterDict()
        self.up = nn.ParameterDict()
        for name, width in site_dims.items():
            down = torch.empty(slots, QKV, rank, width)
            nn.init.kaiming_uniform_(down.view(-1, width), a=math.sqrt(5))
            self.down[name] = nn.Parameter(down)
            self.up[name] = nn.Parameter(torch.zeros(slots, QKV, width, rank))

    @classmethod
    def for_sd15(cls, config: DressingConfig, model_channels: int) -> GarmentLoRA:
        """The LoRA for ``config``'s sites and slots on an SD1.5-layout UNet of ``model_channels``."""
        dims = {name: SITES_BY_NAME[name].channels(model_channels) for name in config.sites}
        return cls(dims, len(config.slots), config.rank, config.scale)

    @property
    def site_names(self) -> tuple[str, ...]:
        return tuple(self.down.keys())

    def deltas(self, site_name: str, hidden: torch.Tensor, slot_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ΔQ, ΔK, ΔV for garment rows ``hidden`` (N, L, C) whose slots are ``slot_ids`` (N,)."""
        down = self.down[site_name]
        up = self.up[site_name]
        cast = hidden.to(device=down.device, dtype=down.dtype)
        ids = slot_ids.to(down.device)
        low = torch.einsum("nlc,nprc->nplr", cast, down.index_select(0, ids))  # (N, 3, L, r)
        delta = torch.einsum("nplr,npcr->nplc", low, up.index_select(0, ids)) * self.scale  # (N, 3, L, C)
        delta = delta.to(hidden)
        return delta[:, 0], delta[:, 1], delta[:, 2]
