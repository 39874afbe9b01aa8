"""GarmentsNet's pass in ComfyUI: the connected MODEL plus the GFE LoRA, run once over the garments.

Equal to models/anydressing/diffusers_garments.py for the same weights (tested): one batched UNet
call at t = 0 over the garment latents, with per-call patches only (nothing is installed on the
MODEL): an ``attn1_patch`` banks F_k = norm1(x) at every Dressing-Attention site, an ``attn1``
replace patch adds the slot's LoRA deltas to the layer's own q/k/v (eq. 3–4), and an
``attn2_output_patch`` zeroes every cross-attention's contribution (§4.1: GarmentsNet has none).
"""

from __future__ import annotations

import torch

from ..models.anydressing.garment_lora import GarmentLoRA
from ..models.reference_bank import ReferenceBank
from ..models.sites import SITES_BY_NAME
from .reference_network_patches import DeltaSelfAttentionPatch, skip_cross_attention
from .reference_source import write_bank


def run_garments_net(base_model, latent: torch.Tensor, slot_ids: torch.Tensor, lora: GarmentLoRA,
                     site_names: tuple[str, ...], context_dim: int) -> ReferenceBank:
    """Bank F_k (N, L, C) per site for garment latents (N, 4, h, w) already on the model's device.

    Args:
        base_model: the loaded ``BaseModel`` (``ModelPatcher.model``) of the connected MODEL.
        latent: raw VAE latents of the garments.
        slot_ids: (N,) LoRA slot per garment.
        lora: the GFE LoRA, on the latent's device.
        site_names: the Dressing-Attention sites.
        context_dim: width of the (unused) text context the UNet call needs.
    """
    rows = latent.shape[0]
    bank = ReferenceBank()
    sigma = torch.zeros(rows, device=latent.device)  # t = 0 (appendix: one pass at timestep 0)
    ids = slot_ids.to(latent.device)

    def slot_deltas(site_name: str, hidden: torch.Tensor):
        return lora.deltas(site_name, hidden, ids)

    lora_patches = {SITES_BY_NAME[name].key: DeltaSelfAttentionPatch(SITES_BY_NAME[name], slot_deltas, bank) for name in site_names}
    context = torch.zeros(rows, 1, context_dim, device=latent.device)  # (N, 1, C_ctx): skipped anyway
    return write_bank(base_model, base_model.process_latent_in(latent), sigma, context, bank, site_names,
                      patches={"attn2_output_patch": [skip_cross_attention]}, patches_replace={"attn1": lora_patches})
