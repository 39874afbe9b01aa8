"""What a reference-attention application does: read mode, strengths, schedule, CFG policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .errors import ReferenceInputError
from .sites import SITE_GROUPS, SITES_BY_NAME, AttentionSite


class ReadMode(str, Enum):
    """How the denoiser's self-attention reads the bank.

    ``CONCAT``: the bank's tokens join the layer's own keys/values in one softmax (reference-only
    style); strength s multiplies the reference tokens' attention mass (a log(s) logit bias).
    ``CROSS``: a separate attention from the denoiser's queries to the bank, added with weight λ:
    ``Z = Softmax(QKᵀ/√d)V + λ·Softmax(QK'ᵀ/√d)V'`` (AnyDressing eq. 6; TruePose's fusion).
    """

    CONCAT = "concat"
    CROSS = "cross"


class UncondPolicy(str, Enum):
    """What the unconditional CFG chunk sees: the same reference as the conditional one, none, or
    ``ZERO``: as many reference tokens, all zero (MagicClothing's CFG reads ``zeros_like`` garment
    features; with SD1.5's bias-free to_k/to_v they are zero keys and values that still take
    attention mass in a concat read)."""

    SAME = "same"
    NONE = "none"
    ZERO = "zero"


class Refresh(str, Enum):
    """When the bank is written: once per sampling run on the clean reference (t = 0), or at every
    UNet call on the reference noised to the current sigma (fixed noise per run)."""

    ONCE = "once"
    EVERY_STEP = "every_step"


class ReferenceSize(str, Enum):
    """What happens when the reference latent's size differs from the sampled latent's.

    ``AS_IS``: keep the reference's own token grid (attention does not need equal token counts).
    ``RESIZE_TO_LATENT``: resize the encoded reference bilinearly, in latent space, to the sampled
    latent's size at the start of the run, so both share one token grid.
    """

    AS_IS = "as_is"
    RESIZE_TO_LATENT = "resize_to_latent"


def _all_sites() -> dict[str, float]:
    return {name: 1.0 for name in SITE_GROUPS["all"]}


@dataclass(frozen=True)
class ReferenceConfig:
    """One reference-attention application.

    Args:
        mode: how the bank is read (see ReadMode).
        strength: global strength; per-site strength is ``strength * site_weights[site]``; a site
            absent from ``site_weights`` (or with weight 0) is not touched at all.
        site_weights: per-site weights keyed by site name (``"input_1"`` …).
        start_percent, end_percent: part of the schedule (0 = first step, 1 = last) where the
            reference is read; outside it the model runs unpatched.
        uncond: what the unconditional CFG chunk sees.
        refresh: when the bank is written.
        reference_size: policy for a reference whose size differs from the latent.
    """

    mode: ReadMode = ReadMode.CONCAT
    strength: float = 1.0
    site_weights: dict[str, float] = field(default_factory=_all_sites)
    start_percent: float = 0.0
    end_percent: float = 1.0
    uncond: UncondPolicy = UncondPolicy.SAME
    refresh: Refresh = Refresh.ONCE
    reference_size: ReferenceSize = ReferenceSize.AS_IS

    def __post_init__(self) -> None:
        if self.strength < 0:
            raise ReferenceInputError(f"strength must be >= 0, got {self.strength}")
        if not 0.0 <= self.start_percent <= self.end_percent <= 1.0:
            raise ReferenceInputError(
                f"need 0 <= start_percent <= end_percent <= 1, got start {self.start_percent}, "
                f"end {self.end_percent}"
            )
        unknown = [name for name in self.site_weights if name not in SITES_BY_NAME]
        if unknown:
            raise ReferenceInputError(f"unknown site names {unknown}; valid: {list(SITES_BY_NAME)}")
        negative = {name: w for name, w in self.site_weights.items() if w < 0}
        if negative:
            raise ReferenceInputError(f"site weights must be >= 0, got {negative}")

    @classmethod
    def for_group(cls, group: str, **kwargs) -> "ReferenceConfig":
        """A config whose sites are one of SITE_GROUPS (``"all"``, ``"input"`` …), each weight 1."""
        if group not in SITE_GROUPS:
            raise ReferenceInputError(f"unknown site group {group!r}; choose one of {list(SITE_GROUPS)}")
        return cls(site_weights={name: 1.0 for name in SITE_GROUPS[group]}, **kwargs)

    def strength_at(self, site: AttentionSite) -> float:
        """Effective strength at a site; 0 means the site runs exactly as unpatched."""
        return self.strength * self.site_weights.get(site.name, 0.0)

    @property
    def enabled_site_names(self) -> tuple[str, ...]:
        """Names of sites with a non-zero weight, in call order."""
        return tuple(name for name in SITE_GROUPS["all"] if self.site_weights.get(name, 0.0) > 0)


CHOICES: dict[str, tuple[str, ...]] = {
    "mode": tuple(m.value for m in ReadMode),
    "uncond": tuple(p.value for p in UncondPolicy),
    "refresh": tuple(r.value for r in Refresh),
    "reference_size": tuple(s.value for s in ReferenceSize),
    "sites": tuple(SITE_GROUPS),
}

