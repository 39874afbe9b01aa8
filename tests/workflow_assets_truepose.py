"""Model and input files the TruePose workflows (truepose_pose_transfer.json,
anydressing_to_truepose.json) name, written for the workflow execution test:

* ``truepose.safetensors``: an initialised, untrained TruePose file for the tiny SD1.5-shaped
  checkpoint (model_channels 32, context_dim 64) with ``clip_embed_dim`` 768, the width of the random
  ViT-L/14 that workflow_assets_igr writes under the ViT-H/14 file name both workflows load;
* ``truepose_unet_lora.safetensors``: a tiny random kohya LoRA for the tiny UNet, in ComfyUI's loras
  folder (the TruePose UNet update is such a LoRA);
* ``atelier_target_pose.json``: a POSE_KEYPOINT list (comfyui_controlnet_aux's format) with one frame
  and one front-facing person waving with the left hand, 18 COCO-18 points in pixels on the
  workflows' 352×512 canvas, in ComfyUI's input dir;
* ``truepose_source_parsing_lip.png`` and ``truepose_dressed_parsing_lip.png``: a 96×96 LIP parsing map
  in the exact LIP palette of a figure in a long-sleeved top and trousers (hair, face, upper_clothes,
  pants), in ComfyUI's input dir. The test writes a random 96×96 source photo for the other LoadImage
  (same size), and samples the dressed person at 64×64 (same square aspect, which the node resizes).
  Four CAA regions rather than the IGR map's seven: Encode Pose Source runs the CLIP image encoder
  (a ViT-L/14 here) once per present region, which dominates the test's run time on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

from asset_files import (
    write_lip_parsing,
    write_tiny_lora_file,
    write_untrained_atelier_file,
)
from workflow_assets_igr import CLIP_VISION_EMBED_DIM

TRUEPOSE_WEIGHTS = "truepose.safetensors"
UNET_LORA = "truepose_unet_lora.safetensors"
TARGET_POSE = "atelier_target_pose.json"
SOURCE_PARSING = "truepose_source_parsing_lip.png"
DRESSED_PARSING = "truepose_dressed_parsing_lip.png"
PARSING_SIDE = 96
CANVAS_WIDTH = 352
CANVAS_HEIGHT = 512
UNET_LORA_SEED = 13

# COCO-18 point -> (x, y) as fractions of the canvas: a person facing the camera (their right side on
# the image's left), left arm raised in a wave. Every point is present (confidence 1).
TARGET_POSE_POINTS: dict[str, tuple[float, float]] = {
    "nose": (0.50, 0.125),
    "neck": (0.50, 0.20),
    "right_shoulder": (0.38, 0.21),
    "right_elbow": (0.34, 0.35),
    "right_wrist": (0.33, 0.48),
    "left_shoulder": (0.62, 0.21),
    "left_elbow": (0.71, 0.27),
    "left_wrist": (0.72, 0.13),
    "right_hip": (0.44, 0.50),
    "right_knee": (0.43, 0.69),
    "right_ankle": (0.43, 0.88),
    "left_hip": (0.56, 0.50),
    "left_knee": (0.57, 0.69),
    "left_ankle": (0.57, 0.88),
    "right_eye": (0.475, 0.108),
    "left_eye": (0.525, 0.108),
    "right_ear": (0.445, 0.115),
    "left_ear": (0.555, 0.115),
}


# LIP class -> (y0, y1, x0, x1) as fractions of the map, drawn in this order (later classes on top).
PARSING_REGIONS: tuple[tuple[str, tuple[float, float, float, float]], ...] = (
    ("pants", (0.55, 0.96, 0.34, 0.66)),
    ("upper_clothes", (0.25, 0.60, 0.20, 0.80)),
    ("hair", (0.02, 0.12, 0.40, 0.60)),
    ("face", (0.08, 0.24, 0.42, 0.58)),
)


def write_untrained_truepose(comfy_node_registry) -> None:
    """Write ``TRUEPOSE_WEIGHTS`` for the tiny base (768-wide CLIP embeddings) into a registered Atelier folder."""
    from atelier.models.truepose.config import TruePoseConfig
    from atelier.models.truepose.spec import TRUEPOSE

    config = TruePoseConfig(clip_embed_dim=CLIP_VISION_EMBED_DIM).to_dict()
    write_untrained_atelier_file(comfy_node_registry, TRUEPOSE_WEIGHTS, TRUEPOSE, config)


def write_unet_lora(comfy_node_registry) -> None:
    """A tiny random kohya LoRA for the tiny UNet in ComfyUI's loras folder."""
    write_tiny_lora_file(comfy_node_registry, UNET_LORA, seed=UNET_LORA_SEED)


def target_pose_keypoint(width: int = CANVAS_WIDTH, height: int = CANVAS_HEIGHT) -> list[dict]:
    """The POSE_KEYPOINT value: one frame, one person, ``TARGET_POSE_POINTS`` in pixels of ``width`` x ``height``."""
    from atelier.models.labels import COCO18_KEYPOINTS

    flat: list[float] = []
    for name in COCO18_KEYPOINTS:
        x, y = TARGET_POSE_POINTS[name]
        flat += [round(x * width, 1), round(y * height, 1), 1.0]
    return [{"people": [{"pose_keypoints_2d": flat}], "canvas_width": width, "canvas_height": height}]


def write_target_pose(comfy_node_registry) -> None:
    """``TARGET_POSE`` in ComfyUI's input dir, as comfyui_controlnet_aux's "Save Pose Keypoints" writes it."""
    path = Path(comfy_node_registry.input_dir) / TARGET_POSE
    path.write_text(json.dumps(target_pose_keypoint()))


def write_source_parsing(comfy_node_registry) -> None:
    """``SOURCE_PARSING`` in ComfyUI's input dir (the test's random source photo is the same size)."""
    write_lip_parsing(Path(comfy_node_registry.input_dir) / SOURCE_PARSING, PARSING_REGIONS, PARSING_SIDE, PARSING_SIDE)


def write_dressed_parsing(comfy_node_registry) -> None:
    """``DRESSED_PARSING`` in ComfyUI's input dir (square, like the test's dressed person)."""
    write_lip_parsing(Path(comfy_node_registry.input_dir) / DRESSED_PARSING, PARSING_REGIONS, PARSING_SIDE, PARSING_SIDE)


ASSETS: dict = {
    TRUEPOSE_WEIGHTS: write_untrained_truepose,
    UNET_LORA: write_unet_lora,
    TARGET_POSE: write_target_pose,
    SOURCE_PARSING: write_source_parsing,
    DRESSED_PARSING: write_dressed_parsing,
}
