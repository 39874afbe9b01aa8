"""Per-call patches that turn the connected MODEL into a system's reference network for one pass.

AnyDressing's GarmentsNet and IGR's GarmNet are the user's UNet plus activation-space LoRA deltas
on every self-attention's q/k/v; these patches apply them through ``transformer_options`` of a
single ``apply_model`` call, so nothing is installed on the MODEL.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from comfy.ldm.modules.attention import optimized_attention

from ..models.reference_bank import ReferenceBank
from ..models.sites import AttentionSite

QKVDeltas = Callable[[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class DeltaSelfAttentionPatch:
    """attn1 replace patch of one site during a reference-network pass: q/k/v plus ΔŴ·F.

    Args:
        site: the site.
        deltas: (site name, F (N, L, C)) -> ΔQ, ΔK, ΔV, each (N, L, C).
        bank: the pass's bank; the write patch has stored this site's F in it just before.
    """

    def __init__(self, site: AttentionSite, deltas: QKVDeltas, bank: ReferenceBank) -> None:
        self.site = site
        self.deltas = deltas
        self.bank = bank

    def __call__(self, q, k, v, extra_options):
        hidden = self.bank.get(self.site)  # (N, L, C): this site's F, stored by the attn1_patch
        dq, dk, dv = self.deltas(self.site.name, hidden)
        return optimized_attention(
            q + dq, k + dk, v + dv, extra_options["n_heads"], attn_precision=extra_options.get("attn_precision"),
            transformer_options=extra_options,
        )


def skip_cross_attention(n: torch.Tensor, extra_options: dict) -> torch.Tensor:
    """attn2_output_patch: the cross-attention adds nothing to the residual stream."""
    return torch.zeros_like(n)
