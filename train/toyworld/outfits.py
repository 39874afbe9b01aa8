"""Outfits (upper, bag, lower, shoes) and the rule that says whether one is compatible.

The rule has three clauses; an outfit is compatible when none is violated:

1. formality: the items' formality levels (0 casual, 1 smart, 2 formal; see ``garments``)
   span at most one step (max - min <= 1);
2. colour harmony: among the items' main colours, the chromatic (non-neutral) ones are at most two
   distinct colours, and two of them must be analogous (hue difference <= 45 degrees) or
   complementary (>= 150 degrees); neutrals (black, white, grey, navy blue, beige, brown) go with
   anything;
3. pattern: at most one item is patterned (anything but "solid").

Compatible outfits are drawn so the rule holds; incompatible ones start compatible and break one
or more clauses on purpose. Both are checked against the rule before they are returned.
"""

from dataclasses import dataclass

import numpy as np

from .garments import CATALOGUE, GarmentSpec, sample_garment
from .palette import GARMENT_COLORS, NamedColor

OUTFIT_SLOTS: tuple[str, ...] = ("upper", "bag", "lower", "shoes")
ANALOGOUS_MAX = 45.0
COMPLEMENTARY_MIN = 150.0
CLAUSES: tuple[str, ...] = ("formality", "color", "pattern")

NEUTRALS: tuple[NamedColor, ...] = tuple(color for color in GARMENT_COLORS if color.neutral)
CHROMATIC: tuple[NamedColor, ...] = tuple(color for color in GARMENT_COLORS if not color.neutral)


class OutfitRuleError(RuntimeError):
    """The outfit generator produced an outfit whose label disagrees with the rule (a bug)."""


def hue_difference(first: NamedColor, second: NamedColor) -> float:
    """Circular hue distance in degrees, 0..180."""
    difference = abs(first.hue - second.hue) % 360.0
    return min(difference, 360.0 - difference)


def colors_harmonize(first: NamedColor, second: NamedColor) -> bool:
    """True for analogous or complementary chromatic colours (or when either is neutral)."""
    if first.neutral or second.neutral or first == second:
        return True
    difference = hue_difference(first, second)
    return difference <= ANALOGOUS_MAX or difference >= COMPLEMENTARY_MIN


def compatibility_violations(items: dict[str, GarmentSpec]) -> list[str]:
    """Which clauses of the rule the items break, as sentences (empty list: compatible)."""
    violations: list[str] = []
    levels = [spec.formality for spec in items.values()]
    if levels and max(levels) - min(levels) > 1:
        violations.append(f"formality: levels {sorted(levels)} span more than one step")
    chromatic = list(dict.fromkeys(spec.color for spec in items.values() if not spec.color.neutral))
    if len(chromatic) > 2:
        violations.append(f"color: {len(chromatic)} accent colours ({', '.join(color.name for color in chromatic)})")
    elif len(chromatic) == 2 and not colors_harmonize(*chromatic):
        violations.append(
            f"color: {chromatic[0].name} and {chromatic[1].name} clash "
            f"(hue difference {hue_difference(*chromatic):.0f} degrees)"
        )
    patterned = [spec.kind for spec in items.values() if spec.pattern != "solid"]
    if len(patterned) > 1:
        violations.append(f"pattern: {len(patterned)} patterned items ({', '.join(patterned)})")
    return violations


def is_compatible(items: dict[str, GarmentSpec]) -> bool:
    """True when the items satisfy every clause of the rule."""
    return not compatibility_violations(items)


@dataclass(frozen=True)
class OutfitDesign:
    """An outfit and its label.

    Args:
        items: garment specs by slot ("upper", "bag", "lower", "shoes").
        compatible: the rule's verdict.
        violations: the rule's reasons when incompatible.
        broken: the clauses the generator broke on purpose (empty for compatible outfits).
    """

    items: dict[str, GarmentSpec]
    compatible: bool
    violations: tuple[str, ...]
    broken: tuple[str, ...]


