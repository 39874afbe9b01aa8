"""IGR try-off nodes (issue 8): load IGR weights, restore the flat garment from a person photo, and
build a garment mask from a LIP/ATR parsing image.

Graph: Load IGR → Garment Restoration (MODEL, CLIP, VAE, person, garment mask) → KSampler (its
MODEL, positive, negative and LATENT outputs) → VAEDecode. GarmNet and the CLIP image encoder run
inside Garment Restoration, once per person (ComfyUI caches the node), so new seeds reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import numpy as np
import torch
from comfy_api.latest import io

from ..models.errors import ReferenceInputError, UnsupportedModelError
from ..models.igr.config import CATEGORY_PROMPTS, IGR_CATEGORIES, IGRConfig
from ..models.igr.garment_crop import garment_crop
from ..models.igr.garmnet import mask_to_latent
from ..models.igr.spec import SYSTEM_NAME
from ..models.parsing import (
    ATR,
    LIP,
    LIP_REGIONS,
    agnostic_mask,
    category_mask,
    convert_label_map,
    palette_image_to_labels,
)
from ..models.reference_bank import ReferenceBank
from ..models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from ..models.weight_format import BaseModel
from .combo_check import combo_errors
from .igr_attachment import IGRAttachment
from .igr_garmnet import run_garmnet
from .igr_inputs import person_masks, person_pixels
from .model_check import require_base, require_sd15, require_sd15_vae
from .prompt import encode_prompt
from .schedule_inputs import schedule_window_inputs
from .weights_loader import load_atelier_weights, managed_module, system_file_names

IGRType = io.Custom("ATELIER_IGR")
CATEGORY = "Atelier/igr"
PAPER_GUIDANCE = 1.5  # Table 3: the paper's CFG scale
LABEL_SETS = {"lip": LIP, "atr": ATR}
MASK_REGIONS: tuple[str, ...] = ("garment", "agnostic")


@dataclass(frozen=True)
class IGRWeights:
    """A loaded IGR weight file: GarmNet (LoRA + mask channel) and the IP-Adapter, each wrapped once
    in a ModelPatcher so ComfyUI loads and offloads them with the UNet."""

    name: str
    config: IGRConfig
    base: BaseModel
    garmnet: comfy.model_patcher.ModelPatcher
    ip_adapter: comfy.model_patcher.ModelPatcher


class IGRLoaderNode(io.ComfyNode):
    """Weight file name -> IGR weights."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierIGRLoader",
            display_name="Atelier Load IGR",
            category=CATEGORY,
            description="Loads an IGR garment-restoration weight file (GarmNet LoRA + mask channel, IP-Adapter; "
            "trained with python -m atelier.train.igr) from models/atelier/. The denoiser's own update is a "
            "separate LoRA for Load LoRA (or a UNet for Load Diffusion Model).",
            inputs=[io.Combo.Input("weights", options=system_file_names(SYSTEM_NAME),
                                   tooltip="An IGR weight file in models/atelier/ (other files are not listed).")],
            outputs=[IGRType.Output("igr", display_name="igr")],
        )

    @classmethod
    def validate_inputs(cls, weights=None) -> bool | str:
        if weights is not None and weights not in system_file_names(SYSTEM_NAME):
            return f"'weights' is '{weights}', which is not an IGR weight file in models/atelier/"
        return True

    @classmethod
    def execute(cls, weights: str) -> io.NodeOutput:
        loaded = load_atelier_weights(weights, SYSTEM_NAME)
        return io.NodeOutput(IGRWeights(
            name=weights, config=IGRConfig.from_dict(loaded.config), base=loaded.base,
            garmnet=managed_module(loaded.modules["garmnet"].eval()),
            ip_adapter=managed_module(loaded.modules["ip_adapter"].eval()),
        ))


def path_strength(value: float, trained: bool, input_name: str, weights: str, path: str) -> float:
    """The strength of one GarmFus path; a path the weight file was trained without must be 0."""
    if value > 0 and not trained:
        raise ReferenceInputError(
            f"'igr' ('{weights}') was trained without the {path} path; set '{input_name}' to 0"
        )
    return value


def garmnet_bank(model, vae, igr: IGRWeights, pixels: torch.Tensor, masks: torch.Tensor, context: torch.Tensor) -> ReferenceBank:
    """GarmNet's bank for the persons (B, H, W, 3) and their masks (B, H, W), on the intermediate device."""
    latent = vae.encode(pixels)  # (B, 4, H/8, W/8)
    mask_latent = mask_to_latent(masks, tuple(latent.shape[-2:]))  # (B, 1, H/8, W/8)
    comfy.model_management.load_models_gpu([model, igr.garmnet])
    device = model.load_device
    rows = latent.shape[0]
    bank = run_garmnet(model.model, latent.to(device, torch.float32), mask_latent.to(device), igr.garmnet.model,
                       igr.config.sites, context.to(device).expand(rows, -1, -1))
    return bank.to(comfy.model_management.intermediate_device())


