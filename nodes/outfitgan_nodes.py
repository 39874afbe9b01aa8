"""OutfitGAN nodes (issue 5): load a weight file, complete an outfit from one item, score compatibility.

Resize policy (``models.outfitgan.inputs``): item images of any size are padded to a square with
white, centred, and resized to the model's image size; masks are padded with 0, area-resized and
binarised at 0.5. Every output image is at the model's image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import comfy.utils
import torch
from comfy_api.latest import io

from ..models.outfitgan.ccm import assemble_outfit
from ..models.outfitgan.config import OUTFIT_ORDER, OutfitGANConfig
from ..models.outfitgan.errors import OutfitInputError
from ..models.outfitgan.inputs import (
    fit_item_image,
    fit_mask,
    outfit_grid,
    to_comfy_image,
)
from ..models.outfitgan.silhouettes import default_silhouette
from ..models.outfitgan.spec import SYSTEM_NAME
from .weights_loader import load_atelier_weights, managed_module, system_file_names

OutfitGANModelType = io.Custom("ATELIER_OUTFITGAN")
CATEGORY = "Atelier/outfitgan"


@dataclass(frozen=True)
class OutfitGANModel:
    """A loaded OutfitGAN: its config and the generator / CCM wrapped for ComfyUI's memory manager."""

    name: str
    config: OutfitGANConfig
    generator: comfy.model_patcher.ModelPatcher
    ccm: comfy.model_patcher.ModelPatcher


def outfitgan_file_names() -> list[str]:
    """OutfitGAN weight files in ``models/atelier/``."""
    return system_file_names(SYSTEM_NAME)


def _loaded(patcher: comfy.model_patcher.ModelPatcher) -> tuple[torch.nn.Module, torch.device]:
    """Ask ComfyUI to load ``patcher`` and return (module, device) to run it on."""
    comfy.model_management.load_models_gpu([patcher])
    return patcher.model, patcher.load_device


class OutfitGANLoaderNode(io.ComfyNode):
    """Weight file name -> OutfitGAN model (generators + CCM)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierOutfitGANLoader",
            display_name="Atelier Load OutfitGAN",
            category=CATEGORY,
            description="Loads an OutfitGAN weight file (trained with python -m atelier.train.outfitgan) from models/atelier/.",
            inputs=[io.Combo.Input("weights", options=outfitgan_file_names(),
                                   tooltip="An OutfitGAN weight file in models/atelier/ (other files are not listed).")],
            outputs=[OutfitGANModelType.Output("outfitgan", display_name="outfitgan")],
        )

    @classmethod
    def validate_inputs(cls, weights=None) -> bool | str:
        """ComfyUI 0.3.64 does not check V3 combo values itself; refuse unknown file names by name."""
        if weights is not None and weights not in outfitgan_file_names():
            return f"'weights' is '{weights}', which is not an OutfitGAN weight file in models/atelier/"
        return True

    @classmethod
    def execute(cls, weights: str) -> io.NodeOutput:
        loaded = load_atelier_weights(weights, SYSTEM_NAME)
        config = OutfitGANConfig.from_dict(loaded.config)
        model = OutfitGANModel(
            name=weights, config=config,
            generator=managed_module(loaded.modules["generator"].eval()),
            ccm=managed_module(loaded.modules["ccm"].eval()),
        )
        return io.NodeOutput(model)


def _mask_input(slot: str) -> io.Mask.Input:
    return io.Mask.Input(f"{slot}_mask", optional=True,
                         tooltip=f"Silhouette of the {slot} to generate (1 = inside). Any size; one for the batch "
                         f"or one per source item. Default: the built-in {slot} silhouette.")


class OutfitCompleteNode(io.ComfyNode):
    """Source item IMAGE (+ optional target MASKs) -> every outfit item as an IMAGE, and a preview grid."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierOutfitComplete",
            display_name="Atelier Complete Outfit",
            category=CATEGORY,
            description=(
                "Generates the rest of a compatible outfit (upper, bag, lower, shoes) from one item with "
                "OutfitGAN. The given item passes through to its own output. Images of any size are padded "
                "to a square with white and resized to the model's size; outputs are at the model's size."
            ),
            inputs=[
                OutfitGANModelType.Input("outfitgan", tooltip="From Atelier Load OutfitGAN."),
                io.Image.Input("source", tooltip="The given item(s), on a plain white background; a batch "
                               "completes one outfit per image. Its category is the model's source category "
                               "(an upper garment for the default models)."),
                *[_mask_input(slot) for slot in OUTFIT_ORDER],
            ],
            outputs=[
                *[io.Image.Output(slot, display_name=slot) for slot in OUTFIT_ORDER],
                io.Image.Output("grid", display_name="grid", tooltip="One row per outfit: upper, bag, lower, shoes."),
            ],
        )

    @classmethod
    def execute(cls, outfitgan: OutfitGANModel, source: torch.Tensor, upper_mask=None, bag_mask=None,
                lower_mask=None, shoes_mask=None) -> io.NodeOutput:
        config = outfitgan.config
        given = {"upper": upper_mask, "bag": bag_mask, "lower": lower_mask, "shoes": shoes_mask}
        if given[config.source_slot] is not None:
            raise OutfitInputError(
                f"'{config.source_slot}_mask' is connected, but this model is given the {config.source_slot} "
                f"and generates {config.target_slots}; disconnect '{config.source_slot}_mask'"
            )
        size = config.image_size
        items = fit_item_image(source, size, "source")
        batch = items.shape[0]
        masks = {
            slot: fit_mask(given[slot], size, batch, f"{slot}_mask") if given[slot] is not None
            else default_silhouette(slot, size)[None].expand(batch, -1, -1, -1)
            for slot in config.target_slots
        }
        generator, device = _loaded(outfitgan.generator)
        progress = comfy.utils.ProgressBar(len(config.target_slots))
        outfit = {config.source_slot: items}
        for slot in config.target_slots:
            with torch.no_grad():
                image, _ = generator.generate_item(items.to(device), masks[slot].to(device), slot)
            outfit[slot] = image.float().cpu()
            progress.update(1)
        return io.NodeOutput(*[to_comfy_image(outfit[slot]) for slot in OUTFIT_ORDER], outfit_grid(outfit))


