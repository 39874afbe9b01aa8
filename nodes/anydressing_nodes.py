"""AnyDressing nodes (issue 4): load dressing weights, encode garments, dress the MODEL.

Graph: Load Dressing → Encode Garments (MODEL, VAE, garment images) → Apply Dressing (MODEL) →
KSampler. GarmentsNet runs inside Encode Garments, once per set of garments (ComfyUI caches the
GARMENTS output, so new seeds and prompts reuse it); Apply Dressing only installs Dressing-Attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import torch
from comfy_api.latest import io

from ..models.anydressing.config import PAPER_LAMBDA, DressingConfig
from ..models.anydressing.garment_bank import GarmentBank
from ..models.anydressing.garment_lora import GarmentLoRA
from ..models.anydressing.spec import SYSTEM_NAME
from ..models.errors import ReferenceInputError
from ..models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from ..models.weight_format import BaseModel
from .anydressing_inputs import (
    garment_mask_batch,
    parse_categories,
    parse_strengths,
    whiten_outside,
)
from .combo_check import combo_errors
from .dressing_attachment import DressingAttachment
from .dressing_garments import run_garments_net
from .model_check import require_base, require_sd15, require_sd15_vae
from .reference_image import check_reference_image, crop_to_multiple_of_8
from .schedule_inputs import schedule_window_inputs
from .weights_loader import load_atelier_weights, managed_module, system_file_names

DressingType = io.Custom("ATELIER_DRESSING")
GarmentsType = io.Custom("ATELIER_GARMENTS")
CATEGORY = "Atelier/anydressing"
UNCOND_CHOICES: tuple[str, ...] = ("no_garment", "same", "garment_guidance")


@dataclass(frozen=True)
class GarmentReader:
    """How the denoiser reads garments encoded by one weight file: AnyDressing's Dressing-Attention,
    or the read of a public reference network (garment_network_nodes.py).

    Args:
        name: the weight file that encoded the garments (garments of different files do not mix).
        base: the SD1.5 size the file was made for.
        sites: the self-attention sites that read the garments.
        mode: ``cross`` (frozen self-attention + λ·attention to the garments) or ``concat`` (the
            garments' tokens join the self-attention's keys and values).
        projections: learned W'k, W'v in a ModelPatcher, or None for the layer's own Wk, Wv.
        no_garment: what the unconditional branch reads for "no garment": nothing (NONE), or as
            many zero tokens (ZERO), as the network was trained.
    """

    name: str
    base: BaseModel
    sites: tuple[str, ...]
    mode: ReadMode
    projections: comfy.model_patcher.ModelPatcher | None
    no_garment: UncondPolicy = UncondPolicy.NONE


@dataclass(frozen=True)
class DressingWeights:
    """A loaded AnyDressing weight file: GFE LoRA and Dressing-Attention projections, each wrapped
    once in a ModelPatcher so ComfyUI loads and offloads them with the UNet."""

    name: str
    config: DressingConfig
    base: BaseModel
    lora: comfy.model_patcher.ModelPatcher
    projections: comfy.model_patcher.ModelPatcher

    @property
    def reader(self) -> GarmentReader:
        """Dressing-Attention (eq. 6) with this file's W'k, W'v at its sites."""
        return GarmentReader(self.name, self.base, self.config.sites, ReadMode.CROSS, self.projections)


@dataclass(frozen=True)
class Garments:
    """Encoded garments: their bank (on the intermediate device) and how the denoiser reads them."""

    reader: GarmentReader
    bank: GarmentBank


def check_previous(previous: Garments | None, name: str, weights_input: str) -> None:
    """Garments chained through 'previous' must come from the same weight file as this node's."""
    if previous is not None and previous.reader.name != name:
        raise ReferenceInputError(
            f"'previous' garments were encoded with '{previous.reader.name}' but '{weights_input}' is '{name}'; "
            f"encode every garment with the same weights"
        )


