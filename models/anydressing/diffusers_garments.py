"""GarmentsNet's pass on a diffusers SD1.5 UNet (training and tests; ComfyUI's is in
nodes/dressing_garments.py and gives the same bank for the same weights).

One batched UNet call at t = 0 over the N garment latents (appendix: "a single forward pass
(timestep t = 0)"): every self-attention adds its slot's LoRA deltas (eq. 3–4), every cross-attention
is skipped (§4.1: "we excise the cross-attention modules in GarmentsNet"), and the input of each
Dressing-Attention site's self-attention, F_k, is banked row by row.
"""

from __future__ import annotations

import torch

from ..diffusers_host import sd15_attn1_key
from ..reference_attention import multihead_attention
from ..reference_bank import ReferenceBank
from ..sites import SITES_BY_NAME, AttentionSite
from .garment_lora import GarmentLoRA


class GarmentSelfAttnProcessor:
    """attn1 of one site in GarmentsNet: bank F_k, then self-attention with Ŵ + ΔŴ_slot."""

    def __init__(self, site: AttentionSite, owner: DiffusersGarmentsNet) -> None:
        self.site = site
        self.owner = owner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        owner = self.owner
        owner.writing.store(self.site, hidden_states)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        if self.site.name in owner.lora.site_names:
            dq, dk, dv = owner.lora.deltas(self.site.name, hidden_states, owner.slot_ids)
            q, k, v = q + dq, k + dk, v + dv
        out = multihead_attention(q, k, v, attn.heads)  # eq. 4, each garment row on its own
        return attn.to_out[1](attn.to_out[0](out))


class SkippedCrossAttnProcessor:
    """attn2 in GarmentsNet: contributes nothing (the block's residual keeps x unchanged)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        return torch.zeros_like(hidden_states)


class DiffusersGarmentsNet:
    """Runs GarmentsNet (a diffusers UNet plus the GFE LoRA) over garment latents.

    Use as a context manager; the UNet's processors are restored on exit::

        with DiffusersGarmentsNet(unet, lora, sites) as garments_net:
            rows = garments_net.encode(latents, slot_ids)   # ReferenceBank, one row per garment

    Args:
        unet: the GarmentsNet UNet (the frozen base in LoRA mode, a trained copy in full mode).
        lora: the GFE LoRA.
        site_names: sites whose self-attention input is banked (the Dressing-Attention sites).
    """

    def __init__(self, unet, lora: GarmentLoRA, site_names: tuple[str, ...]) -> None:
        self.unet = unet
        self.lora = lora
        self.site_names = site_names
        self.writing: ReferenceBank | None = None
        self.slot_ids: torch.Tensor | None = None
        self._original: dict | None = None

    def __enter__(self) -> DiffusersGarmentsNet:
        original = self.unet.attn_processors
        modules = dict(self.unet.named_modules())
        replaced = {key: SkippedCrossAttnProcessor() if ".attn2." in key else value for key, value in original.items()}
        for name in self.site_names:
            site = SITES_BY_NAME[name]
            key = sd15_attn1_key(site, original, modules, "GarmentsNet")
            replaced[key] = GarmentSelfAttnProcessor(site, self)
        self.unet.set_attn_processor(replaced)
        self._original = original
        return self

    def __exit__(self, *exc) -> None:
        if self._original is not None:
            self.unet.set_attn_processor(self._original)
            self._original = None

    def encode(self, latents: torch.Tensor, slot_ids: torch.Tensor, keep_grad: bool = False) -> ReferenceBank:
        """Bank of F_k, (N, L, C) per site, for garment latents (N, 4, h, w) with slots (N,)."""
        if self._original is None:
            raise RuntimeError("use DiffusersGarmentsNet as a context manager")
        bank = ReferenceBank(keep_grad=keep_grad)
        rows = latents.shape[0]
        context_dim = self.unet.config.cross_attention_dim
        context = latents.new_zeros(rows, 1, context_dim)  # (N, 1, C_ctx): unused, cross-attention is skipped
        self.writing, self.slot_ids = bank, slot_ids.to(latents.device)
        try:
            self.unet(latents, torch.zeros(rows, device=latents.device), encoder_hidden_states=context)
        finally:
            self.writing, self.slot_ids = None, None
        return bank
