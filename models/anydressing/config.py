"""What an AnyDressing weight file holds: garment slots, GFE LoRA size and the Dressing-Attention sites."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ReferenceInputError
from ..sites import SITE_GROUPS, SITES_BY_NAME

# LoRA slots map to garment categories, not to input positions: a garment's category picks its
# ΔŴ_i (eq. 3), so "upper then lower" and "lower then upper" encode identically and one trained
# file serves any combination of categories. Two garments of one category share a slot but are
# still encoded in separate batch rows, so their self-attention never mixes.
DEFAULT_SLOTS: tuple[str, ...] = ("upper", "lower", "dress", "shoes", "bag", "hat")

# The paper's appendix: λ = 0.7 at inference, η = 350 for GTL, and eq. 15's loss weights
# L = L_LDM + λ1/m·ΣL_loc + λ2·L_texture with λ1 = 0.01, λ2 = 0.001.
PAPER_LAMBDA = 0.7
PAPER_ETA = 350
PAPER_IGL_WEIGHT = 0.01
PAPER_GTL_WEIGHT = 0.001


@dataclass(frozen=True)
class DressingConfig:
    """Settings of one AnyDressing model.

    Args:
        slots: garment categories, one GFE LoRA slot each.
        rank: LoRA rank r of ΔŴ_q, ΔŴ_k, ΔŴ_v.
        alpha: LoRA alpha; the delta is scaled by alpha / rank.
        sites: self-attention sites that carry a GFE LoRA in GarmentsNet and a Dressing-Attention
            in DressingNet (default: all 16 of SD1.5).
    """

    slots: tuple[str, ...] = DEFAULT_SLOTS
    rank: int = 8
    alpha: float = 8.0
    sites: tuple[str, ...] = SITE_GROUPS["all"]

    def __post_init__(self) -> None:
        if not self.slots or len(set(self.slots)) != len(self.slots):
            raise ReferenceInputError(f"DressingConfig.slots must be distinct and non-empty, got {self.slots}")
        if self.alpha <= 0:
            raise ReferenceInputError(f"DressingConfig.alpha must be > 0, got {self.alpha}")
        if self.rank < 1:
            raise ReferenceInputError(f"DressingConfig.rank must be >= 1, got {self.rank}")
        unknown = [name for name in self.sites if name not in SITES_BY_NAME]
        if unknown or not self.sites:
            raise ReferenceInputError(f"DressingConfig.sites has unknown names {unknown}; valid: {list(SITES_BY_NAME)}")

    @property
    def scale(self) -> float:
        """The LoRA scale alpha / r."""
        return self.alpha / self.rank

    def slot_index(self, category: str) -> int:
        """The LoRA slot of a garment category; the error names the categories this file knows."""
        try:
            return self.slots.index(category)
        except ValueError:
            raise ReferenceInputError(
                f"garment category {category!r} has no LoRA slot in this dressing weight file; "
                f"use one of {list(self.slots)}"
            ) from None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["slots"] = list(self.slots)
        data["sites"] = list(self.sites)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DressingConfig:
        return cls(
            slots=tuple(data.get("slots", DEFAULT_SLOTS)),
            rank=int(data.get("rank", 8)),
            alpha=float(data.get("alpha", 8.0)),
            sites=tuple(data.get("sites", SITE_GROUPS["all"])),
        )
