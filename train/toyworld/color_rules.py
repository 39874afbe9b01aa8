"""The colour clause of the outfit rule, in two versions: "palette" (the default) and "accents".

**palette**: the upper garment's colour fixes the others through a colour wheel of hue families
(``FAMILY_WHEEL``; black, grey and white form an achromatic family of their own). The lower must be
*tonal* with the upper (same family), the bag *complementary* (the opposite family: red-green,
orange-blue, yellow-purple) and the shoes *analogous* (a neighbouring family); an achromatic upper
asks for achromatic items everywhere. The sampler takes each slot's preferred colour
(``palette_preferred``: the tonal colour of most lightness contrast, the complementary colour of
closest lightness, the darkest colour of the next family clockwise) and, with probability
``PALETTE_RANDOMNESS`` per slot, another colour the relation allows. So the other items' colours are
almost a function of the upper's, as in OutfitGAN's setting of completing an outfit from one item.

**accents** (the toy world's first rule): the chromatic colours among the main colours are at most two
distinct ones, analogous (hue difference <= 45 degrees) or complementary (>= 150 degrees); neutrals
(``NamedColor.neutral``) go with anything. Its sampler draws the bag, lower and shoes colours with no
regard to the upper's, so no function of the upper predicts them much better than chance.

Each rule says which sentences it violates (``violations``), draws the colours of a compatible
outfit (``draw``) and recolours a compatible outfit so it breaks the clause (``clash``).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .palette import GARMENT_COLORS, NamedColor, color_by_name

OUTFIT_SLOTS: tuple[str, ...] = ("upper", "bag", "lower", "shoes")
ANCHOR_SLOT = "upper"

FAMILY_WHEEL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("red", ("burgundy", "red", "pink")),  # HSV hues 336-357 degrees
    ("orange", ("brown", "orange", "beige")),  # 26-42
    ("yellow", ("olive green", "mustard yellow")),  # 45-68
    ("green", ("green", "teal")),  # 135-183
    ("blue", ("navy blue", "blue", "sky blue")),  # 207-232
    ("purple", ("purple",)),  # 276
)
ACHROMATIC: tuple[str, ...] = ("black", "grey", "white")
ACHROMATIC_FAMILY = "achromatic"
SLOT_RELATIONS: dict[str, str] = {"lower": "tonal", "bag": "complementary", "shoes": "analogous"}
PALETTE_RANDOMNESS = 0.2

ANALOGOUS_MAX = 45.0
COMPLEMENTARY_MIN = 150.0
NEUTRALS: tuple[NamedColor, ...] = tuple(color for color in GARMENT_COLORS if color.neutral)
CHROMATIC: tuple[NamedColor, ...] = tuple(color for color in GARMENT_COLORS if not color.neutral)


class UnknownColorRuleError(ValueError):
    """A colour-rule name is not one of COLOR_RULES."""


class MissingAnchorError(ValueError):
    """The palette rule was asked about items without the upper garment it is anchored on."""


def lightness(color: NamedColor) -> float:
    """CIE L* (0 black .. 100 white) of the colour's sRGB triple."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255.0 for v in color.rgb)]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    delta = 6.0 / 29.0
    cube = luminance ** (1.0 / 3.0) if luminance > delta**3 else luminance / (3.0 * delta**2) + 4.0 / 29.0
    return 116.0 * cube - 16.0


def family_of(color: NamedColor) -> str:
    """The colour's hue family on ``FAMILY_WHEEL``, or "achromatic"."""
    if color.name in ACHROMATIC:
        return ACHROMATIC_FAMILY
    return next(name for name, members in FAMILY_WHEEL if color.name in members)


def _members(family: str) -> tuple[NamedColor, ...]:
    names = ACHROMATIC if family == ACHROMATIC_FAMILY else dict(FAMILY_WHEEL)[family]
    return tuple(color_by_name(name) for name in names)


