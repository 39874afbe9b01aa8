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


def file_system(name: str) -> str | None:
    """The Atelier system of a file in ``models/atelier/`` (by metadata or key signature; only the
    safetensors header is read), or None for unreadable files, pickles and other files."""
    path = folder_paths.get_full_path(FOLDER_NAME, name)
    if path is None or not name.endswith(".safetensors"):  # gone since the folder was listed, or not ours
        return None
    try:
        with safe_open(path, framework="pt") as handle:
            return recognise_system(handle.metadata() or {}, set(handle.keys())).name
    except (OSError, SafetensorError, WeightFileError):
        return None


def system_file_names(system: str) -> list[str]:
    """Files in ``models/atelier/`` that are ``system`` weight files; other files are left out."""
    return [name for name in weight_file_names() if file_system(name) == system]


def foreign_file_names(suffixes: tuple[str, ...]) -> list[str]:
    """Files in ``models/atelier/`` ending in ``suffixes`` that are not Atelier weight files
    (downloaded public networks, recognised from their keys only when loaded)."""
    return [name for name in weight_file_names() if name.endswith(suffixes) and file_system(name) is None]


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
