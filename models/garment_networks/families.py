"""Which public garment network a file holds, and that file read into what Atelier's nodes need.

Each family module (imagdressing.py, magic_clothing.py, stable_garment.py) knows its published key
layout; this module recognises the family from the keys, never from the file name, and returns a
``GarmentNetwork``: the garment UNet in diffusers key names plus how the denoiser reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from safetensors.torch import save_file

from ..errors import WeightFileError
from .files import read_tensors
from .imagdressing_network import IMAGDRESSING
from .magic_clothing_network import MAGIC_CLOTHING
from .network import Family, GarmentNetwork
from .stable_garment import matches_config as is_stable_garment_config
from .stable_garment_network import STABLE_GARMENT

FAMILIES: tuple[Family, ...] = (IMAGDRESSING, MAGIC_CLOTHING, STABLE_GARMENT)
CONFIG_FILE = "config.json"  # a diffusers model folder's config, beside its weight file


def describe(keys: Iterable[str]) -> str:
    """The family a key set belongs to, for error messages ("unknown" when none matches)."""
    keys = list(keys)
    for family in FAMILIES:
        if family.matches(keys):
            return family.display_name
    if any(key.startswith("model.diffusion_model.") for key in keys):
        return "a full SD checkpoint (load it with Load Checkpoint)"
    if any(key.startswith(("image_proj.", "ip_adapter.")) for key in keys):
        return "an IP-Adapter file"
    return f"an unknown layout (first keys: {sorted(keys)[:3]})"


def family_of(keys: Iterable[str], source: str) -> Family:
    """The family module whose published layout ``keys`` match; the error names the file."""
    keys = list(keys)
    found = [family for family in FAMILIES if family.matches(keys)]
    if len(found) != 1:
        names = ", ".join(family.display_name for family in FAMILIES)
        raise WeightFileError(
            f"{os.path.basename(source)} is not a garment network Atelier knows ({names}); it looks like "
            f"{describe(keys) if not found else ' and '.join(f.display_name for f in found)}"
        )
    return found[0]


def read_garment_network(path: str, expected: str | None = None) -> GarmentNetwork:
    """Read a published (or converted) garment network file.

    Args:
        path: a ``.safetensors``, or a pickled ``.pt``/``.pth``/``.bin`` read with ``weights_only=True``.
        expected: a family id the caller needs; another family raises, naming both.
    """
    state = read_tensors(path)
    family = STABLE_GARMENT if folder_config_is_stable_garment(path) else family_of(state.keys(), path)
    if expected is not None and family.name != expected:
        raise WeightFileError(f"{os.path.basename(path)} holds {family.display_name}, but {expected} was expected")
    return family.read(state, path)


def folder_config_is_stable_garment(path: str) -> bool:
    """Whether the ``config.json`` beside ``path`` names StableGarment's ``GarmentEncoderModel``: a
    garment encoder saved whole has a plain UNet's keys (like MagicClothing's), so only its diffusers
    folder tells. An absent or unreadable config says nothing."""
    config_path = os.path.join(os.path.dirname(os.path.abspath(path)), CONFIG_FILE)
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and is_stable_garment_config(config)


def convert_to_safetensors(path: str, target: str) -> str:
    """Write the tensors a garment network file's loader uses as ``target`` (safetensors), once, so
    later loads are fast and pickle-free; returns the family's display name."""
    state = read_tensors(path)
    family = family_of(state.keys(), path)
    tensors = {key: value.detach().contiguous().clone() for key, value in family.converted(state, path).items()}
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    save_file(tensors, target, metadata={"atelier.family": family.name, "atelier.source": os.path.basename(path)})
    return family.display_name
