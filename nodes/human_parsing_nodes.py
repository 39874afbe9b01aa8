"""Human parsing from a SegFormer clothes parser: load a parser, parse person photos.

Graph: Load Human Parser (a folder in models/segformer/) → Human Parsing (IMAGE) → its palette
IMAGE into Garment Mask From Parsing or Encode Pose Source (``*_palette``), its label-id IMAGE into
Encode Pose Source (``*_ids``), its MASK into Garment Restoration, Encode Garments or Apply
Dressing's ``garment_masks``. The loader's output holds the model in a ModelPatcher, so ComfyUI
caches it with the loader node (loaded once per folder choice) and moves it to and from the GPU
with its other models.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import comfy.utils
import torch
from comfy_api.latest import io

from ..models.errors import ReferenceInputError
from ..models.parser_labels import category_groups
from ..models.parsing import ATR, LIP, LabelSet, UnknownLabelError
from ..models.parsing_outputs import (
    category_masks,
    convert_labels,
    label_id_images,
    palette_images,
)
from ..models.segformer_files import load_segformer_parser
from .combo_check import combo_errors
from .parser_folders import parser_folder_names, resolve_parser_folder
from .weights_loader import managed_module

HumanParserType = io.Custom("ATELIER_HUMAN_PARSER")
CATEGORY = "Atelier/parsing"
LABEL_SETS: dict[str, LabelSet] = {"lip": LIP, "atr": ATR}
MASK_MODES: tuple[str, ...] = ("combined", "per_category")
DEFAULT_CATEGORIES = "upper_clothes"


@dataclass(frozen=True)
class HumanParser:
    """A loaded parser: its folder name, the label set it predicts, and the model in a ModelPatcher."""

    name: str
    label_set: LabelSet
    patcher: comfy.model_patcher.ModelPatcher


class HumanParserLoaderNode(io.ComfyNode):
    """Parser folder name -> HUMAN_PARSER (a SegFormer clothes parser, loaded offline)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierHumanParserLoader",
            display_name="Atelier Load Human Parser",
            category=CATEGORY,
            description="Loads a SegFormer clothes parser (a transformers folder with config.json and "
            "model.safetensors, e.g. mattmdjaga/segformer_b2_clothes) from models/segformer/, offline. Its classes "
            "must be the 18 ATR or the 20 LIP classes.",
            inputs=[io.Combo.Input("parser", options=parser_folder_names(),
                                   tooltip="A parser folder in models/segformer/ (each sub-folder with a config.json "
                                   "is listed), e.g. segformer_b2_clothes.")],
            outputs=[HumanParserType.Output("parser_out", display_name="parser")],
        )

    @classmethod
    def validate_inputs(cls, parser=None) -> bool | str:
        if parser is not None and parser not in parser_folder_names():
            return f"'parser' is '{parser}', which is not a folder with a config.json in models/segformer/"
        return True

    @classmethod
    def execute(cls, parser: str) -> io.NodeOutput:
        module = load_segformer_parser(resolve_parser_folder(parser), name=parser)
        return io.NodeOutput(HumanParser(name=parser, label_set=module.label_set, patcher=managed_module(module.eval())))


class HumanParsingNode(io.ComfyNode):
    """Person IMAGE -> LIP/ATR palette IMAGE, label-id IMAGE and a MASK of chosen categories."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierHumanParsing",
            display_name="Atelier Human Parsing",
            category=CATEGORY,
            description="Parses each person photo into body parts and garments at the photo's own size. Outputs "
            "a palette image (for Garment Mask From Parsing and Encode Pose Source), the label ids as a grey image "
            "(id = value × 255; Encode Pose Source's *_ids formats) and a MASK of the chosen categories.",
            inputs=[
                HumanParserType.Input("parser", tooltip="From Atelier Load Human Parser."),
                io.Image.Input("image", tooltip="Person photo(s), any size; a batch gives one parsing per image."),
                io.Combo.Input("label_set", options=list(LABEL_SETS), default="lip",
                               tooltip="Label set of the outputs. lip (20 classes: what the agnostic mask, IGR and "
                               "TruePose use) or atr (18). An ATR parser's maps are converted to LIP by class name: "
                               "belt becomes pants, bag becomes background."),
                io.String.Input("categories", default=DEFAULT_CATEGORIES,
                                tooltip="Classes of the mask output, in the chosen label set, comma-separated; join "
                                "classes into one group with '+' (e.g. 'upper_clothes+coat, pants+skirt'). LIP names: "
                                + ", ".join(LIP.labels) + ". ATR adds belt and bag and has no glove, coat, socks, "
                                "jumpsuits."),
                io.Combo.Input("mask_mode", options=list(MASK_MODES), default="combined",
                               tooltip="combined: one mask per image, all categories together. per_category: one mask "
                               "per comma-separated group for each image, in order (image 1's groups, then image 2's), "
                               "the layout of Apply Dressing's per-garment garment_masks."),
            ],
            outputs=[
                io.Image.Output("parsing", display_name="parsing",
                                tooltip="The parsing in the label set's exact palette colours."),
                io.Image.Output("label_ids", display_name="label_ids",
                                tooltip="The label ids as a grey image: value × 255 = class id."),
                io.Mask.Output("mask", display_name="mask", tooltip="1 on the chosen categories."),
            ],
        )

    @classmethod
    def validate_inputs(cls, label_set=None, categories=None, mask_mode=None) -> bool | str:
        problem = combo_errors(label_set=(label_set, tuple(LABEL_SETS)), mask_mode=(mask_mode, MASK_MODES))
        if problem:
            return problem
        if label_set is not None and categories is not None:
            try:
                category_groups(categories, LABEL_SETS[label_set])
            except UnknownLabelError as error:
                return str(error)
        return True

    @classmethod
    def execute(cls, parser: HumanParser, image: torch.Tensor, label_set: str, categories: str,
                mask_mode: str) -> io.NodeOutput:
        if image.ndim != 4 or image.shape[-1] < 3:
            raise ReferenceInputError(f"'image' must be an IMAGE (batch, height, width, 3); got shape {tuple(image.shape)}")
        target = LABEL_SETS[label_set]
        groups = category_groups(categories, target)
        labels = convert_labels(parse_batch(parser, image), parser.label_set, target)  # (B, H, W)
        masks = category_masks(labels, target, groups, combined=mask_mode == "combined")
        return io.NodeOutput(palette_images(labels, target), label_id_images(labels), masks)


def parse_batch(parser: HumanParser, image: torch.Tensor) -> torch.Tensor:
    """Label ids (B, H, W) int64 of the parser's label set, on the intermediate device; one image at a time."""
    comfy.model_management.load_models_gpu([parser.patcher])
    module = parser.patcher.model
    progress = comfy.utils.ProgressBar(image.shape[0])
    rows = []
    with torch.no_grad():
        for row in image:
            rows.append(module(row.unsqueeze(0)).to(comfy.model_management.intermediate_device()))  # (1, H, W)
            progress.update(1)
    return torch.cat(rows)  # (B, H, W)


NODES: tuple[type[io.ComfyNode], ...] = (HumanParserLoaderNode, HumanParsingNode)
