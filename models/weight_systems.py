"""Every system that has a weight file, in one registry (later systems add their spec here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from .anydressing.spec import ANYDRESSING
from .igr.spec import IGR
from .outfitgan.spec import OUTFITGAN
from .reference_projections import ReferenceProjections
from .sites import SITE_GROUPS
from .truepose.spec import TRUEPOSE
from .weight_format import BaseModel, SystemSpec


@dataclass(frozen=True)
class ReferenceProjectionConfig:
    """Config of a "reference" weight file: learned W'k, W'v for the CROSS read mode."""

    sites: tuple[str, ...] = SITE_GROUPS["all"]

    @classmethod
    def from_dict(cls, data: dict) -> "ReferenceProjectionConfig":
        return cls(sites=tuple(data.get("sites", SITE_GROUPS["all"])))


def _build_reference(config: dict, base: BaseModel) -> dict[str, nn.Module]:
    parsed = ReferenceProjectionConfig.from_dict(config)
    return {"projections": ReferenceProjections.for_sd15(base.model_channels, parsed.sites)}


def _default_reference_config(base: BaseModel) -> dict:
    config = asdict(ReferenceProjectionConfig())
    config["sites"] = list(config["sites"])
    return config


REFERENCE = SystemSpec(
    name="reference",
    prefixes={"projections": "reference_proj."},
    signature={"projections": "to_k.middle_0.weight"},
    build=_build_reference,
    default_config=_default_reference_config,
)

SYSTEMS: tuple[SystemSpec, ...] = (REFERENCE, OUTFITGAN, ANYDRESSING, IGR, TRUEPOSE)


def system_named(name: str) -> SystemSpec | None:
    """The spec of system ``name``, or None."""
    return next((spec for spec in SYSTEMS if spec.name == name), None)