def related_families(anchor: NamedColor, relation: str) -> tuple[str, ...]:
    """The families that stand in ``relation`` ("tonal", "complementary", "analogous") to the anchor's;
    the analogous ones are listed clockwise first."""
    family = family_of(anchor)
    if family == ACHROMATIC_FAMILY:
        return (ACHROMATIC_FAMILY,)
    names = [name for name, _ in FAMILY_WHEEL]
    position = names.index(family)
    steps = {"tonal": (0,), "complementary": (len(names) // 2,), "analogous": (1, -1)}[relation]
    return tuple(names[(position + step) % len(names)] for step in steps)


def palette_allowed(anchor: NamedColor, slot: str) -> tuple[NamedColor, ...]:
    """Every colour the palette rule allows in ``slot`` next to an upper of colour ``anchor``."""
    return tuple(color for family in related_families(anchor, SLOT_RELATIONS[slot]) for color in _members(family))


def palette_preferred(anchor: NamedColor, slot: str) -> NamedColor:
    """The colour the palette sampler draws in ``slot`` with probability 1 - PALETTE_RANDOMNESS (or 1
    when the relation allows nothing else)."""
    relation = SLOT_RELATIONS[slot]
    candidates = _members(related_families(anchor, relation)[0])
    if relation == "tonal":
        return max(candidates, key=lambda color: abs(lightness(color) - lightness(anchor)))
    if relation == "complementary":
        return min(candidates, key=lambda color: abs(lightness(color) - lightness(anchor)))
    return min(candidates, key=lightness)


def _palette_violations(colors: dict[str, NamedColor]) -> list[str]:
    if ANCHOR_SLOT not in colors:
        raise MissingAnchorError(
            f"the palette colour rule is anchored on the upper garment; pass an 'upper' item (got {sorted(colors)})"
        )
    anchor = colors[ANCHOR_SLOT]
    violations = []
    for slot, relation in SLOT_RELATIONS.items():
        if slot in colors and colors[slot] not in palette_allowed(anchor, slot):
            wanted = " or ".join(related_families(anchor, relation))
            violations.append(
                f"color: the {colors[slot].name} {slot} ({family_of(colors[slot])}) is not {relation} with the "
                f"{anchor.name} upper (wants {wanted})"
            )
    return violations


def _palette_draw(rng: np.random.Generator) -> dict[str, NamedColor]:
    anchor = GARMENT_COLORS[int(rng.integers(len(GARMENT_COLORS)))]
    colors = {ANCHOR_SLOT: anchor}
    for slot in OUTFIT_SLOTS[1:]:
        preferred = palette_preferred(anchor, slot)
        others = [color for color in palette_allowed(anchor, slot) if color != preferred]
        vary = bool(others) and rng.random() < PALETTE_RANDOMNESS
        colors[slot] = others[int(rng.integers(len(others)))] if vary else preferred
    return colors


def _palette_clash(rng: np.random.Generator, colors: dict[str, NamedColor]) -> dict[str, NamedColor]:
    count = 1 + int(rng.random() < 0.3)
    clashed = dict(colors)
    for slot in rng.permutation(OUTFIT_SLOTS[1:])[:count]:
        wrong = [color for color in GARMENT_COLORS if color not in palette_allowed(colors[ANCHOR_SLOT], str(slot))]
        clashed[str(slot)] = wrong[int(rng.integers(len(wrong)))]
    return clashed


def hue_difference(first: NamedColor, second: NamedColor) -> float:
    """Circular hue distance in degrees, 0..180."""
    difference = abs(first.hue - second.hue) % 360.0
    return min(difference, 360.0 - difference)


def colors_harmonize(first: NamedColor, second: NamedColor) -> bool:
    """The accents rule's pair test: analogous or complementary chromatic colours (or either neutral)."""
    if first.neutral or second.neutral or first == second:
        return True
    difference = hue_difference(first, second)
    return difference <= ANALOGOUS_MAX or difference >= COMPLEMENTARY_MIN


def _accent_violations(colors: dict[str, NamedColor]) -> list[str]:
    chromatic = list(dict.fromkeys(color for color in colors.values() if not color.neutral))
    if len(chromatic) > 2:
        return [f"color: {len(chromatic)} accent colours ({', '.join(color.name for color in chromatic)})"]
    if len(chromatic) == 2 and not colors_harmonize(*chromatic):
        difference = hue_difference(*chromatic)
        return [f"color: {chromatic[0].name} and {chromatic[1].name} clash (hue difference {difference:.0f} degrees)"]
    return []


def _accent_draw(rng: np.random.Generator) -> dict[str, NamedColor]:
    count = int(rng.integers(0, 3))
    accents: list[NamedColor] = []
    if count:
        accents.append(CHROMATIC[int(rng.integers(len(CHROMATIC)))])
    if count == 2:
        partners = [color for color in CHROMATIC if color != accents[0] and colors_harmonize(accents[0], color)]
        accents.append(partners[int(rng.integers(len(partners)))])
    accent_slots = [str(slot) for slot in rng.permutation(OUTFIT_SLOTS)[: len(accents) + int(rng.integers(0, 2))]]
    colors = {}
    for slot in OUTFIT_SLOTS:
        if slot in accent_slots and accents:
            colors[slot] = accents[accent_slots.index(slot) % len(accents)]
        else:
            colors[slot] = NEUTRALS[int(rng.integers(len(NEUTRALS)))]
    return colors


def _accent_clash(rng: np.random.Generator, colors: dict[str, NamedColor]) -> dict[str, NamedColor]:
    pairs = [(a, b) for a in CHROMATIC for b in CHROMATIC if a != b and not colors_harmonize(a, b)]
    first_slot, second_slot = (str(slot) for slot in rng.permutation(OUTFIT_SLOTS)[:2])
    first, second = pairs[int(rng.integers(len(pairs)))]
    return {**colors, first_slot: first, second_slot: second}


@dataclass(frozen=True)
class ColorRule:
    """One version of the outfit rule's colour clause.

    Args:
        name: "palette" or "accents".
        violations: main colour by slot -> the clause's violations as "color: ..." sentences.
        draw: rng -> the main colour of each of ``OUTFIT_SLOTS`` for a compatible outfit.
        clash: (rng, compatible colours) -> colours that break the clause.
    """

    name: str
    violations: Callable[[dict[str, NamedColor]], list[str]]
    draw: Callable[[np.random.Generator], dict[str, NamedColor]]
    clash: Callable[[np.random.Generator, dict[str, NamedColor]], dict[str, NamedColor]]


COLOR_RULES: dict[str, ColorRule] = {
    "palette": ColorRule("palette", _palette_violations, _palette_draw, _palette_clash),
    "accents": ColorRule("accents", _accent_violations, _accent_draw, _accent_clash),
}
DEFAULT_COLOR_RULE = "palette"


def color_rule(name: str) -> ColorRule:
    """The colour rule called ``name``; raises UnknownColorRuleError listing the valid names."""
    if name not in COLOR_RULES:
        raise UnknownColorRuleError(f"colour rule {name!r} is not one of {tuple(COLOR_RULES)}")
    return COLOR_RULES[name]
