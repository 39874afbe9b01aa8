"""The Atelier weight-file format: one safetensors file per trained system.

Layout (defined here once; train/ writes it, nodes/ reads it):
- metadata: ``atelier.format_version``, ``atelier.system`` (e.g. "reference"), ``atelier.base_model``
  (base family and size as JSON, e.g. {"family": "sd15", "model_channels": 320, "context_dim": 768}),
  ``atelier.config`` (the system's config dataclass as JSON);
- tensors: ``<component prefix><module state_dict key>``, one prefix per component.
A file without metadata is still recognised by its key signatures (a converted file, say).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn

FORMAT_VERSION = 1
META_FORMAT_VERSION = "atelier.format_version"
META_SYSTEM = "atelier.system"
META_BASE_MODEL = "atelier.base_model"
META_CONFIG = "atelier.config"


@dataclass(frozen=True)
class BaseModel:
    """The base model a weight file was made for: family and the sizes that decide tensor shapes."""

    family: str = "sd15"
    model_channels: int = 320
    context_dim: int = 768

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BaseModel":
        return cls(**json.loads(text))


SD15 = BaseModel()


@dataclass(frozen=True)
class SystemSpec:
    """How one system's weight file is built.

    Args:
        name: the system id written to metadata (``"reference"``, ``"anydressing"`` …).
        prefixes: component name -> key prefix (ends with ".").
        signature: a key suffix per component that only this system's files contain; used to
            recognise files without metadata.
        build: (config dict, base model) -> {component name: nn.Module} with the right shapes.
        default_config: (base model) -> config dict for an initialised, untrained file.
    """

    name: str
    prefixes: Mapping[str, str]
    signature: Mapping[str, str]
    build: Callable[[dict, BaseModel], dict[str, nn.Module]]
    default_config: Callable[[BaseModel], dict]


def flatten_components(spec: SystemSpec, modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """All tensors of ``modules`` under their component prefixes, contiguous and on the CPU."""
    tensors: dict[str, torch.Tensor] = {}
    for component, module in modules.items():
        prefix = spec.prefixes[component]
        for key, value in module.state_dict().items():
            tensors[prefix + key] = value.detach().to("cpu").contiguous()
    return tensors


def metadata_for(spec: SystemSpec, base: BaseModel, config: dict) -> dict[str, str]:
    """The metadata block of a file of ``spec`` for ``base`` with ``config``."""
    return {
        META_FORMAT_VERSION: str(FORMAT_VERSION),
        META_SYSTEM: spec.name,
        META_BASE_MODEL: base.to_json(),
        META_CONFIG: json.dumps(config, sort_keys=True),
    }