class OutfitCompatibilityNode(io.ComfyNode):
    """Upper, bag, lower and shoes IMAGEs -> the CCM's compatibility score (FLOAT) and a report (STRING)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierOutfitCompatibility",
            display_name="Atelier Outfit Compatibility",
            category=CATEGORY,
            description=(
                "Scores how well four items go together with OutfitGAN's Collocation Classification Module "
                "(a Bi-LSTM over upper -> bag -> lower -> shoes). 1 = compatible. Batches score one outfit per "
                "index; an input with a single image is shared by every outfit."
            ),
            inputs=[OutfitGANModelType.Input("outfitgan", tooltip="From Atelier Load OutfitGAN.")]
            + [io.Image.Input(slot, tooltip=f"The {slot} item(s), on white; any size.") for slot in OUTFIT_ORDER],
            outputs=[
                io.Float.Output("score", display_name="score", tooltip="Mean compatibility probability over the batch."),
                io.String.Output("report", display_name="report", tooltip="One line per outfit with its score."),
            ],
        )

    @classmethod
    def execute(cls, outfitgan: OutfitGANModel, upper: torch.Tensor, bag: torch.Tensor, lower: torch.Tensor,
                shoes: torch.Tensor) -> io.NodeOutput:
        size = outfitgan.config.image_size
        images = {"upper": upper, "bag": bag, "lower": lower, "shoes": shoes}
        items = {slot: fit_item_image(images[slot], size, slot) for slot in OUTFIT_ORDER}
        sizes = {slot: item.shape[0] for slot, item in items.items()}
        batch = max(sizes.values())
        if any(size not in (1, batch) for size in sizes.values()):
            listed = ", ".join(f"'{slot}' holds {size}" for slot, size in sizes.items())
            raise OutfitInputError(f"the item inputs have different batch sizes ({listed} images); "
                                   "give one image or the same number of images to each")
        items = {slot: item.expand(batch, -1, -1, -1) for slot, item in items.items()}
        ccm, device = _loaded(outfitgan.ccm)
        with torch.no_grad():
            scores = ccm.score(assemble_outfit(items).to(device)).float().cpu()  # (B,)
        report = "\n".join(f"outfit {index}: compatibility {score:.3f}" for index, score in enumerate(scores.tolist()))
        return io.NodeOutput(float(scores.mean()), report)


NODES: tuple[type[io.ComfyNode], ...] = (OutfitGANLoaderNode, OutfitCompleteNode, OutfitCompatibilityNode)
