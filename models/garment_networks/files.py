"""Reading a published garment network file: safetensors, or a pickle read with ``weights_only=True``."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from safetensors.torch import load_file

from ..errors import WeightFileError

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def unwrap_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The flat tensor dict of a loaded file: ``{"module": …}`` (DeepSpeed), ``{"state_dict": …}`` or
    already flat; a ``module.`` prefix on every key (a flattened DeepSpeed dict) is removed too."""
    for wrapper in ("module", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise WeightFileError(f"{os.path.basename(source)} holds a {type(obj).__name__}, not a state dict")
    state = {key: value for key, value in obj.items() if isinstance(value, torch.Tensor)}
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return state


def read_tensors(path: str) -> dict[str, torch.Tensor]:
    """Every tensor of ``path`` on the CPU; a pickle is read only with ``torch.load(weights_only=True)``."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise WeightFileError(f"garment network file {path} does not exist")
    if path.endswith(".safetensors"):
        try:
            return unwrap_state_dict(load_file(path, device="cpu"), path)
        except Exception as error:  # any parse failure is a damaged or truncated file
            raise WeightFileError(f"{name} is not a readable safetensors file ({error}); download it again") from error
    if not path.endswith(PICKLE_SUFFIXES):
        raise WeightFileError(f"{name}: garment network files are .safetensors or {', '.join(PICKLE_SUFFIXES)}")
    try:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) pickles cannot be memory-mapped
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightFileError(
            f"{name} could not be read with torch.load(weights_only=True) ({error}); the file is truncated, "
            f"damaged, or pickles more than tensors"
        ) from error
    return unwrap_state_dict(loaded, path)