class DressingLoaderNode(io.ComfyNode):
    """Weight file name -> DRESSING weights."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierDressingLoader",
            display_name="Atelier Load Dressing",
            category=CATEGORY,
            description="Loads an AnyDressing weight file (GarmentsNet LoRAs + Dressing-Attention; trained with "
            "python -m atelier.train.anydressing) from models/atelier/.",
            inputs=[io.Combo.Input("weights", options=system_file_names(SYSTEM_NAME),
                                   tooltip="An AnyDressing weight file in models/atelier/ (other files are not listed).")],
            outputs=[DressingType.Output("dressing", display_name="dressing")],
        )

    @classmethod
    def validate_inputs(cls, weights=None) -> bool | str:
        if weights is not None and weights not in system_file_names(SYSTEM_NAME):
            return f"'weights' is '{weights}', which is not an AnyDressing weight file in models/atelier/"
        return True

    @classmethod
    def execute(cls, weights: str) -> io.NodeOutput:
        loaded = load_atelier_weights(weights, SYSTEM_NAME)
        lora: GarmentLoRA = loaded.modules["garment_lora"].eval()
        return io.NodeOutput(DressingWeights(
            name=weights, config=DressingConfig.from_dict(loaded.config), base=loaded.base,
            lora=managed_module(lora), projections=managed_module(loaded.modules["projections"].eval()),
        ))


class EncodeGarmentsNode(io.ComfyNode):
    """Garment IMAGEs -> GARMENTS: GarmentsNet (MODEL + per-category LoRA) run once over them."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierEncodeGarments",
            display_name="Atelier Encode Garments",
            category=CATEGORY,
            description=(
                "Runs GarmentsNet once over the garment images (each garment on its own, with the LoRA of its "
                "category) and keeps their features for Apply Dressing. Chain several of these nodes through "
                "'previous' to combine garments of different sizes."
            ),
            inputs=[
                io.Model.Input("model", tooltip="GarmentsNet's UNet: your SD1.5 MODEL (LoRA-mode weights, the default), "
                               "or a fully trained GarmentsNet loaded with Load Diffusion Model."),
                io.Vae.Input("vae", tooltip="The SD1.5 VAE."),
                DressingType.Input("dressing", tooltip="From Atelier Load Dressing."),
                io.Image.Input("garments", tooltip="In-shop garment image(s), ideally on white; a batch is several "
                               "garments worn together. At least 64×64; sides are center-cropped to a multiple of 8."),
                io.String.Input("categories", default="upper",
                                tooltip="Category of each garment image, comma-separated in batch order (e.g. 'upper, lower'), "
                                "or one for all. It picks the garment's GarmentsNet LoRA; the weight file lists the known ones "
                                "(default files: upper, lower, dress, shoes, bag, hat)."),
                io.Mask.Input("garment_masks", optional=True,
                              tooltip="Where the garment is in each garment image (1 = garment); pixels outside are painted "
                              "white before encoding. One mask for all images or one per image; any size."),
                GarmentsType.Input("previous", optional=True,
                                   tooltip="Garments encoded by another Encode Garments node; these garments are added after them."),
            ],
            outputs=[GarmentsType.Output("garments_out", display_name="garments")],
        )

    @classmethod
    def execute(cls, model, vae, dressing: DressingWeights, garments: torch.Tensor, categories: str,
                garment_masks: torch.Tensor | None = None, previous: Garments | None = None) -> io.NodeOutput:
        require_sd15(model)
        require_sd15_vae(vae)
        require_base(model, dressing.base, "dressing")
        check_previous(previous, dressing.name, "dressing")
        check_reference_image(garments, "garments")
        images = crop_to_multiple_of_8(garments)[..., :3]
        names = parse_categories(categories, images.shape[0], dressing.config)
        slot_ids = torch.tensor([dressing.config.slot_index(name) for name in names])
        latent = vae.encode(whiten_outside(images, garment_masks))  # (N, 4, H/8, W/8)
        comfy.model_management.load_models_gpu([model, dressing.lora])
        device = model.load_device
        rows = run_garments_net(
            model.model, latent.to(device, torch.float32), slot_ids, dressing.lora.model, dressing.config.sites,
            int(model.model.model_config.unet_config["context_dim"]),
        )
        encoded = GarmentBank.from_rows(rows, names).to(comfy.model_management.intermediate_device())
        parts = [encoded] if previous is None else [previous.bank, encoded]
        return io.NodeOutput(Garments(reader=dressing.reader, bank=GarmentBank.join(parts)))


