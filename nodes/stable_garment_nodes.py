"""Atelier Apply StableGarment: StableGarment's text2img garment encoder read by the user's MODEL.

Graph: Load Garment Network (``garment_encoder/diffusion_pytorch_model.safetensors``) → garment_model +
garment_network; with your MODEL, VAE, the garment IMAGE and CLIP Text Encode of the garment prompt
(empty, as app.py) → Apply StableGarment → MODEL → KSampler. Unlike the other public networks, the
garment pass runs at every step (at that step's timestep, on the clean garment), so it is applied here
rather than encoded once by Encode Garments (Reference Network).
"""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..models.errors import ReferenceInputError
from ..models.garment_networks.stable_garment import STABLE_GARMENT_T2I
from ..models.masks import as_mask_batch
from ..models.reference_config import ReferenceConfig, ReferenceSize, Refresh
from .garment_network_nodes import CATEGORY, GarmentNetworkType, LoadedGarmentNetwork
from .model_check import base_of, require_base, require_sd15, require_sd15_vae
from .prompt import conditioning_context
from .reference_image import check_reference_image
from .schedule_inputs import schedule_window_inputs
from .stable_garment_attachment import GarmentImage, StableGarmentAttachment
from .stable_garment_pass import GarmentPassInputs


def check_network(garment_network: LoadedGarmentNetwork) -> None:
    """Raise, naming 'garment_network', unless its garment pass runs at every step (StableGarment)."""
    network = garment_network.network
    if not network.every_step:
        raise ReferenceInputError(
            f"'garment_network' is {network.display_name}, whose garment pass runs once: connect it to Atelier "
            f"Encode Garments (Reference Network) and Atelier Apply Dressing instead"
        )


def one_garment(garment: torch.Tensor) -> torch.Tensor:
    """(1, H, W, 3) of the 'garment' IMAGE; a batch of several is refused (the public pipeline reads one
    garment per prompt)."""
    check_reference_image(garment, "garment")
    if garment.shape[0] != 1:
        raise ReferenceInputError(
            f"'garment' holds {garment.shape[0]} images; StableGarment reads one garment (pick one with "
            f"ImageFromBatch)"
        )
    return garment[..., :3].float().cpu()


def garment_context(conditioning, width: int) -> torch.Tensor:
    """(1, L, C) of the 'garment_conditioning' CONDITIONING, on the CPU; it must be ``width`` wide."""
    context = conditioning_context(conditioning, "garment_conditioning")
    if context is None or context.shape[-1] != width:
        found = "nothing" if context is None else f"{context.shape[-1]}-wide text embeddings"
        raise ReferenceInputError(
            f"'garment_conditioning' must be CLIP Text Encode of the checkpoint's CLIP ({width}-wide); got {found}"
        )
    return context.detach().float().cpu()


class ApplyStableGarmentNode(io.ComfyNode):
    """MODEL + StableGarment garment encoder + garment IMAGE -> MODEL that wears the garment."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierApplyStableGarment",
            display_name="Atelier Apply StableGarment",
            category=CATEGORY,
            description=(
                "StableGarment (text2img): at every sampling step its garment encoder runs over the garment image "
                "at that step's timestep, and the self-attention of your SD1.5 MODEL (middle and up blocks) also "
                "attends to those features, as the public code does. Weights: CC BY-NC-SA 4.0, non-commercial."
            ),
            inputs=[
                io.Model.Input("model", tooltip="Your SD1.5 MODEL (checkpoint, LoRAs already applied); it stays frozen."),
                io.Model.Input("garment_model", tooltip="garment_model of Atelier Load Garment Network, loaded from "
                               "StableGarment's garment_encoder/diffusion_pytorch_model.safetensors."),
                GarmentNetworkType.Input("garment_network", tooltip="garment_network of the same Atelier Load Garment "
                                         "Network (StableGarment's garment encoder)."),
                io.Vae.Input("vae", tooltip="The SD1.5 VAE that encodes the garment image."),
                io.Image.Input("garment", tooltip="One in-shop garment image, at least 64×64. At each run it is "
                               "stretched to the output size and zoomed to fill it, as the public scripts do: use the "
                               "output's aspect ratio (e.g. 3:4 for 384×512)."),
                io.Conditioning.Input("garment_conditioning", tooltip="The text the garment encoder reads: CLIP Text "
                                      "Encode with an empty text, as the public demo does."),
                io.Float.Input("strength", default=1.0, min=0.0, max=4.0, step=0.05,
                               tooltip="λ of the garment attention: 1 = the public behaviour, 0 = your MODEL unchanged."),
                *schedule_window_inputs("the garment is"),
                io.Mask.Input("mask", optional=True, tooltip="Where in the generated image the garment applies "
                              "(1 = apply). Any resolution; one mask for the batch or one per latent."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, garment_model, garment_network: LoadedGarmentNetwork, vae, garment: torch.Tensor,
                garment_conditioning, strength: float, start_percent: float, end_percent: float,
                mask: torch.Tensor | None = None) -> io.NodeOutput:
        require_sd15(model)
        require_sd15(garment_model, "garment_model")
        require_sd15_vae(vae)
        check_network(garment_network)
        require_base(garment_model, garment_network.reader.base, "garment_network", "garment_model")
        require_base(model, base_of(garment_model), "garment_model")
        image = one_garment(garment)
        context = garment_context(garment_conditioning, base_of(model).context_dim)
        network = garment_network.network
        config = ReferenceConfig(
            mode=network.mode, strength=strength * network.strength, site_weights={name: 1.0 for name in network.sites},
            start_percent=start_percent, end_percent=end_percent, uncond=network.no_garment,
            refresh=Refresh.EVERY_STEP, reference_size=ReferenceSize.RESIZE_TO_LATENT,
        )
        patched = model.clone()
        if strength == 0.0:
            return io.NodeOutput(patched)
        attachment = StableGarmentAttachment(
            config, GarmentImage(image=image, vae=vae),
            GarmentPassInputs(model=garment_model, context=context,
                              site_names=config.enabled_site_names),
            mask=None if mask is None else as_mask_batch(mask), output_bias=STABLE_GARMENT_T2I.adds_output_bias,
        )
        attachment.install(patched)
        return io.NodeOutput(patched)


NODES: tuple[type[io.ComfyNode], ...] = (ApplyStableGarmentNode,)
