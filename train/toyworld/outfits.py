"""Outfits (upper, bag, lower, shoes) and the rule that says whether one is compatible.

The rule has three clauses; an outfit is compatible when none is violated:

1. formality: the items' formality levels (0 casual, 1 smart, 2 formal; see ``garments``)
   span at most one step (max - min <= 1);
2. colour: the items' main colours follow the colour rule (``color_rules``). The default,
   "palette", anchors them on the upper: the lower tonal with it, the bag complementary, the shoes
   analogous, on a wheel of hue families, so the upper's colour nearly fixes the others. The first
   rule, "accents" (at most two harmonising chromatic colours, neutrals go with anything, drawn with
   no regard to the upper), stays reachable through ``rule="accents"``;
3. pattern: at most one item is patterned (anything but "solid").

Compatible outfits are drawn so the rule holds; incompatible ones start compatible and break one
or more clauses on purpose. Both are checked against the rule before they are returned.
"""

from dataclasses import dataclass

import numpy as np

from .color_rules import DEFAULT_COLOR_RULE, OUTFIT_SLOTS, color_rule
from .garments import CATALOGUE, GarmentSpec, sample_garment

CLAUSES: tuple[str, ...] = ("formality", "color", "pattern")


class OutfitRuleError(RuntimeError):
    """The outfit generator produced an outfit whose label disagrees with the rule (a bug)."""


def compatibility_violations(items: dict[str, GarmentSpec], rule: str = DEFAULT_COLOR_RULE) -> list[str]:
    """Which clauses of the rule the items break, as sentences (empty list: compatible); ``rule``
    names the colour clause ("palette" or "accents", ``color_rules``)."""
    violations: list[str] = []
    levels = [spec.formality for spec in items.values()]
    if levels and max(levels) - min(levels) > 1:
        violations.append(f"formality: levels {sorted(levels)} span more than one step")
    violations.extend(color_rule(rule).violations({slot: spec.color for slot, spec in items.items()}))
    patterned = [spec.kind for spec in items.values() if spec.pattern != "solid"]
    if len(patterned) > 1:
        violations.append(f"pattern: {len(patterned)} patterned items ({', '.join(patterned)})")
    return violations


def is_compatible(items: dict[str, GarmentSpec], rule: str = DEFAULT_COLOR_RULE) -> bool:
    """True when the items satisfy every clause of the rule (colour clause ``rule``)."""
    return not compatibility_violations(items, rule)


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


def _compatible_choices(rng: np.random.Generator, rule: str) -> dict[str, dict]:
    base = int(rng.integers(0, 2))
    colors = color_rule(rule).draw(rng)
    patterned = OUTFIT_SLOTS[int(rng.integers(len(OUTFIT_SLOTS)))] if rng.random() < 0.5 else None
    choices: dict[str, dict] = {}
    for slot in OUTFIT_SLOTS:
        kind, material = _kind_material_with(rng, slot, base + int(rng.integers(0, 2)))
        pattern = None if (slot == patterned and slot != "shoes") else "solid"
        choices[slot] = {"kind": kind, "material": material, "color": colors[slot], "pattern": pattern}
    return choices


def _break_clauses(rng: np.random.Generator, choices: dict[str, dict], rule: str) -> tuple[str, ...]:
    count = 1 + int(rng.random() < 0.3)
    broken = tuple(str(name) for name in rng.permutation(CLAUSES)[:count])
    if "formality" in broken:
        casual, formal = rng.permutation(OUTFIT_SLOTS)[:2]
        for slot, level in ((casual, 0), (formal, 2)):
            kind, material = _kind_material_with(rng, slot, level)
            choices[slot].update(kind=kind, material=material)
    if "color" in broken:
        clashed = color_rule(rule).clash(rng, {slot: choices[slot]["color"] for slot in OUTFIT_SLOTS})
        for slot, color in clashed.items():
            choices[slot]["color"] = color
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


def sample_outfit(rng: np.random.Generator, compatible: bool, rule: str = DEFAULT_COLOR_RULE) -> OutfitDesign:
    """Draw a compatible or an incompatible outfit under colour rule ``rule`` ("palette" or
    "accents"); its label is checked against the rule."""
    choices = _compatible_choices(rng, rule)
    broken = _break_clauses(rng, choices, rule) if not compatible else ()
    items = _realise(rng, choices)
    violations = compatibility_violations(items, rule)
    if compatible == bool(violations):
        raise OutfitRuleError(f"outfit drawn as compatible={compatible} but the rule says {violations or 'compatible'}")
    return OutfitDesign(items, compatible, tuple(violations), broken)
