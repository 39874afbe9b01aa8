"""IGR's GarmNet pass in ComfyUI: the connected MODEL plus GarmNet's LoRA and mask channel, run once.

Equal to models/igr/diffusers_igr.py for the same weights (tested). One UNet call at timestep 0 over
the person latents E(p), with per-call patches only (nothing is installed on the MODEL):

- an ``input_block_patch`` adds ``mask_in(m)`` to the output of input block 0 (conv_in), which is
  GarmNet's 5-channel first convolution over concat(E(p), m) split into the base conv plus the
  zero-initialised mask channel (models/igr/garmnet.py);
- an ``attn1_patch`` banks n = norm1(x) at every GarmFus site;
- an ``attn1`` replace patch adds GarmNet's own LoRA deltas to the layer's q/k/v.
The cross-attention reads the category prompt, as in the denoiser.
"""

from __future__ import annotations

import torch

from ..models.igr.garmnet import GARMNET_TIMESTEP, GarmNet
from ..models.reference_bank import ReferenceBank
from ..models.sites import SITES_BY_NAME
from .reference_network_patches import DeltaSelfAttentionPatch
from .reference_source import write_bank

FIRST_INPUT_BLOCK = ("input", 0)


class MaskInputPatch:
    """input_block_patch: conv_in's output plus the mask channel's contribution.

    Args:
        features: (B, C, h, w) ``mask_in(m)`` on the UNet's device.
    """

    def __init__(self, features: torch.Tensor) -> None:
        self.features = features

    def __call__(self, h: torch.Tensor, transformer_options: dict) -> torch.Tensor:
        if transformer_options.get("block") == FIRST_INPUT_BLOCK:
            return h + self.features.to(h)
        return h


def run_garmnet(base_model, latent: torch.Tensor, mask_latent: torch.Tensor, garmnet: GarmNet,
                site_names: tuple[str, ...], context: torch.Tensor) -> ReferenceBank:
    """Bank n (B, L, C) per site for person latents (B, 4, h, w) already on the model's device.

    Args:
        base_model: the loaded ``BaseModel`` (``ModelPatcher.model``) of the connected MODEL.
        latent: raw VAE latents of the person images.
        mask_latent: (B, 1, h, w) garment mask on the latent grid.
        garmnet: GarmNet's LoRA and mask channel, on the latent's device.
        site_names: the GarmFus sites.
        context: (B, L, C_ctx) text context (the category prompt).
    """
    rows = latent.shape[0]
    bank = ReferenceBank()
    sigma = torch.full((rows,), float(GARMNET_TIMESTEP), device=latent.device)  # sigma 0 is timestep 0
    weight = garmnet.mask_in.weight
    with torch.no_grad():
        features = garmnet.mask_features(mask_latent.to(weight))  # (B, C, h, w)
    lora = {SITES_BY_NAME[name].key: DeltaSelfAttentionPatch(SITES_BY_NAME[name], garmnet.deltas, bank) for name in site_names}
    return write_bank(base_model, base_model.process_latent_in(latent), sigma, context, bank, site_names,
                      patches={"input_block_patch": [MaskInputPatch(features)]}, patches_replace={"attn1": lora})
