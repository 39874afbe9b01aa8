"""Model and input files the IGR workflows (igr_tryoff.json, igr_tryoff_to_anydressing.json) name,
written for the workflow execution test:

* ``igr.safetensors``: an initialised, untrained IGR file for the tiny SD1.5-shaped checkpoint
  (model_channels 32, context_dim 64) with ``image_embed_dim`` 768, the width of the CLIP vision
  file below;
* ``igr_denoiser_lora.safetensors``: a tiny random kohya LoRA for the tiny UNet, in ComfyUI's loras
  folder (the IGR denoiser update is such a LoRA);
* ``CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors``: the workflows name the ViT-H/14 encoder of the
  SD1.5 IP-Adapters, but ComfyUI's CLIPVisionLoader only accepts the real encoder sizes, so this is
  a random ViT-L/14 (the smallest it detects: key ``vision_model.encoder.layers.22.layer_norm1.weight``,
  comfy/clip_vision_config_vitl.json, 768-wide image embeddings) in fp16, about 600 MB. It is
  written once per test session (into the session's temp tree, next to ComfyUI's output dir) and
  reused. The graph does not depend on the encoder's size;
* ``igr_person_parsing_lip.png``: a 96×96 LIP parsing map in the exact LIP palette (an
  upper_clothes torso, pants, arms, legs, face, hair, shoes), in ComfyUI's input dir. The test
  writes a random 96×96 person photo for the other LoadImage, so the garment mask matches its size.
"""

from __future__ import annotations

import json
from pathlib import Path

from asset_files import (
    write_lip_parsing,
    write_tiny_lora_file,
    write_untrained_atelier_file,
)

IGR_WEIGHTS = "igr.safetensors"
DENOISER_LORA = "igr_denoiser_lora.safetensors"
CLIP_VISION = "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
PARSING_IMAGE = "igr_person_parsing_lip.png"
CLIP_VISION_EMBED_DIM = 768  # ViT-L/14's projection_dim
PARSING_SIDE = 96
CLIP_VISION_SEED = 11
NORM_KEY_PARTS = ("layer_norm", "layrnorm", "layernorm")  # ViT LayerNorms (incl. transformers' "pre_layrnorm")

# LIP class -> (y0, y1, x0, x1) as fractions of the side, drawn in this order (later classes on top).
PARSING_REGIONS: tuple[tuple[str, tuple[float, float, float, float]], ...] = (
    ("left_leg", (0.62, 0.92, 0.36, 0.48)),
    ("right_leg", (0.62, 0.92, 0.52, 0.64)),
    ("pants", (0.55, 0.80, 0.34, 0.66)),
    ("left_arm", (0.28, 0.60, 0.20, 0.32)),
    ("right_arm", (0.28, 0.60, 0.68, 0.80)),
    ("upper_clothes", (0.25, 0.58, 0.30, 0.70)),
    ("hair", (0.02, 0.12, 0.40, 0.60)),
    ("face", (0.08, 0.24, 0.42, 0.58)),
    ("left_shoe", (0.92, 0.98, 0.34, 0.48)),
    ("right_shoe", (0.92, 0.98, 0.52, 0.66)),
)


def write_untrained_igr(comfy_node_registry) -> None:
    """Write ``IGR_WEIGHTS`` for the tiny base (768-wide image embeddings) into a registered Atelier folder."""
    from atelier.models.igr.config import IGRConfig
    from atelier.models.igr.spec import IGR

    write_untrained_atelier_file(comfy_node_registry, IGR_WEIGHTS, IGR, IGRConfig(image_embed_dim=CLIP_VISION_EMBED_DIM).to_dict())


def write_denoiser_lora(comfy_node_registry) -> None:
    """A tiny random kohya LoRA for the tiny UNet in ComfyUI's loras folder."""
    write_tiny_lora_file(comfy_node_registry, DENOISER_LORA, seed=5)


def random_vitl_state(seed: int) -> dict:
    """A random ViT-L/14 CLIP vision state dict in fp16, keyed and shaped as ComfyUI's own model.

    LayerNorm weights are 1 and biases 0; every other tensor is N(0, 0.02²), drawn tensor by tensor.
    """
    import comfy.clip_model
    import comfy.ops
    import torch

    config_path = Path(comfy.clip_model.__file__).parent / "clip_vision_config_vitl.json"
    config = json.loads(config_path.read_text())
    skeleton = comfy.clip_model.CLIPVisionModelProjection(config, torch.float16, "meta", comfy.ops.manual_cast)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, meta in skeleton.state_dict().items():
        if any(part in key for part in NORM_KEY_PARTS):
            value = torch.ones(meta.shape) if key.endswith("weight") else torch.zeros(meta.shape)
        else:
            value = torch.randn(meta.shape, generator=generator) * 0.02
        state[key] = value.to(torch.float16)
    return state


def write_clip_vision(comfy_node_registry) -> None:
    """The random ViT-L/14 under ``CLIP_VISION`` in a clip_vision folder, written once per session."""
    from safetensors.torch import save_file

    folder = Path(comfy_node_registry.output_dir).parent / "igr_clip_vision"
    path = folder / CLIP_VISION
    if not path.is_file():
        folder.mkdir(exist_ok=True)
        save_file(random_vitl_state(CLIP_VISION_SEED), str(path))
    comfy_node_registry.folder_paths.add_model_folder_path("clip_vision", str(folder))


def write_parsing_image(comfy_node_registry) -> None:
    """``PARSING_IMAGE`` in ComfyUI's input dir: the label map in the exact LIP palette colours (lossless PNG)."""
    write_lip_parsing(Path(comfy_node_registry.input_dir) / PARSING_IMAGE, PARSING_REGIONS, PARSING_SIDE, PARSING_SIDE)


ASSETS: dict = {
    IGR_WEIGHTS: write_untrained_igr,
    DENOISER_LORA: write_denoiser_lora,
    CLIP_VISION: write_clip_vision,
    PARSING_IMAGE: write_parsing_image,
}
