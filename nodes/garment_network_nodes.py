"""Public garment reference networks (IMAGDressing, MagicClothing/OMS, StableGarment) as graph blocks.

Graph: Load Garment Network (file) → its garment MODEL + GARMENT_NETWORK → Encode Garments (Reference
Network) (garment MODEL, VAE, garment images) → GARMENTS → Apply Dressing (your MODEL) → KSampler.
The denoiser stays the user's MODEL, as these families trained with a frozen SD1.5 denoiser; the
garment UNet is a separate MODEL that ComfyUI loads, offloads and patches like any other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import folder_paths
import torch
from comfy_api.latest import io

from ..models.anydressing.garment_bank import GarmentBank
from ..models.errors import ReferenceInputError
from ..models.garment_networks.families import convert_to_safetensors, read_garment_network
from ..models.garment_networks.files import PICKLE_SUFFIXES
from ..models.garment_networks.network import GarmentContext, GarmentNetwork
from ..models.log import logger
from ..models.reference_bank import ReferenceBank
from .anydressing_inputs import whiten_outside
from .anydressing_nodes import GarmentReader, Garments, GarmentsType, check_previous
from .folders import FOLDER_NAME
from .garment_unet import load_garment_unet
from .model_check import base_of, require_base, require_sd15, require_sd15_vae
from .prompt import conditioning_context
from .reference_image import check_reference_image, crop_to_multiple_of_8
from .reference_source import write_bank
from .weights_loader import foreign_file_names, managed_module

GarmentNetworkType = io.Custom("ATELIER_GARMENT_NETWORK")
CATEGORY = "Atelier/garment networks"


@dataclass(frozen=True)
class LoadedGarmentNetwork:
    """A loaded garment network: how its garments are read and what its garment pass needs."""

    network: GarmentNetwork
    reader: GarmentReader
    resampler: comfy.model_patcher.ModelPatcher | None


def garment_network_file_names() -> list[str]:
    """Files in models/atelier/ that are not Atelier's own weight files (garment networks are
    recognised from their keys when loaded: listing must not unpickle multi-GB files)."""
    return foreign_file_names((".safetensors", *PICKLE_SUFFIXES))


class GarmentNetworkLoaderNode(io.ComfyNode):
    """Published garment network file -> garment MODEL + GARMENT_NETWORK."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierGarmentNetworkLoader",
            display_name="Atelier Load Garment Network",
            category=CATEGORY,
            description=(
                "Loads a published garment reference network from models/atelier/, as downloaded: IMAGDressing-v1 "
                "(.pt), MagicClothing / OMS (.safetensors) or StableGarment's garment encoder. The family is "
                "recognised from the file's keys. Outputs the garment UNet as a MODEL (LoRAs can be applied to it) "
                "and how your MODEL reads the garments."
            ),
            inputs=[
                io.Combo.Input("network", options=garment_network_file_names(),
                               tooltip="The downloaded file, in models/atelier/ (sub-folders are listed too)."),
                io.Boolean.Input("save_safetensors", default=True,
                                 tooltip="For a pickled .pt/.pth/.bin file: write '<name>.safetensors' beside it once, "
                                 "so later loads are fast and pickle-free (pick the new file next time)."),
            ],
            outputs=[
                io.Model.Output("garment_model", display_name="garment_model"),
                GarmentNetworkType.Output("garment_network", display_name="garment_network"),
            ],
        )

    @classmethod
    def validate_inputs(cls, network=None) -> bool | str:
        if network is not None and network not in garment_network_file_names():
            return f"'network' is '{network}', which is not a file in models/atelier/"
        return True

    @classmethod
    def execute(cls, network: str, save_safetensors: bool) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise(FOLDER_NAME, network)
        loaded = read_garment_network(path)
        if save_safetensors and path.endswith(PICKLE_SUFFIXES):
            target = os.path.splitext(path)[0] + ".safetensors"
            if not os.path.exists(target):
                convert_to_safetensors(path, target)
                logger.info("wrote %s; pick it in Load Garment Network from now on", target)
        garment_model = load_garment_unet(loaded.garment_unet, network)
        reader = GarmentReader(
            name=network, base=base_of(garment_model), sites=loaded.sites, mode=loaded.mode,
            projections=None if loaded.projections is None else managed_module(loaded.projections.eval()),
            no_garment=loaded.no_garment,
        )
        resampler = None if loaded.resampler is None else managed_module(loaded.resampler.eval())
        return io.NodeOutput(garment_model, LoadedGarmentNetwork(network=loaded, reader=reader, resampler=resampler))


