"""Model files the AnyDressing workflows need in the workflow execution test: an initialised, untrained
AnyDressing weight file for the tiny SD1.5-shaped checkpoint, and a tiny style LoRA (the pose
ControlNet comes from workflow_assets_text2graph, which writes the same file name)."""

from asset_files import write_tiny_lora_file, write_untrained_atelier_file

WORKFLOW_WEIGHTS = "anydressing.safetensors"
STYLE_LORA = "fashion_style_lora.safetensors"


def write_untrained_dressing(comfy_node_registry) -> None:
    """Write ``WORKFLOW_WEIGHTS`` (tiny base: model_channels 32, context_dim 64) into a registered Atelier folder."""
    from atelier.models.anydressing.spec import ANYDRESSING

    write_untrained_atelier_file(comfy_node_registry, WORKFLOW_WEIGHTS, ANYDRESSING)


def write_style_lora(comfy_node_registry) -> None:
    """A tiny random kohya LoRA in ComfyUI's loras folder."""
    write_tiny_lora_file(comfy_node_registry, STYLE_LORA, seed=9)


ASSETS = {WORKFLOW_WEIGHTS: write_untrained_dressing, STYLE_LORA: write_style_lora}