class ApplyDressingNode(io.ComfyNode):
    """MODEL + GARMENTS -> MODEL whose self-attention also attends to the garments (Dressing-Attention)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierApplyDressing",
            display_name="Atelier Apply Dressing",
            category=CATEGORY,
            description=(
                "Dresses the generated person in the encoded garments: every self-attention layer adds λ·attention "
                "to all garments' features (AnyDressing's Dressing-Attention). Works with any SD1.5 checkpoint, LoRA "
                "and ControlNet in the same graph; batches of latents all wear the same garments."
            ),
            inputs=[
                io.Model.Input("model", tooltip="The SD1.5 MODEL to sample with."),
                GarmentsType.Input("garments", tooltip="From Atelier Encode Garments or Atelier Encode Garments "
                                   "(Reference Network)."),
                io.Float.Input("strength", default=PAPER_LAMBDA, min=0.0, max=2.0, step=0.05,
                               tooltip="AnyDressing and IMAGDressing: λ of the added garment attention (AnyDressing's "
                               "paper uses 0.7, IMAGDressing's code 1.0). Concatenating networks (MagicClothing): a "
                               "multiplier on the garments' attention mass (1 = as trained). 0 leaves the model untouched."),
                io.String.Input("garment_strengths", default="",
                                tooltip="Optional λ per garment, comma-separated in encode order (e.g. '0.7, 0.4'); empty = "
                                "'strength' for every garment."),
                *schedule_window_inputs("the garments are"),
                io.Combo.Input("uncond", options=list(UNCOND_CHOICES), default="no_garment",
                               tooltip="What the negative CFG branch sees. no_garment: CFG also guides the garments "
                               "(strong, as in training; for MagicClothing this is its zero-garment branch). same: the "
                               "garments too (weaker). garment_guidance: its own scale for the garments ('garment_guidance' "
                               "below; one extra UNet pass per step; MagicClothing's cloth guidance)."),
                io.Float.Input("garment_guidance", default=3.0, min=0.0, max=30.0, step=0.1,
                               tooltip="Garment guidance scale, used with uncond = garment_guidance: 1 gives the same "
                               "result as uncond = same (garments unguided); the sampler's CFG value gives the same "
                               "result as no_garment. MagicClothing's published value is 2.5 (with CFG 5)."),
                io.Mask.Input("garment_masks", optional=True,
                              tooltip="Optional target region of each garment in the generated image (1 = allowed): one "
                              "mask per garment in encode order, or one per garment for each latent. Any size."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def validate_inputs(cls, uncond=None) -> bool | str:
        return combo_errors(uncond=(uncond, UNCOND_CHOICES)) or True

    @classmethod
    def execute(cls, model, garments: Garments, strength: float, garment_strengths: str, start_percent: float,
                end_percent: float, uncond: str, garment_guidance: float,
                garment_masks: torch.Tensor | None = None) -> io.NodeOutput:
        require_sd15(model)
        reader = garments.reader
        require_base(model, reader.base, "garments")
        count = garments.bank.count
        strengths = parse_strengths(garment_strengths, count, strength)
        masks = None if garment_masks is None else garment_mask_batch(garment_masks, count)
        patched = model.clone()
        if not any(strengths):
            return io.NodeOutput(patched)
        same = all(value == strengths[0] for value in strengths)
        config = ReferenceConfig(
            mode=reader.mode, strength=strengths[0] if same else 1.0,
            site_weights={name: 1.0 for name in reader.sites},
            start_percent=start_percent, end_percent=end_percent,
            uncond=UncondPolicy.SAME if uncond == "same" else reader.no_garment,
        )
        attachment = DressingAttachment(
            config, garments.bank, None if reader.projections is None else reader.projections.model,
            garment_weights=None if same else strengths,
            garment_masks=masks, garment_guidance=garment_guidance if uncond == "garment_guidance" else None,
            projections_patcher=reader.projections,
        )
        attachment.install(patched)
        return io.NodeOutput(patched)


NODES: tuple[type[io.ComfyNode], ...] = (DressingLoaderNode, EncodeGarmentsNode, ApplyDressingNode)
