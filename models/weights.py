"""Saving, loading and recognising Atelier weight files (format in weight_format.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .errors import WeightFileError
from .log import logger
from .weight_format import (
    FORMAT_VERSION,
    META_BASE_MODEL,
    META_CONFIG,
    META_FORMAT_VERSION,
    META_SYSTEM,
    BaseModel,
    SystemSpec,
    flatten_components,
    metadata_for,
)
from .weight_systems import SYSTEMS, system_named

UNTRAINED_SEED = 0


@dataclass
class WeightFile:
    """A loaded weight file: which system, for which base model, its config and built modules."""

    path: str
    system: str
    base: BaseModel
    config: dict
    modules: dict[str, nn.Module]


def save_weight_file(path: str, spec: SystemSpec, base: BaseModel, config: dict, modules: Mapping[str, nn.Module]) -> None:
    """Write ``modules`` (component name -> module) as a weight file of ``spec``."""
    missing = set(spec.prefixes) - set(modules)
    if missing:
        raise WeightFileError(f"cannot save a '{spec.name}' file without component(s) {sorted(missing)}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    save_file(flatten_components(spec, modules), path, metadata=metadata_for(spec, base, config))
    logger.info("wrote %s weight file %s", spec.name, path)


def export_untrained(path: str, spec: SystemSpec, base: BaseModel, config: dict | None = None) -> None:
    """Write an initialised, untrained file of ``spec`` for ``base`` (seeded; for smoke tests)."""
    config = spec.default_config(base) if config is None else config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        modules = spec.build(config, base)
    save_weight_file(path, spec, base, config, modules)


def _read(path: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if not os.path.isfile(path):
        raise WeightFileError(f"weight file {path} does not exist")
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:
        raise WeightFileError(f"{path} is not a readable safetensors file ({error})") from error
    return metadata, tensors


def recognise_system(metadata: Mapping[str, str], keys: set[str]) -> SystemSpec:
    """The system of a file, from its metadata and, as a cross-check or fallback, its keys."""
    by_keys = [
        spec for spec in SYSTEMS
        if all(any(k.startswith(spec.prefixes[c]) and k.endswith(suffix) for k in keys) for c, suffix in spec.signature.items())
    ]
    declared = metadata.get(META_SYSTEM)
    if declared is not None:
        spec = system_named(declared)
        if spec is None:
            raise WeightFileError(
                f"the file declares system '{declared}', which this version of Atelier does not know "
                f"(known: {[s.name for s in SYSTEMS]}); update Atelier"
            )
        if spec not in by_keys:
            raise WeightFileError(f"the file declares system '{declared}' but lacks its keys; the file is damaged")
        return spec
    if len(by_keys) != 1:
        raise WeightFileError(
            "not an Atelier weight file: no Atelier metadata and its keys match "
            f"{'no' if not by_keys else 'several'} Atelier systems"
        )
    return by_keys[0]


def _check_and_split(spec: SystemSpec, modules: Mapping[str, nn.Module], tensors: Mapping[str, torch.Tensor], path: str) -> dict[str, dict[str, torch.Tensor]]:
    """Per-component state dicts, after checking every expected key exists with the right shape."""
    expected = {spec.prefixes[c] + key: value for c, module in modules.items() for key, value in module.state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        raise WeightFileError(f"{path}: {len(missing)} missing key(s), e.g. {missing[:5]}")
    if unexpected:
        raise WeightFileError(f"{path}: {len(unexpected)} unexpected key(s), e.g. {unexpected[:5]}")
    wrong = [(k, tuple(expected[k].shape), tuple(tensors[k].shape)) for k in expected if expected[k].shape != tensors[k].shape]
    if wrong:
        key, want, got = wrong[0]
        raise WeightFileError(
            f"{path}: {len(wrong)} tensor(s) have the wrong shape, e.g. {key} is {got}, expected {want}; "
            f"the file was made for another base model size"
        )
    return {
        c: {k[len(spec.prefixes[c]):]: v for k, v in tensors.items() if k.startswith(spec.prefixes[c])}
        for c in modules
    }


def describe_file(metadata: Mapping[str, str], keys: set[str]) -> str:
    """What a safetensors file is, for an error message: "an Atelier 'outfitgan' weight file" or "not
    an Atelier weight file (N tensors, e.g. KEY)"."""
    try:
        return f"an Atelier '{recognise_system(metadata, keys).name}' weight file"
    except WeightFileError:
        example = min(keys) if keys else "none"
        return f"not an Atelier weight file ({len(keys)} tensors, e.g. {example!r})"


def load_weight_file(path: str, expected_system: str | None = None, expected_base: BaseModel | None = None,
                     needed_by: str = "this node") -> WeightFile:
    """Load and check a weight file; errors name the file and what is wrong with it. ``needed_by``
    names who asked for ``expected_system`` in that message (a node, or a command-line flag)."""
    metadata, tensors = _read(path)
    version = int(metadata.get(META_FORMAT_VERSION, FORMAT_VERSION))
    if version > FORMAT_VERSION:
        raise WeightFileError(f"{path} has format version {version}; this Atelier reads up to {FORMAT_VERSION}, update it")
    spec = recognise_system(metadata, set(tensors))
    if expected_system is not None and spec.name != expected_system:
        raise WeightFileError(f"{path} is a '{spec.name}' weight file; {needed_by} needs a '{expected_system}' file")
    base = BaseModel.from_json(metadata[META_BASE_MODEL]) if META_BASE_MODEL in metadata else (expected_base or BaseModel())
    if expected_base is not None and base != expected_base:
        raise WeightFileError(
            f"{path} was made for {base.family} with model_channels {base.model_channels}, context_dim "
            f"{base.context_dim}; the connected model has model_channels {expected_base.model_channels}, "
            f"context_dim {expected_base.context_dim}"
        )
    config = json.loads(metadata[META_CONFIG]) if META_CONFIG in metadata else spec.default_config(base)
    modules = spec.build(config, base)
    for component, state in _check_and_split(spec, modules, tensors, path).items():
        modules[component].load_state_dict(state, strict=True)
    return WeightFile(path=path, system=spec.name, base=base, config=config, modules=modules)
