"""Moore-AnimateAnyone's stage-1 files (patrolli/AnimateAnyone: ``reference_unet.pth``,
``denoising_unet.pth``, ``pose_guider.pth``) recognised from their keys and converted for Atelier.

The published files are pickled flat state dicts (``torch.save(model.state_dict())``):

- ``reference_unet.pth``: the public ``src/models/unet_2d_condition.py`` UNet2DConditionModel, a
  copy of diffusers' whose ``conv_norm_out`` is set to None and whose ``conv_out`` is commented out,
  so the file has every SD1.5 diffusers key except those four. Only its attn1 inputs are used (the
  ReferenceAttentionControl "write"), so ``complete_reference_unet`` fills the four with an identity
  GroupNorm and a zero conv (the public code has no such layers and never computes the output;
  these never change the banked features) to make a complete SD1.5 UNet for ComfyUI.
- ``denoising_unet.pth``: the public ``UNet3DConditionModel`` built ``from_pretrained_2d`` without
  motion modules in stage 1; its InflatedConv3d / Transformer3DModel keep diffusers' 2-D key names,
  so the file is a complete SD1.5 diffusers UNet. Any ``motion_modules.*`` keys (a stage-2 save)
  are dropped: this is the still-image path.
- ``pose_guider.pth``: a PoseGuider (pose_guider.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from enum import Enum

import torch
from safetensors.torch import save_file

from ..errors import WeightFileError
from ..garment_networks.files import read_tensors
from ..garment_networks.sd15_layout import sd15_diffusers_unet_keys
from ..log import logger
from .pose_guider import PoseGuider, is_pose_guider_state, pose_guider_from_state

UNET_MARKER = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"
OUTPUT_KEYS = ("conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias")
MOTION_PREFIX = "motion_modules."
FAMILY = "animate_anyone"


class AnimateAnyoneFile(str, Enum):
    """Which of the three stage-1 files a key set is."""

    REFERENCE_UNET = "reference_unet"
    DENOISING_UNET = "denoising_unet"
    POSE_GUIDER = "pose_guider"


def _is_motion_key(key: str) -> bool:
    return f".{MOTION_PREFIX}" in f".{key}"


def file_kind(keys: Iterable[str]) -> AnimateAnyoneFile | None:
    """The stage-1 file a key set belongs to, or None: a UNet without ``conv_out`` is the reference UNet."""
    keys = set(keys)
    if is_pose_guider_state(keys):
        return AnimateAnyoneFile.POSE_GUIDER
    if UNET_MARKER in keys and "conv_in.weight" in keys:
        return AnimateAnyoneFile.DENOISING_UNET if "conv_out.weight" in keys else AnimateAnyoneFile.REFERENCE_UNET
    return None


def expect_kind(state: dict[str, torch.Tensor], source: str, expected: AnimateAnyoneFile, input_name: str) -> None:
    """Raise naming the file and the node input when ``state`` is not the ``expected`` stage-1 file."""
    found = file_kind(state)
    if found == expected:
        return
    name = os.path.basename(source)
    what = "is not an AnimateAnyone stage-1 file" if found is None else f"holds AnimateAnyone's {found.value}"
    raise WeightFileError(f"'{input_name}' is {name}, which {what}; pick AnimateAnyone's {expected.value} file")


def _check_unet_keys(state: dict[str, torch.Tensor], source: str, role: str) -> None:
    required = sd15_diffusers_unet_keys()
    missing = sorted(required - set(state))
    extra = sorted(set(state) - required)
    if missing:
        raise WeightFileError(f"{os.path.basename(source)}: the {role} misses {len(missing)} key(s), e.g. {missing[:3]}; "
                              "the file is truncated or not AnimateAnyone's")
    if extra:
        raise WeightFileError(f"{os.path.basename(source)}: the {role} has {len(extra)} unknown key(s), e.g. {extra[:3]}")


def complete_reference_unet(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The reference UNet as a complete SD1.5 diffusers state dict (the output layers filled, see above)."""
    present = [key for key in OUTPUT_KEYS if key in state]
    if present:
        raise WeightFileError(f"{os.path.basename(source)}: a reference UNet has no {present[0]!r}; this is a denoising UNet")
    width = int(state["conv_in.weight"].shape[0])  # conv_norm_out / conv_out run at conv_in's width
    channels = int(state["conv_in.weight"].shape[1])
    like = state["conv_in.weight"]
    filled = dict(state)
    filled["conv_norm_out.weight"] = torch.ones(width, dtype=like.dtype)
    filled["conv_norm_out.bias"] = torch.zeros(width, dtype=like.dtype)
    filled["conv_out.weight"] = torch.zeros(channels, width, 3, 3, dtype=like.dtype)  # (4, C, 3, 3)
    filled["conv_out.bias"] = torch.zeros(channels, dtype=like.dtype)
    _check_unet_keys(filled, source, "reference UNet")
    return filled


def denoising_unet_state(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The denoising UNet's 2-D diffusers state dict (motion modules, if saved with it, dropped)."""
    motion = [key for key in state if _is_motion_key(key)]
    if motion:
        logger.info("%s: dropping %d motion-module tensors (the still-image path does not use them)",
                    os.path.basename(source), len(motion))
    kept = {key: value for key, value in state.items() if not _is_motion_key(key)}
    _check_unet_keys(kept, source, "denoising UNet")
    return kept


def read_reference_unet(path: str, input_name: str = "reference_unet") -> dict[str, torch.Tensor]:
    """``reference_unet.pth`` (or its safetensors conversion) as a complete diffusers UNet state dict."""
    state = read_tensors(path)
    expect_kind(state, path, AnimateAnyoneFile.REFERENCE_UNET, input_name)
    return complete_reference_unet(state, path)


def read_denoising_unet(path: str, input_name: str = "denoising_unet") -> dict[str, torch.Tensor]:
    """``denoising_unet.pth`` (or its safetensors conversion) as a diffusers UNet state dict."""
    state = read_tensors(path)
    expect_kind(state, path, AnimateAnyoneFile.DENOISING_UNET, input_name)
    return denoising_unet_state(state, path)


def read_pose_guider(path: str, input_name: str = "pose_guider") -> PoseGuider:
    """``pose_guider.pth`` (or its safetensors conversion) as a PoseGuider module."""
    state = read_tensors(path)
    expect_kind(state, path, AnimateAnyoneFile.POSE_GUIDER, input_name)
    return pose_guider_from_state(state, path)


def convert_to_safetensors(path: str, target: str) -> AnimateAnyoneFile:
    """Write a stage-1 file's tensors, keys unchanged (so it is recognised again), as safetensors once."""
    state = read_tensors(path)
    kind = file_kind(state)
    if kind is None:
        raise WeightFileError(f"{os.path.basename(path)} is not one of AnimateAnyone's stage-1 files")
    if kind == AnimateAnyoneFile.DENOISING_UNET:
        state = {key: value for key, value in state.items() if not _is_motion_key(key)}
    tensors = {key: value.detach().contiguous().clone() for key, value in state.items()}
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    save_file(tensors, target, metadata={"atelier.family": f"{FAMILY}.{kind.value}", "atelier.source": os.path.basename(path)})
    return kind
