"""Model files the AnyDressing workflows need in the workflow execution test: an initialised, untrained
AnyDressing weight file for the tiny SD1.5-shaped checkpoint, and a tiny style LoRA (the pose
ControlNet comes from workflow_assets_text2graph, which writes the same file name)."""

import tempfile
from pathlib import Path

WORKFLOW_WEIGHTS = "anydressing.safetensors"
STYLE_LORA = "fashion_style_lora.safetensors"


def write_untrained_dressing(comfy_node_registry) -> None:
    """Write ``WORKFLOW_WEIGHTS`` (tiny base: model_channels 32, context_dim 64) into a registered Atelier folder."""
    from atelier.models.anydressing.spec import ANYDRESSING
    from atelier.models.weight_format import BaseModel
    from atelier.models.weights import export_untrained
    from atelier.nodes.folders import FOLDER_NAME
    from comfy_fixtures import TINY_SD15

    folder = Path(tempfile.mkdtemp(prefix="atelier_anydressing_"))
    base = BaseModel(model_channels=TINY_SD15.model_channels, context_dim=TINY_SD15.context_dim)
    export_untrained(str(folder / WORKFLOW_WEIGHTS), ANYDRESSING, base)
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))


def write_style_lora(comfy_node_registry) -> None:
    """A tiny random kohya LoRA in ComfyUI's loras folder."""
    from safetensors.torch import save_file
    from workflow_assets_text2graph import tiny_lora_state

    folder = Path(tempfile.mkdtemp(prefix="atelier_style_lora_"))
    save_file(tiny_lora_state(seed=9), str(folder / STYLE_LORA))
    comfy_node_registry.folder_paths.add_model_folder_path("loras", str(folder))


ASSETS = {WORKFLOW_WEIGHTS: write_untrained_dressing, STYLE_LORA: write_style_lora}