def ip_tokens(igr: IGRWeights, clip_vision, pixels: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """F_ll (B, N, D): the IP-Adapter's tokens of the CLIP image embedding of p_g = Resize(Crop(p·m))."""
    if clip_vision is None:
        raise ReferenceInputError(
            "'clip_vision' is not connected but 'low_level_strength' is above 0; connect Load CLIP Vision with the "
            "image encoder the IGR weights were trained with, or set 'low_level_strength' to 0"
        )
    crops = garment_crop(pixels, masks, int(clip_vision.image_size))  # (B, S, S, 3)
    embeds = clip_vision.encode_image(crops).image_embeds  # (B, E)
    expected = igr.config.image_embed_dim
    if embeds.shape[-1] != expected:
        raise UnsupportedModelError(
            f"'clip_vision' gives {embeds.shape[-1]}-wide image embeddings but 'igr' expects {expected} "
            f"(the encoder it was trained with); load that CLIP vision model"
        )
    adapter = igr.ip_adapter.model
    weight = next(adapter.parameters())
    with torch.no_grad():
        return adapter.tokens(embeds.to(weight)).to(comfy.model_management.intermediate_device())


class GarmentRestorationNode(io.ComfyNode):
    """Person IMAGE + garment MASK -> a MODEL that draws that garment flat, with its prompts and latent."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierGarmentRestoration",
            display_name="Atelier Garment Restoration",
            category=CATEGORY,
            description=(
                "Try-off: restores the flat, in-shop image of the garment a person wears (IGR). GarmNet reads the "
                "person and the garment mask (high level, joined into every self-attention); the IP-Adapter reads "
                "the cropped garment through CLIP vision (low level, beside every cross-attention). Sample the "
                "outputs with KSampler (the paper uses CFG 1.5) and decode. Works with any SD1.5 checkpoint."
            ),
            inputs=[
                io.Model.Input("model", tooltip="Your SD1.5 MODEL, with the IGR denoiser LoRA loaded (Load LoRA) when "
                               "the weights came with one."),
                io.Clip.Input("clip", tooltip="The checkpoint's CLIP; encodes the category prompt and the empty negative."),
                io.Vae.Input("vae", tooltip="The SD1.5 VAE; encodes the person for GarmNet."),
                IGRType.Input("igr", tooltip="From Atelier Load IGR."),
                io.Image.Input("person", tooltip="Photo(s) of a person wearing the garment, any size (at least 64×64; "
                               "sides are center-cropped to a multiple of 8). A batch restores one garment per person."),
                io.Mask.Input("garment_mask", tooltip="The garment's region on the person (1 = garment), from any "
                              "segmentation node or Atelier Garment Mask From Parsing. One for all persons or one per "
                              "person; another resolution of the same image is resized."),
                io.Combo.Input("category", options=list(IGR_CATEGORIES), default="upper",
                               tooltip="Which garment to restore: upper body, lower body, or a full-body dress; picks the "
                               "paper's text condition."),
                io.Float.Input("high_level_strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="GarmNet's features in every self-attention (eq. 4); 1 is the paper, 0 turns the "
                               "path off (GarmNet is then not run)."),
                io.Float.Input("low_level_strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="λ of the IP-Adapter's cross-attention (eq. 3); 1 is the paper, 0 turns the path "
                               "off (no CLIP vision needed)."),
                io.Int.Input("width", default=384, min=64, max=2048, step=8,
                             tooltip="Width of the restored garment image (the paper's 768×1024 at half size)."),
                io.Int.Input("height", default=512, min=64, max=2048, step=8,
                             tooltip="Height of the restored garment image."),
                *schedule_window_inputs("the garment features are"),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="From Load CLIP Vision: the image encoder of the low-level path (needed when "
                                    "low_level_strength > 0)."),
            ],
            outputs=[
                io.Model.Output(display_name="model"),
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent"),
            ],
        )

    @classmethod
    def validate_inputs(cls, category=None) -> bool | str:
        return combo_errors(category=(category, IGR_CATEGORIES)) or True

    @classmethod
    def execute(cls, model, clip, vae, igr: IGRWeights, person: torch.Tensor, garment_mask: torch.Tensor, category: str,
                high_level_strength: float, low_level_strength: float, width: int, height: int,
                start_percent: float, end_percent: float, clip_vision=None) -> io.NodeOutput:
        require_sd15(model)
        require_sd15_vae(vae)
        require_base(model, igr.base, "igr")
        high = path_strength(high_level_strength, igr.config.high_level, "high_level_strength", igr.name, "GarmNet (high-level)")
        low = path_strength(low_level_strength, igr.config.low_level, "low_level_strength", igr.name, "IP-Adapter (low-level)")
        pixels = person_pixels(person)
        masks = person_masks(garment_mask, person)
        positive = encode_prompt(clip, CATEGORY_PROMPTS[category])
        negative = encode_prompt(clip, "")  # condition drop trained the empty prompt without garment features
        batch = pixels.shape[0]
        latent = {"samples": torch.zeros(batch, 4, height // 8, width // 8)}
        patched = model.clone()
        if high == 0.0 and low == 0.0:
            return io.NodeOutput(patched, positive, negative, latent)
        bank = garmnet_bank(model, vae, igr, pixels, masks, positive[0][0]) if high > 0 else None
        tokens = ip_tokens(igr, clip_vision, pixels, masks) if low > 0 else None
        read_sites = igr.config.sites if bank is not None else ()  # without GarmNet no attn1 site is patched
        config = ReferenceConfig(
            mode=ReadMode.CONCAT, strength=high, site_weights={name: 1.0 for name in read_sites},
            start_percent=start_percent, end_percent=end_percent, uncond=UncondPolicy.NONE,
        )
        attachment = IGRAttachment(config, bank, igr.ip_adapter.model if tokens is not None else None, tokens, low,
                                   ip_patcher=igr.ip_adapter)
        attachment.install(patched)
        return io.NodeOutput(patched, positive, negative, latent)


def parsing_labels(parsing: torch.Tensor, label_set: str) -> list[np.ndarray]:
    """A palette IMAGE (B, H, W, 3) in [0, 1] -> one (H, W) LIP label map per row."""
    source = LABEL_SETS[label_set]
    maps = []
    for row in (parsing[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy():
        labels = palette_image_to_labels(row, source)
        maps.append(labels if source == LIP else convert_label_map(labels, ATR, LIP))
    return maps


class GarmentMaskFromParsingNode(io.ComfyNode):
    """LIP/ATR parsing IMAGE -> MASK of one garment category."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierGarmentMaskFromParsing",
            display_name="Atelier Garment Mask From Parsing",
            category=CATEGORY,
            description="Builds a garment MASK from a human-parsing image in the LIP or ATR colour palette (e.g. from a "
            "parsing preprocessor): the garment's own pixels, or the VITON-style agnostic region around them.",
            inputs=[
                io.Image.Input("parsing", tooltip="Parsing image(s) in the exact LIP or ATR palette colours (lossless)."),
                io.Combo.Input("label_set", options=list(LABEL_SETS), default="lip", tooltip="The parsing image's palette."),
                io.Combo.Input("category", options=list(IGR_CATEGORIES), default="upper", tooltip="Which garment to mask."),
                io.Combo.Input("region", options=list(MASK_REGIONS), default="garment",
                               tooltip="garment: the garment's pixels. agnostic: the dilated VITON-HD/DressCode region "
                               "(garment plus the skin a new garment may cover)."),
            ],
            outputs=[io.Mask.Output(display_name="mask")],
        )

    @classmethod
    def validate_inputs(cls, label_set=None, category=None, region=None) -> bool | str:
        return combo_errors(label_set=(label_set, tuple(LABEL_SETS)), category=(category, IGR_CATEGORIES),
                            region=(region, MASK_REGIONS)) or True

    @classmethod
    def execute(cls, parsing: torch.Tensor, label_set: str, category: str, region: str) -> io.NodeOutput:
        if parsing.ndim != 4 or parsing.shape[-1] < 3:
            raise ReferenceInputError(f"'parsing' must be an IMAGE (batch, height, width, 3); got shape {tuple(parsing.shape)}")
        masks = []
        for labels in parsing_labels(parsing, label_set):
            if region == "agnostic":
                masks.append(agnostic_mask(labels, category))
            else:
                masks.append(category_mask(labels, LIP, LIP_REGIONS[category]))
        return io.NodeOutput(torch.from_numpy(np.stack(masks)).float())


NODES: tuple[type[io.ComfyNode], ...] = (IGRLoaderNode, GarmentRestorationNode, GarmentMaskFromParsingNode)
