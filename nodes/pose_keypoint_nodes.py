"""Load Pose Keypoints: a POSE_KEYPOINT (the type comfyui_controlnet_aux's pose preprocessors output)
from a JSON file in ComfyUI's input folder, so target poses can be kept, shared and edited as files.

Accepted files: a POSE_KEYPOINT list of frames as controlnet_aux's "Save Pose Keypoints" writes it
(``[{"canvas_width", "canvas_height", "people": [{"pose_keypoints_2d": [...]}]}]``), one such frame
dict, or one OpenPose ``*_keypoints.json`` (no canvas size: the width/height inputs give it).
"""

from __future__ import annotations

import json
from pathlib import Path

import folder_paths
import numpy as np
import torch
from comfy_api.latest import io

from ..models.errors import ReferenceInputError
from ..models.pose import PoseError, read_pose_keypoint, render_skeleton
from .truepose_nodes import CATEGORY, PoseKeypointType


def pose_files() -> list[str]:
    """JSON files in ComfyUI's input folder (sub-folders included), sorted."""
    root = Path(folder_paths.get_input_directory())
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.json")) if root.is_dir() else []


def read_pose_frames(data, width: int, height: int, file_name: str) -> list[dict]:
    """The file's content as POSE_KEYPOINT frames, each with a canvas size."""
    frames = data if isinstance(data, list) else [data]
    if not frames or not all(isinstance(frame, dict) for frame in frames):
        raise ReferenceInputError(f"'pose_file' ({file_name}) holds no pose frame; expected a POSE_KEYPOINT list or an OpenPose JSON")
    return [{**frame, "canvas_width": frame.get("canvas_width", width), "canvas_height": frame.get("canvas_height", height)}
            for frame in frames]


def skeleton_image(frame: dict, index: int, file_name: str) -> np.ndarray:
    """(H, W, 3) uint8 OpenPose drawing of every person in ``frame``."""
    try:
        poses = [read_pose_keypoint(frame, person=person, min_visible=0) for person in range(len(frame.get("people") or []))]
    except PoseError as error:
        raise ReferenceInputError(f"'pose_file' ({file_name}) frame {index}: {error}") from error
    return render_skeleton(poses, int(frame["canvas_width"]), int(frame["canvas_height"]))


class LoadPoseKeypointNode(io.ComfyNode):
    """JSON file -> POSE_KEYPOINT and its skeleton IMAGE."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierLoadPoseKeypoint",
            display_name="Atelier Load Pose Keypoints",
            category=CATEGORY,
            description="Loads target poses from a JSON file in ComfyUI's input folder: a POSE_KEYPOINT list (as "
            "comfyui_controlnet_aux's Save Pose Keypoints writes it) or an OpenPose keypoints file. Outputs the "
            "POSE_KEYPOINT and its OpenPose drawing.",
            inputs=[
                io.Combo.Input("pose_file", options=pose_files(), tooltip="A .json pose file in ComfyUI's input folder."),
                io.Int.Input("width", default=352, min=64, max=4096, step=8,
                             tooltip="Canvas width, used only when the file has none (OpenPose JSON)."),
                io.Int.Input("height", default=512, min=64, max=4096, step=8,
                             tooltip="Canvas height, used only when the file has none (OpenPose JSON)."),
            ],
            outputs=[PoseKeypointType.Output("pose_keypoint", display_name="pose_keypoint"),
                     io.Image.Output(display_name="skeleton")],
        )

    @classmethod
    def validate_inputs(cls, pose_file=None) -> bool | str:
        if pose_file is not None and pose_file not in pose_files():
            return f"'pose_file' is '{pose_file}', which is not a .json file in ComfyUI's input folder"
        return True

    @classmethod
    def execute(cls, pose_file: str, width: int, height: int) -> io.NodeOutput:
        path = Path(folder_paths.get_input_directory()) / pose_file
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise FileNotFoundError(f"'pose_file' {pose_file} is not in ComfyUI's input folder") from error
        except json.JSONDecodeError as error:
            raise ReferenceInputError(f"'pose_file' {pose_file} is not valid JSON: {error}") from error
        frames = read_pose_frames(data, width, height, pose_file)
        images = [skeleton_image(frame, index, pose_file) for index, frame in enumerate(frames)]
        if len({image.shape for image in images}) > 1:
            raise ReferenceInputError(f"'pose_file' {pose_file} has frames of different canvas sizes; use one size")
        skeleton = torch.from_numpy(np.stack(images)).float() / 255.0  # (F, H, W, 3)
        return io.NodeOutput(frames, skeleton)


NODES: tuple[type[io.ComfyNode], ...] = (LoadPoseKeypointNode,)