def garment_context(network: LoadedGarmentNetwork, images: torch.Tensor, clip_vision, conditioning, device) -> torch.Tensor:
    """(N or 1, L, C) context of the garment pass: Resampler tokens of each garment, or a prompt."""
    if network.network.context == GarmentContext.CLIP_VISION:
        if clip_vision is None:
            raise ReferenceInputError(
                f"{network.network.display_name} reads each garment through CLIP vision: connect Load CLIP Vision "
                f"(the ViT-H/14 image encoder of IP-Adapter) to 'clip_vision'"
            )
        states = clip_vision.encode_image(images, crop=True).penultimate_hidden_states  # (N, 257, 1280)
        resampler = network.resampler.model
        expected = resampler.config.embedding_dim
        if states.shape[-1] != expected:
            raise ReferenceInputError(
                f"'clip_vision' gives {states.shape[-1]}-wide states but {network.network.display_name} needs "
                f"{expected} (CLIP ViT-H/14); load the ViT-H image encoder"
            )
        comfy.model_management.load_models_gpu([network.resampler])
        weight = next(resampler.parameters())
        with torch.no_grad():
            return resampler(states.to(weight.device, weight.dtype)).to(device, torch.float32)  # (N, Q, C)
    context = conditioning_context(conditioning, "garment_conditioning")
    if context is None:
        raise ReferenceInputError(
            f"{network.network.display_name}'s garment pass reads a text prompt: connect CLIP Text Encode with an "
            f"empty text to 'garment_conditioning'"
        )
    return context.to(device, torch.float32)  # (1, L, C)


class EncodeReferenceGarmentsNode(io.ComfyNode):
    """Garment IMAGEs -> GARMENTS through a public garment network's UNet, run once at t = 0."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierEncodeReferenceGarments",
            display_name="Atelier Encode Garments (Reference Network)",
            category=CATEGORY,
            description=(
                "Runs the garment network's UNet once over the garment images (timestep 0, as the public code does) "
                "and keeps the features every self-attention layer sees, for Apply Dressing. A batch is several "
                "garments worn together; chain several of these nodes through 'previous' for garments of other sizes."
            ),
            inputs=[
                io.Model.Input("garment_model", tooltip="The garment UNet: garment_model of Atelier Load Garment Network."),
                io.Vae.Input("vae", tooltip="The SD1.5 VAE."),
                GarmentNetworkType.Input("garment_network", tooltip="From Atelier Load Garment Network."),
                io.Image.Input("garments", tooltip="In-shop garment image(s), ideally on white. At least 64×64; sides are "
                               "center-cropped to a multiple of 8. MagicClothing resizes the garment to the output size "
                               "before encoding: give it at the size you generate."),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="IMAGDressing: the CLIP ViT-H/14 image encoder (IP-Adapter's "
                                    "image_encoder), from Load CLIP Vision. Other families ignore it."),
                io.Conditioning.Input("garment_conditioning", optional=True,
                                      tooltip="MagicClothing / StableGarment: the text the garment pass reads; the "
                                      "public code uses the empty prompt (CLIP Text Encode with no text)."),
                io.Mask.Input("garment_masks", optional=True,
                              tooltip="Where the garment is in each garment image (1 = garment); pixels outside are "
                              "painted as the network was trained (white; MagicClothing: mid grey) before encoding. "
                              "One mask for all images or one per image; any size."),
                GarmentsType.Input("previous", optional=True,
                                   tooltip="Garments encoded by another of these nodes with the same network; these "
                                   "garments are added after them."),
            ],
            outputs=[GarmentsType.Output("garments_out", display_name="garments")],
        )

    @classmethod
    def execute(cls, garment_model, vae, garment_network: LoadedGarmentNetwork, garments: torch.Tensor,
                clip_vision=None, garment_conditioning=None, garment_masks: torch.Tensor | None = None,
                previous: Garments | None = None) -> io.NodeOutput:
        require_sd15(garment_model, "garment_model")
        require_sd15_vae(vae)
        require_base(garment_model, garment_network.reader.base, "garment_network", "garment_model")
        if garment_network.network.every_step:
            raise ReferenceInputError(
                f"'garment_network' is {garment_network.network.display_name}, whose garment pass runs at every step: "
                f"connect it to Atelier Apply StableGarment instead of encoding garments once"
            )
        check_previous(previous, garment_network.reader.name, "garment_network")
        check_reference_image(garments, "garments")
        images = whiten_outside(crop_to_multiple_of_8(garments)[..., :3], garment_masks, garment_network.network.background)
        count = images.shape[0]
        latent = vae.encode(images)  # (N, 4, H/8, W/8)
        comfy.model_management.load_models_gpu([garment_model])
        device = garment_model.load_device
        context = garment_context(garment_network, images, clip_vision, garment_conditioning, device)
        base_model = garment_model.model
        rows = write_bank(
            base_model, base_model.process_latent_in(latent.to(device, torch.float32)), torch.zeros(count, device=device),
            context, ReferenceBank(), garment_network.reader.sites,
        )
        names = [f"garment_{index + 1}" for index in range(count)]
        encoded = GarmentBank.from_rows(rows, names).to(comfy.model_management.intermediate_device())
        parts = [encoded] if previous is None else [previous.bank, encoded]
        return io.NodeOutput(Garments(reader=garment_network.reader, bank=GarmentBank.join(parts)))


NODES: tuple[type[io.ComfyNode], ...] = (GarmentNetworkLoaderNode, EncodeReferenceGarmentsNode)
