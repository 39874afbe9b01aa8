"""Model files the Text2Graph workflow (kg_prompt_openpose.json) names, written for the workflow
execution test: a tiny random ControlNet in ComfyUI's ldm layout (``zero_convs.*``, detected by
``comfy.controlnet.load_controlnet`` and matched to the test-only TinySD15 config: model_channels
32, context_dim 64) and a tiny random Text2Graph LoRA in kohya keys from the pack's own exporter."""

from __future__ import annotations

from pathlib import Path

CONTROLNET_NAME = "control_v11p_sd15_openpose.safetensors"
LORA_NAME = "atelier_text2graph_lora.safetensors"


def _folder(comfy_node_registry, kind: str) -> Path:
    folder = Path(comfy_node_registry.output_dir).parent / f"text2graph_{kind}"
    folder.mkdir(exist_ok=True)
    comfy_node_registry.folder_paths.add_model_folder_path(kind, str(folder))
    return folder


def write_tiny_controlnet(comfy_node_registry) -> Path:
    """A random ControlNet shaped for the tiny SD1.5 checkpoint (3-channel hint, like OpenPose's)."""
    import comfy.cldm.cldm
    import comfy.ops
    import torch
    from comfy_fixtures import TINY_SD15, init_weights_, sd15_unet_config
    from safetensors.torch import save_file

    config = sd15_unet_config(TINY_SD15.model_channels, TINY_SD15.context_dim)
    config.pop("out_channels")
    net = comfy.cldm.cldm.ControlNet(hint_channels=3, num_heads=8, dtype=torch.float32, device="cpu",
                                     operations=comfy.ops.disable_weight_init, **config)
    init_weights_(net, seed=7)
    path = _folder(comfy_node_registry, "controlnet") / CONTROLNET_NAME
    save_file({key: value.contiguous() for key, value in net.state_dict().items()}, str(path))
    return path


def tiny_lora_state(seed: int = 3) -> dict:
    """kohya-format LoRA tensors for the tiny SD1.5 layout, random up and down weights."""
    import torch
    from atelier.train.text2graph.lora_export import kohya_unet_lora
    from atelier.train.tiny import tiny_unet
    from atelier.train.text2graph.trainer import LORA_TARGETS
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = tiny_unet(seed)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    generator = torch.Generator().manual_seed(seed)
    state = {key: torch.randn(value.shape, generator=generator) * 0.05 for key, value in get_peft_model_state_dict(unet).items()}
    return kohya_unet_lora(state, alpha=4.0)


def write_tiny_lora(comfy_node_registry) -> Path:
    """The tiny LoRA in ComfyUI's loras folder."""
    from safetensors.torch import save_file

    path = _folder(comfy_node_registry, "loras") / LORA_NAME
    save_file(tiny_lora_state(), str(path))
    return path


ASSETS: dict = {CONTROLNET_NAME: write_tiny_controlnet, LORA_NAME: write_tiny_lora}
