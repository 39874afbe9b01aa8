"""Atelier Reference Attention: let the denoiser's self-attention read a reference image."""

from __future__ import annotations

from comfy_api.latest import io

from ..models.masks import as_mask_batch
from ..models.reference_config import (
    CHOICES,
    ReadMode,
    ReferenceConfig,
    ReferenceSize,
    Refresh,
    UncondPolicy,
)
from .combo_check import combo_errors
from .model_check import base_of, require_base, require_sd15, require_sd15_vae
from .prompt import conditioning_context
from .reference_attachment import ReferenceAttachment
from .reference_image import encode_reference
from .reference_source import SameModelReference
from .schedule_inputs import schedule_window_inputs


class ReferenceAttentionNode(io.ComfyNode):
    """MODEL + VAE + reference IMAGE -> MODEL whose self-attention also attends to the reference."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierReferenceAttention",
            display_name="Atelier Reference Attention",
            category="Atelier/reference",
            description=(
                "Runs your SD1.5 UNet once over the reference image and lets every self-attention layer "
                "of the denoiser read those features (reference-only style). Needs no trained weights; "
                "works with any SD1.5 checkpoint, LoRA and ControlNet in the same graph."
            ),
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 MODEL (LoRAs already applied are kept)."),
                io.Vae.Input("vae", tooltip="The SD1.5 VAE that encodes the reference image."),
                io.Image.Input(
                    "reference",
                    tooltip="Reference image(s): one for the whole batch, or one per latent. At least 64×64; "
                    "sides are center-cropped to a multiple of 8.",
                ),
                io.Float.Input("strength", default=1.0, min=0.0, max=4.0, step=0.05,
                               tooltip="0 leaves the model untouched. concat: weight of the reference tokens in the "
                               "softmax (1 = plain reference-only). cross: λ of the added reference attention."),
                io.Combo.Input("mode", options=list(CHOICES["mode"]), default=ReadMode.CONCAT.value,
                               tooltip="concat: reference tokens join self-attention's keys/values. cross: a separate "
                               "attention to the reference, added with weight strength."),
                *schedule_window_inputs("the reference is"),
                io.Combo.Input("sites", options=list(CHOICES["sites"]), default="all",
                               tooltip="Which of the 16 self-attention layers read the reference."),
                io.Combo.Input("uncond", options=list(CHOICES["uncond"]), default=UncondPolicy.SAME.value,
                               tooltip="What the negative (unconditional) CFG branch sees: the same reference, "
                               "none (CFG then pushes towards the reference; stronger, can over-saturate), or zero: as "
                               "many all-zero reference tokens (how MagicClothing trained its guidance)."),
                io.Combo.Input("refresh", options=list(CHOICES["refresh"]), default=Refresh.ONCE.value,
                               tooltip="once: one reference pass per sampling run on the clean image (fast). "
                               "every_step: a pass at every step on the reference noised to the current sigma."),
                io.Combo.Input("reference_size", options=list(CHOICES["reference_size"]), default=ReferenceSize.AS_IS.value,
                               tooltip="as_is: keep the reference's own size (token counts may differ; attention does "
                               "not mind). resize_to_latent: resize the encoded reference to the sampled latent."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Where in the generated image the reference applies (1 = apply). Any "
                              "resolution; one mask for the batch or one per latent."),
                io.Model.Input("reference_model", optional=True,
                               tooltip="A separate reference network that reads the reference instead of 'model' "
                               "(e.g. MagicClothing's or StableGarment's garment UNet from Atelier Load Garment "
                               "Network, or any SD1.5 UNet from Load Diffusion Model). Same SD1.5 size as 'model'."),
                io.Conditioning.Input("reference_conditioning", optional=True,
                                      tooltip="The text the reference pass reads (its first entry); default: the "
                                      "positive prompt. MagicClothing's garment pass reads the empty prompt."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def validate_inputs(cls, mode=None, sites=None, uncond=None, refresh=None, reference_size=None) -> bool | str:
        """ComfyUI 0.3.64 does not check V3 combo values itself; refuse unknown ones by name."""
        return combo_errors(
            mode=(mode, CHOICES["mode"]), sites=(sites, CHOICES["sites"]), uncond=(uncond, CHOICES["uncond"]),
            refresh=(refresh, CHOICES["refresh"]), reference_size=(reference_size, CHOICES["reference_size"]),
        ) or True

    @classmethod
    def execute(cls, model, vae, reference, strength, mode, start_percent, end_percent, sites, uncond, refresh,
                reference_size, mask=None, reference_model=None, reference_conditioning=None) -> io.NodeOutput:
        require_sd15(model)
        require_sd15_vae(vae)
        if reference_model is not None:
            require_sd15(reference_model, "reference_model")
            require_base(model, base_of(reference_model), "reference_model")
        config = ReferenceConfig.for_group(
            sites, mode=ReadMode(mode), strength=strength, start_percent=start_percent, end_percent=end_percent,
            uncond=UncondPolicy(uncond), refresh=Refresh(refresh), reference_size=ReferenceSize(reference_size),
        )
        patched = model.clone()
        if strength == 0.0:
            return io.NodeOutput(patched)
        latent = encode_reference(vae, reference)
        source = SameModelReference(
            latent, config.enabled_site_names, config.refresh, config.reference_size, network=reference_model,
            context=conditioning_context(reference_conditioning, "reference_conditioning"),
        )
        attachment = ReferenceAttachment(config, source, mask=None if mask is None else as_mask_batch(mask))
        attachment.install(patched)
        if reference_model is not None:
            patched.set_additional_models(f"{attachment.run_key}_reference_model", [reference_model])
        return io.NodeOutput(patched)
