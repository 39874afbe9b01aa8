"""Model files the human parsing workflow (human_parsing.json) names, written for the workflow execution
test: ``segformer_b2_clothes``, a tiny random SegFormer clothes parser folder in the published layout
(config.json with the 18 ATR classes, model.safetensors, preprocessor_config.json), in a fresh folder
registered as a ComfyUI ``segformer`` model folder. The test writes a random person photo for LoadImage."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tiny_segformer import write_tiny_segformer

PARSER_FOLDER = "segformer_b2_clothes"


def write_parser(comfy_node_registry) -> None:
    """A tiny parser folder named ``PARSER_FOLDER`` under a fresh registered segformer path."""
    from atelier.nodes.folders import PARSER_FOLDER_NAME

    root = Path(tempfile.mkdtemp(prefix="atelier_segformer_"))
    write_tiny_segformer(root / PARSER_FOLDER)
    comfy_node_registry.folder_paths.add_model_folder_path(PARSER_FOLDER_NAME, str(root))


ASSETS = {PARSER_FOLDER: write_parser}
