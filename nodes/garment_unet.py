"""A garment network's UNet, published in diffusers key names, as a ComfyUI MODEL.

ComfyUI's own diffusers-UNet loader only recognises the exact SD1.5 width (model_channels 320,
context_dim 768); this reads the width from the weights, maps the keys with ComfyUI's own
``comfy.utils.unet_to_diffusers`` table for SD1.5's block layout, and hands the result to
``comfy.sd.load_diffusion_model_state_dict``, so the MODEL is managed, LoRA-able and offloaded like
any UNet the core loaders return.
"""

from __future__ import annotations

import comfy.sd
import comfy.utils
import torch

from ..models.errors import WeightFileError
from ..models.garment_networks.sd15_layout import sd15_diffusers_unet_keys

# SD1.5's block layout as ComfyUI's model detection describes it (comfy/model_detection.py).
SD15_LAYOUT = {
    "num_res_blocks": [2, 2, 2, 2],
    "channel_mult": [1, 2, 4, 4],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_middle": 1,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
}
WIDTH_KEYS = ("conv_in.weight", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight")


def comfy_unet_state(diffusers_state: dict[str, torch.Tensor], file_name: str) -> dict[str, torch.Tensor]:
    """ComfyUI key names for a complete SD1.5-layout diffusers UNet state dict.

    Raises:
        WeightFileError: a key is missing or left over; the message names the file and the keys.
    """
    absent = [key for key in WIDTH_KEYS if key not in diffusers_state]
    if absent:
        raise WeightFileError(f"{file_name}: the garment UNet has no {absent[0]!r}; the file is not a complete SD1.5 UNet")
    unet_config = {**SD15_LAYOUT, "model_channels": int(diffusers_state[WIDTH_KEYS[0]].shape[0])}
    diffusers_to_comfy = comfy.utils.unet_to_diffusers(unet_config)  # a superset: SDXL/class-embedding keys too
    required = sd15_diffusers_unet_keys()
    missing = sorted(required - set(diffusers_state))
    extra = sorted(key for key in diffusers_state if key not in required)
    if missing or extra:
        if missing:
            problem = f"misses {len(missing)} key(s), e.g. {missing[:3]}"
        else:
            problem = f"has {len(extra)} unknown key(s), e.g. {extra[:3]}"
        raise WeightFileError(f"{file_name}: the garment UNet {problem}; the file is truncated or not an SD1.5 UNet")
    return {diffusers_to_comfy[key]: value for key, value in diffusers_state.items()}


def load_garment_unet(diffusers_state: dict[str, torch.Tensor], file_name: str):
    """A ModelPatcher of the garment UNet (ComfyUI picks its device and dtype as for any UNet)."""
    patcher = comfy.sd.load_diffusion_model_state_dict(comfy_unet_state(diffusers_state, file_name))
    if patcher is None:
        raise WeightFileError(f"{file_name}: ComfyUI did not recognise the garment UNet as an SD1.5 UNet")
    return patcher
