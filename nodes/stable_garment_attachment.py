"""StableGarment on the user's MODEL: a ReferenceAttachment whose bank is rewritten by the garment
MODEL at every step, plus the read's second output bias.

Per sampling run (OUTER_SAMPLE, before the sampler loads the UNets): the garment image is fitted to
the output size as the public scripts do and VAE-encoded once; the latent lives in the run's cloned
``transformer_options``. Per UNet call (APPLY_MODEL): when sigma has moved on, the garment pass runs at
that sigma on the clean latent (``stable_garment_pass.py``) and its bank replaces the last one; the
foundation's attn1 patches then do the CROSS read (W' = W) and ``OutputBiasPatch`` adds b_o.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_patcher
import torch

from ..models.garment_networks.stable_garment_fit import public_garment_pixels
from ..models.reference_config import ReferenceConfig
from ..models.sites import SITES_BY_NAME
from .reference_attachment import OUTER_SAMPLE_ARGS, ReferenceAttachment
from .reference_image import LATENT_FACTOR
from .stable_garment_bias import OutputBiasPatch
from .stable_garment_pass import GarmentPassInputs, garment_pass


@dataclass(frozen=True)
class GarmentImage:
    """The garment before it is fitted to an output size.

    Args:
        image: (1, H, W, 3) IMAGE in [0, 1].
        vae: the SD1.5 VAE that encodes it.
    """

    image: torch.Tensor
    vae: object

    def latent(self, latent_hw: tuple[int, int]) -> torch.Tensor:
        """(1, 4, h, w) raw latent of the garment fitted to a (h, w) latent's output size."""
        height, width = (side * LATENT_FACTOR for side in latent_hw)
        return self.vae.encode(public_garment_pixels(self.image, height, width))


class StableGarmentAttachment(ReferenceAttachment):
    """One StableGarment application: the foundation's CROSS read of a bank that the garment MODEL
    rewrites at every step, and the extra ``to_out.0.bias`` of the public read.

    Args:
        config: the read (CROSS, λ, the 10 sites, uncond NONE, the start/end window).
        garment: the garment image and VAE.
        garment_pass_inputs: the garment MODEL, its prompt context and the banked sites.
        mask: optional denoiser-side mask (B_m, H, W) of where the garment applies.
        output_bias: add the read's second ``to_out.0.bias`` (the public read does).
    """

    def __init__(self, config: ReferenceConfig, garment: GarmentImage, garment_pass_inputs: GarmentPassInputs,
                 mask: torch.Tensor | None = None, output_bias: bool = True) -> None:
        super().__init__(config, source=None, mask=mask)
        self.garment = garment
        self.garment_pass_inputs = garment_pass_inputs
        self.output_bias = output_bias

    @property
    def latent_key(self) -> str:
        """transformer_options key of this run's garment latent."""
        return f"{self.run_key}_garment_latent"

    def install(self, model: comfy.model_patcher.ModelPatcher) -> None:
        """The foundation's read patches and wrappers, the bias patch, and the garment MODEL as an
        additional model (ComfyUI loads and offloads it with the denoiser)."""
        super().install(model)
        if self.output_bias:
            unet = model.model.diffusion_model
            layers = {name: unet.get_submodule(SITES_BY_NAME[name].comfy_attn1).to_out[0]
                      for name in self.config.enabled_site_names}
            model.set_model_attn1_output_patch(OutputBiasPatch(self.run_key, layers))
        model.set_additional_models(f"{self.run_key}_garment_model", [self.garment_pass_inputs.model])

    def outer_sample(self, executor, *args, **kwargs):
        """Encode the garment for this run's output size, then run as the foundation does."""
        call = dict(zip(OUTER_SAMPLE_ARGS, args)) | kwargs
        latent = self.garment.latent(tuple(call["noise"].shape[-2:]))  # (1, 4, h, w)
        guider = executor.class_obj
        original_options = guider.model_options
        guider.model_options = comfy.model_patcher.create_model_options_clone(original_options)
        guider.model_options["transformer_options"][self.latent_key] = latent
        try:
            return super().outer_sample(executor, *args, **kwargs)
        finally:
            guider.model_options = original_options

    def apply_model(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kwargs):
        """Rerun the garment pass when sigma has moved on (not again for another CFG chunk of the same
        step, nor outside start/end once a bank exists), then let the foundation describe the call."""
        options = transformer_options if transformer_options is not None else {}
        comfy_run = options.get(self.run_key)
        if comfy_run is not None:
            run = comfy_run.run
            sigma = float(t.reshape(-1)[0])
            if run.bank is None or (sigma != comfy_run.bank_sigma and comfy_run.active_at(sigma)):
                run.set_bank(garment_pass(self.garment_pass_inputs, executor.class_obj, options[self.latent_key], t))
                comfy_run.bank_sigma = sigma
        return super().apply_model(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
