"""Node-side loading of Atelier weight files from the pack's model folder."""

from __future__ import annotations

import comfy.model_management
import comfy.model_patcher
import folder_paths
from safetensors import SafetensorError, safe_open
from torch import nn

from ..models.errors import WeightFileError
from ..models.weight_format import BaseModel
from ..models.weights import WeightFile, load_weight_file, recognise_system
from .folders import FOLDER_NAME


def weight_file_names() -> list[str]:
    """Files in ``models/atelier/`` (and extra paths), for a loader node's combo."""
    return folder_paths.get_filename_list(FOLDER_NAME)


def system_file_names(system: str) -> list[str]:
    """Files in ``models/atelier/`` that are ``system`` weight files (by metadata or key signature;
    only the safetensors header is read). Unreadable files and other systems' files are left out."""
    names = []
    for name in weight_file_names():
        path = folder_paths.get_full_path(FOLDER_NAME, name)
        if path is None:  # listed by a stale folder cache but gone
            continue
        try:
            with safe_open(path, framework="pt") as handle:
                if recognise_system(handle.metadata() or {}, set(handle.keys())).name == system:
                    names.append(name)
        except (OSError, SafetensorError, WeightFileError):
            continue
    return names


def load_atelier_weights(file_name: str, system: str, base: BaseModel | None = None) -> WeightFile:
    """Resolve ``file_name`` in the pack folder and load it as a ``system`` file (checked against ``base``)."""
    path = folder_paths.get_full_path_or_raise(FOLDER_NAME, file_name)
    return load_weight_file(path, expected_system=system, expected_base=base)


def managed_module(module: nn.Module) -> comfy.model_patcher.ModelPatcher:
    """Wrap a module in a ModelPatcher so ComfyUI loads and offloads it with the UNet
    (attach it with ``set_additional_models``)."""
    return comfy.model_patcher.ModelPatcher(
        module,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
    )
