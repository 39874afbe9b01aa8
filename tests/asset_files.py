"""File writers the workflow asset modules (tests/workflow_assets_*.py) share: an untrained Atelier
weight file in a registered Atelier folder, a tiny random kohya LoRA in a loras folder, and a LIP
parsing image in the exact palette colours. Each model file goes into a fresh folder registered with
ComfyUI, so no two assets shadow each other."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# LIP class -> (y0, y1, x0, x1) as fractions of the map, drawn in order (later classes on top).
ParsingRegions = Sequence[tuple[str, tuple[float, float, float, float]]]


def write_untrained_atelier_file(comfy_node_registry, name: str, spec, config: dict | None = None, base=None) -> None:
    """``export_untrained`` of ``spec`` as ``name`` (for the tiny SD1.5 test checkpoint unless ``base``
    is given) in a fresh folder registered as an Atelier model folder."""
    from atelier.models.weight_format import BaseModel
    from atelier.models.weights import export_untrained
    from atelier.nodes.folders import FOLDER_NAME
    from comfy_fixtures import TINY_SD15

    folder = Path(tempfile.mkdtemp(prefix=f"atelier_{spec.name}_"))
    if base is None:
        base = BaseModel(model_channels=TINY_SD15.model_channels, context_dim=TINY_SD15.context_dim)
    export_untrained(str(folder / name), spec, base, config)
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))


def write_tiny_lora_file(comfy_node_registry, name: str, seed: int) -> None:
    """A tiny random kohya LoRA for the tiny UNet as ``name`` in a fresh folder registered as a loras folder."""
    from safetensors.torch import save_file
    from workflow_assets_text2graph import tiny_lora_state

    folder = Path(tempfile.mkdtemp(prefix="atelier_lora_"))
    save_file(tiny_lora_state(seed=seed), str(folder / name))
    comfy_node_registry.folder_paths.add_model_folder_path("loras", str(folder))


def lip_label_map(regions: ParsingRegions, height: int, width: int) -> np.ndarray:
    """(height, width) uint8 LIP label map of ``regions``, background elsewhere."""
    from atelier.models.labels import LIP_LABELS

    labels = np.zeros((height, width), dtype=np.uint8)  # background
    for name, (y0, y1, x0, x1) in regions:
        labels[round(y0 * height):round(y1 * height), round(x0 * width):round(x1 * width)] = LIP_LABELS.index(name)
    return labels


def write_lip_parsing(path: Path, regions: ParsingRegions, height: int, width: int) -> None:
    """The label map of ``regions`` in the exact LIP palette colours at ``path`` (lossless PNG)."""
    from atelier.models.parsing import LIP, labels_to_palette_image
    from PIL import Image

    pixels = labels_to_palette_image(lip_label_map(regions, height, width), LIP)  # (H, W, 3) uint8
    Image.fromarray(pixels).save(path)
