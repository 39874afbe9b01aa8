"""StableGarment's garment pass in ComfyUI: the garment MODEL at the current step, on the clean garment.

The public pipeline (``pipeline_text2img_attn.py``) calls, before every denoiser call,
``garment_encoder(garment_latent, t, CLIP(garment_prompt))`` with the *clean* latent
(``latent_dist.mean × 0.18215``, never noised, never scaled by ComfyUI's ``c_in``) and the step's
own timestep t, and its hooked blocks bank ``norm1(x)``. ``apply_model`` would divide the latent by
√(σ² + 1), so the garment UNet (``diffusion_model``) is called directly with the timestep the
denoiser gets for this sigma.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_patcher
import torch

from ..models.reference_bank import ReferenceBank
from .reference_patch import ReferenceWritePatch


@dataclass(frozen=True)
class GarmentPassInputs:
    """What every garment pass of one application reads.

    Args:
        model: the garment MODEL (garment_model of Atelier Load Garment Network).
        context: (1, L, C) the garment prompt's CLIP embedding (CLIP("") in app.py).
        site_names: the sites whose ``norm1(x)`` is banked.
    """

    model: comfy.model_patcher.ModelPatcher
    context: torch.Tensor
    site_names: tuple[str, ...]


def garment_pass(inputs: GarmentPassInputs, denoiser, latent: torch.Tensor, sigma: torch.Tensor) -> ReferenceBank:
    """One no-grad forward of the garment UNet for the denoiser call at ``sigma``; returns its bank.

    Args:
        inputs: the application's garment pass inputs.
        denoiser: the sampled MODEL's ``BaseModel`` (its ``model_sampling`` turns sigma into t).
        latent: (1, 4, h, w) raw VAE latent of the prepared garment, any device.
        sigma: (B,) sigmas of the denoiser call (one value per call in ComfyUI's samplers).
    """
    garment = inputs.model.model
    dtype = garment.manual_cast_dtype or garment.get_dtype()
    device = sigma.device
    clean = garment.process_latent_in(latent.to(device, torch.float32))  # (1, 4, h, w): × 0.18215, no noise
    timestep = denoiser.model_sampling.timestep(sigma.reshape(-1)[:1]).float()  # (1,): this step's t
    bank = ReferenceBank()
    options = {
        "patches": {"attn1_patch": [ReferenceWritePatch(bank, inputs.site_names)]},
        "patches_replace": {},
        "cond_or_uncond": [0],
        "sigmas": sigma.reshape(-1)[:1],
    }
    with torch.no_grad():
        garment.diffusion_model(
            clean.to(dtype), timestep, context=inputs.context.to(device, dtype), transformer_options=options,
        )
    return bank
