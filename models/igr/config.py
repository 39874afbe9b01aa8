"""What an IGR weight file holds: GarmNet's LoRA size, the IP-Adapter widths, the GarmFus sites."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import ReferenceInputError
from ..sites import SITE_GROUPS, SITES_BY_NAME

IGR_CATEGORIES: tuple[str, ...] = ("upper", "lower", "dress")

# The paper uses "three different prompts corresponding to categories: upper, lower and full body"
# without printing them; these are ours. Training and inference must use the same text.
CATEGORY_PROMPTS: dict[str, str] = {
    "upper": "a flat product photo of an upper-body garment on a plain background",
    "lower": "a flat product photo of a lower-body garment on a plain background",
    "dress": "a flat product photo of a full-body garment on a plain background",
}

# The paper's default guidance scale (Table 3).
PAPER_GUIDANCE = 1.5


class IGRConfigError(ReferenceInputError):
    """An IGR config (or the config block of an IGR weight file) has a bad field."""


def category_prompt(category: str) -> str:
    """The text condition of ``category``; the error lists the known categories."""
    try:
        return CATEGORY_PROMPTS[category]
    except KeyError:
        raise IGRConfigError(f"unknown garment category {category!r}; use one of {list(IGR_CATEGORIES)}") from None


@dataclass(frozen=True)
class IGRConfig:
    """Settings of one IGR model.

    Args:
        sites: GarmFus sites: attn1 carries GarmNet's LoRA and the high-level read, attn2 the
            IP-Adapter's decoupled cross-attention (default: all 16 of SD1.5).
        garmnet_rank, garmnet_alpha: rank r and alpha of GarmNet's attn1 q/k/v LoRA (scale alpha / r).
        ip_tokens: N, the IP-Adapter's image tokens (4 in ip-adapter_sd15).
        image_embed_dim: E, width of the CLIP image embedding (1024 for ViT-H/14).
        high_level, low_level: which paths the file was trained with (ablations of Table 2).
    """

    sites: tuple[str, ...] = SITE_GROUPS["all"]
    garmnet_rank: int = 16
    garmnet_alpha: float = 16.0
    ip_tokens: int = 4
    image_embed_dim: int = 1024
    high_level: bool = True
    low_level: bool = True

    def __post_init__(self) -> None:
        unknown = [name for name in self.sites if name not in SITES_BY_NAME]
        if unknown or not self.sites:
            raise IGRConfigError(f"IGRConfig.sites has unknown names {unknown}; valid: {list(SITES_BY_NAME)}")
        for name in ("garmnet_rank", "ip_tokens", "image_embed_dim"):
            if getattr(self, name) < 1:
                raise IGRConfigError(f"IGRConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.garmnet_alpha <= 0:
            raise IGRConfigError(f"IGRConfig.garmnet_alpha must be > 0, got {self.garmnet_alpha}")
        if not (self.high_level or self.low_level):
            raise IGRConfigError("IGRConfig needs high_level or low_level (or both) to be true")

    @property
    def scale(self) -> float:
        """GarmNet's LoRA scale alpha / r."""
        return self.garmnet_alpha / self.garmnet_rank

    def to_dict(self) -> dict:
        """The config as JSON-ready data (the ``atelier.config`` block of a weight file)."""
        data = asdict(self)
        data["sites"] = list(self.sites)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> IGRConfig:
        """Parse ``data`` (missing fields take defaults); errors name the field to fix."""
        known = {field.name: field for field in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise IGRConfigError(f"IGR config has unknown field(s) {unknown}; known: {sorted(known)}")
        kinds = {"sites": tuple, "garmnet_rank": int, "garmnet_alpha": float, "ip_tokens": int,
                 "image_embed_dim": int, "high_level": bool, "low_level": bool}
        parsed = {}
        for name, value in data.items():
            kind = kinds[name]
            if kind is tuple and (isinstance(value, str) or not isinstance(value, list | tuple)):
                raise IGRConfigError(f"IGR config field 'sites' must be a list of site names, got {value!r}")
            if kind is bool and not isinstance(value, bool):
                raise IGRConfigError(f"IGR config field {name!r} must be true or false, got {value!r}")
            if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise IGRConfigError(f"IGR config field {name!r} must be a number, got {value!r}")
            if kind is int and value != int(value):
                raise IGRConfigError(f"IGR config field {name!r} must be an integer, got {value!r}")
            parsed[name] = kind(value)
        return cls(**parsed)
