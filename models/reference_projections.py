"""Learned reference projections W'k, W'v per site (AnyDressing eq. 6; TruePose's fusion).

They project the stored reference activations F into K' = F·W'k and V' = F·W'v for the CROSS read
mode; the paper initialises them from the frozen self-attention's Wk, Wv.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .sites import SD15_SITES, AttentionSite


class ReferenceProjections(nn.Module):
    """W'k and W'v for a set of sites.

    Args:
        site_dims: site name -> (C, inner): input width of the stored activations and the
            attention width (heads × head dim) of that site.
    """

    def __init__(self, site_dims: Mapping[str, tuple[int, int]]) -> None:
        super().__init__()
        self.to_k = nn.ModuleDict({name: nn.Linear(c, inner, bias=False) for name, (c, inner) in site_dims.items()})
        self.to_v = nn.ModuleDict({name: nn.Linear(c, inner, bias=False) for name, (c, inner) in site_dims.items()})

    @classmethod
    def for_sd15(cls, model_channels: int, site_names: tuple[str, ...] | None = None) -> "ReferenceProjections":
        """Projections for SD1.5-layout sites (inner width = channels, as in SD1.5's attn1)."""
        sites = [s for s in SD15_SITES if site_names is None or s.name in site_names]
        return cls({s.name: (s.channels(model_channels), s.channels(model_channels)) for s in sites})

    @torch.no_grad()
    def initialise_from(self, base_kv: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Copy the base layer's Wk, Wv (site name -> (Wk, Wv), each (inner, C)) into W'k, W'v."""
        for name, (weight_k, weight_v) in base_kv.items():
            self.to_k[name].weight.copy_(weight_k)
            self.to_v[name].weight.copy_(weight_v)

    @property
    def site_names(self) -> tuple[str, ...]:
        """Sites that have projections."""
        return tuple(self.to_k.keys())

    def project(self, site: AttentionSite, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K', V' (B, T_ref, inner) for reference activations ``states`` (B, T_ref, C) at ``site``."""
        weight_k = self.to_k[site.name].weight
        weight_v = self.to_v[site.name].weight
        cast = states.to(device=weight_k.device, dtype=weight_k.dtype)
        return F.linear(cast, weight_k).to(states), F.linear(cast, weight_v).to(states)
