"""Installs IGR's GarmFus on a ModelPatcher: the foundation's reference attachment reading GarmNet's
bank by K/V append (high level, eq. 4) plus an attn2 replace patch per site for the IP-Adapter's
decoupled cross-attention (low level, eq. 3).

GarmNet ran in the restoration node (once per person, cached by ComfyUI), so every run is created
holding the bank; the IP tokens F_ll were computed there too. Rows of the unconditional CFG chunk
read neither (UncondPolicy.NONE), as in training with condition drop.
"""

from __future__ import annotations

import comfy.model_patcher
import torch
from comfy.ldm.modules.attention import optimized_attention

from ..models.igr.igr_run import IGRRun
from ..models.igr.ip_adapter import IPAdapter
from ..models.reference_bank import ReferenceBank
from ..models.reference_config import ReferenceConfig
from ..models.sites import SITES_BY_NAME, AttentionSite
from .reference_attachment import ReferenceAttachment
from .reference_patch import run_for


class IPReadPatch:
    """attn2 replace patch of one site: Attn(Q, K_c, V_c) + λ_ip·Attn(Q, K_ll, V_ll) (eq. 3).

    Args:
        site: the site whose cross-attention this patch replaces.
        run_key: where to find the run in ``extra_options``.
        previous: a replace patch already installed at this attn2 (another node's); it computes the
            text term, so patches chain instead of overwriting.
    """

    def __init__(self, site: AttentionSite, run_key: str, previous=None) -> None:
        self.site = site
        self.run_key = run_key
        self.previous = previous

    def __deepcopy__(self, memo) -> "IPReadPatch":
        return self

    def to(self, device_or_dtype) -> "IPReadPatch":
        """Nothing to move: the patch holds no tensors of its own."""
        return self

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]

        def attention(q_, k_, v_, heads_):
            return optimized_attention(q_, k_, v_, heads_, attn_precision=extra_options.get("attn_precision"),
                                       transformer_options=extra_options)

        text_out = self.previous(q, k, v, extra_options) if self.previous is not None else attention(q, k, v, heads)
        run = run_for(extra_options, self.run_key)
        if run is None or run.ip_strength_at(self.site) == 0.0:
            return text_out
        return run.ip_read(self.site, q, text_out, heads, attention)


class IGRAttachment(ReferenceAttachment):
    """One garment restoration: GarmNet's bank, IP tokens and the IP-Adapter, on a MODEL clone.

    Args:
        config: CONCAT mode; ``strength`` is the high-level strength s (1 = the paper's eq. 4).
        bank: GarmNet's bank (on the offload device), or None without the high-level path.
        ip_adapter: the IP-Adapter (to_k_ip / to_v_ip per site), or None without the low-level path.
        ip_tokens: (B, N, D) F_ll on the offload device, or None.
        ip_strength: λ_ip of eq. 3.
        ip_patcher: the loader's ModelPatcher of ``ip_adapter`` (loads it with the UNet).
    """

    def __init__(self, config: ReferenceConfig, bank: ReferenceBank | None, ip_adapter: IPAdapter | None,
                 ip_tokens: torch.Tensor | None, ip_strength: float,
                 ip_patcher: comfy.model_patcher.ModelPatcher | None = None) -> None:
        super().__init__(config, None)
        self.bank = bank
        self.ip_adapter = ip_adapter
        self.ip_tokens = ip_tokens
        self.ip_strength = ip_strength
        self.ip_patcher = ip_patcher

    def new_run(self, device: torch.device) -> IGRRun:
        tokens = None if self.ip_tokens is None else self.ip_tokens.to(device)
        run = IGRRun(self.config, ip_adapter=self.ip_adapter, ip_tokens=tokens, ip_strength=self.ip_strength)
        if self.bank is not None:
            run.set_bank(self.bank.to(device))
        return run

    def install(self, model: comfy.model_patcher.ModelPatcher) -> None:
        super().install(model)
        if self.ip_adapter is None or self.ip_tokens is None:
            return
        existing = model.model_options["transformer_options"].get("patches_replace", {}).get("attn2", {})
        for name in self.ip_adapter.site_names:
            site = SITES_BY_NAME[name]
            previous = existing.get(site.key, existing.get(site.key[:2]))
            model.set_model_attn2_replace(IPReadPatch(site, self.run_key, previous), site.block, site.number, site.block_index)
        if self.ip_patcher is not None:
            model.set_additional_models(f"{self.run_key}_ip", [self.ip_patcher])