def _kind_material_with(rng: np.random.Generator, slot: str, level: int) -> tuple[str, str]:
    options = [
        (kind, material)
        for kind, info in CATALOGUE[slot].items()
        for material, value in info.materials.items()
        if value == level
    ]
    return options[int(rng.integers(len(options)))]


def _harmonious_accents(rng: np.random.Generator) -> list[NamedColor]:
    count = int(rng.integers(0, 3))
    if count == 0:
        return []
    first = CHROMATIC[int(rng.integers(len(CHROMATIC)))]
    if count == 1:
        return [first]
    partners = [color for color in CHROMATIC if color != first and colors_harmonize(first, color)]
    return [first, partners[int(rng.integers(len(partners)))]]


def _clashing_pair(rng: np.random.Generator) -> tuple[NamedColor, NamedColor]:
    pairs = [(a, b) for a in CHROMATIC for b in CHROMATIC if a != b and not colors_harmonize(a, b)]
    return pairs[int(rng.integers(len(pairs)))]


def _compatible_choices(rng: np.random.Generator) -> dict[str, dict]:
    base = int(rng.integers(0, 2))
    accents = _harmonious_accents(rng)
    accent_slots = list(rng.permutation(OUTFIT_SLOTS)[: len(accents) + int(rng.integers(0, 2))])
    patterned = OUTFIT_SLOTS[int(rng.integers(len(OUTFIT_SLOTS)))] if rng.random() < 0.5 else None
    choices: dict[str, dict] = {}
    for slot in OUTFIT_SLOTS:
        kind, material = _kind_material_with(rng, slot, base + int(rng.integers(0, 2)))
        if slot in accent_slots and accents:
            color = accents[accent_slots.index(slot) % len(accents)]
        else:
            color = NEUTRALS[int(rng.integers(len(NEUTRALS)))]
        pattern = None if (slot == patterned and slot != "shoes") else "solid"
        choices[slot] = {"kind": kind, "material": material, "color": color, "pattern": pattern}
    return choices


def _break_clauses(rng: np.random.Generator, choices: dict[str, dict]) -> tuple[str, ...]:
    count = 1 + int(rng.random() < 0.3)
    broken = tuple(str(name) for name in rng.permutation(CLAUSES)[:count])
    if "formality" in broken:
        casual, formal = rng.permutation(OUTFIT_SLOTS)[:2]
        for slot, level in ((casual, 0), (formal, 2)):
            kind, material = _kind_material_with(rng, slot, level)
            choices[slot].update(kind=kind, material=material)
    if "color" in broken:
        first_slot, second_slot = rng.permutation(OUTFIT_SLOTS)[:2]
        first, second = _clashing_pair(rng)
        choices[first_slot]["color"], choices[second_slot]["color"] = first, second
    if "pattern" in broken:
        for slot in ("upper", "bag", "lower"):
            choices[slot]["pattern"] = None
        keep_solid = ("upper", "bag", "lower")[int(rng.integers(3))] if rng.random() < 0.5 else None
        if keep_solid is not None:
            choices[keep_solid]["pattern"] = "solid"
    return broken


def _realise(rng: np.random.Generator, choices: dict[str, dict]) -> dict[str, GarmentSpec]:
    items = {}
    for slot in OUTFIT_SLOTS:
        chosen = choices[slot]
        pattern = chosen["pattern"]
        if pattern is None:
            pattern = ("stripes", "dots", "checks", "logo patch")[int(rng.integers(3 if slot == "lower" else 4))]
        items[slot] = sample_garment(
            rng, slot, color=chosen["color"], kind=chosen["kind"], pattern=pattern, material=chosen["material"],
        )
    return items


def sample_outfit(rng: np.random.Generator, compatible: bool) -> OutfitDesign:
    """Draw a compatible or an incompatible outfit; its label is checked against the rule."""
    choices = _compatible_choices(rng)
    broken = _break_clauses(rng, choices) if not compatible else ()
    items = _realise(rng, choices)
    violations = compatibility_violations(items)
    if compatible == bool(violations):
        raise OutfitRuleError(f"outfit drawn as compatible={compatible} but the rule says {violations or 'compatible'}")
    return OutfitDesign(items, compatible, tuple(violations), broken)
