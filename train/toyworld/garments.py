"""Garment designs of the toy world: what each garment is (kind, colour, pattern, material, style
words, parts) and how a random one is drawn. Painting them is ``garment_paint``'s job.

Slots: "upper" (t-shirt, tank top, shirt, blouse, sweater, jacket), "lower" (trousers, jeans,
shorts, skirt), "dress", "shoes" (sneakers, boots, loafers, heels) and "bag" (tote bag, shoulder
bag, clutch). Parts belong to uppers and dresses only, so a part name in a triple always means the
one upper-body garment: "collar" (straight-point or rounded), "neck" (round or v, when there
is no collar), "sleeves" (long or short; none gives the style word "sleeveless"), "pocket" (chest
patch) and "waist" (belted). Every part with a colour differs in colour from its garment, so it is
visible in the picture.

Formality, used by the outfit rule: 0 casual, 1 smart, 2 formal; it depends on kind and material.
"""

from dataclasses import dataclass

import numpy as np

from .palette import GARMENT_COLORS, NamedColor

SLOTS: tuple[str, ...] = ("upper", "lower", "dress", "shoes", "bag")


class UnknownSlotError(ValueError):
    """A garment slot name is not one of SLOTS."""


@dataclass(frozen=True)
class GarmentPart:
    """A named part of an upper garment or dress.

    Args:
        name: "collar", "neck", "sleeves", "pocket" or "waist".
        style: "straight-point", "rounded", "round", "v", "long", "short", "chest patch", "belted".
        color: its own colour, or None when it is made of the garment's cloth.
    """

    name: str
    style: str
    color: NamedColor | None = None


@dataclass(frozen=True)
class GarmentSpec:
    """Everything that defines one garment.

    Args:
        slot: one of SLOTS.
        kind: the noun used in captions and as the triple entity ("shirt", "tote bag").
        color: main colour.
        pattern: one of palette.PATTERNS.
        pattern_color: second colour of the pattern (None for solid).
        material: "cotton", "denim", "wool", "silk", "linen", "leather", "suede", "canvas", "jersey".
        styles: garment-level style words ("loose", "wide", "midi", "sleeveless", ...).
        formality: 0 casual, 1 smart, 2 formal.
        parts: parts of uppers and dresses.
    """

    slot: str
    kind: str
    color: NamedColor
    pattern: str
    pattern_color: NamedColor | None
    material: str
    styles: tuple[str, ...]
    formality: int
    parts: tuple[GarmentPart, ...] = ()

    def part(self, name: str) -> GarmentPart | None:
        """The part called ``name``, or None."""
        for part in self.parts:
            if part.name == name:
                return part
        return None

    def colors(self) -> tuple[NamedColor, ...]:
        """Every colour that shows on the garment: main, pattern and part colours."""
        found = [self.color]
        if self.pattern_color is not None:
            found.append(self.pattern_color)
        found.extend(part.color for part in self.parts if part.color is not None)
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class KindInfo:
    """Catalogue entry: which materials a kind comes in and the formality each gives."""

    materials: dict[str, int]


CATALOGUE: dict[str, dict[str, KindInfo]] = {
    "upper": {
        "t-shirt": KindInfo({"cotton": 0, "jersey": 0}),
        "tank top": KindInfo({"cotton": 0, "jersey": 0}),
        "shirt": KindInfo({"cotton": 1, "linen": 1, "silk": 2}),
        "blouse": KindInfo({"silk": 2, "cotton": 1}),
        "sweater": KindInfo({"wool": 1, "cotton": 0}),
        "jacket": KindInfo({"wool": 2, "leather": 1, "denim": 0}),
    },
    "lower": {
        "trousers": KindInfo({"wool": 2, "cotton": 1, "linen": 1}),
        "jeans": KindInfo({"denim": 0}),
        "shorts": KindInfo({"cotton": 0, "denim": 0}),
        "skirt": KindInfo({"cotton": 1, "silk": 2, "denim": 0, "wool": 1}),
    },
    "dress": {"dress": KindInfo({"cotton": 1, "linen": 1, "silk": 2})},
    "shoes": {
        "sneakers": KindInfo({"canvas": 0, "leather": 0}),
        "boots": KindInfo({"leather": 1, "suede": 1}),
        "loafers": KindInfo({"leather": 1, "suede": 1}),
        "heels": KindInfo({"leather": 2, "suede": 2}),
    },
    "bag": {
        "tote bag": KindInfo({"canvas": 0, "leather": 1}),
        "shoulder bag": KindInfo({"leather": 1, "suede": 1}),
        "clutch": KindInfo({"leather": 2, "silk": 2}),
    },
}

PATTERN_WEIGHTS: dict[str, dict[str, float]] = {
    "upper": {"solid": 0.4, "stripes": 0.15, "dots": 0.15, "checks": 0.15, "logo patch": 0.15},
    "lower": {"solid": 0.64, "stripes": 0.12, "dots": 0.12, "checks": 0.12},
    "dress": {"solid": 0.46, "stripes": 0.18, "dots": 0.18, "checks": 0.18},
    "shoes": {"solid": 1.0},
    "bag": {"solid": 0.55, "stripes": 0.15, "checks": 0.15, "logo patch": 0.15},
}

SLEEVED_KINDS: dict[str, tuple[str, ...]] = {
    "t-shirt": ("short", "short", "long"),
    "tank top": (),
    "shirt": ("long", "short"),
    "blouse": ("long", "short", ""),
    "sweater": ("long",),
    "jacket": ("long",),
    "dress": ("short", "long", "", ""),
}

COLLAR_KINDS: dict[str, tuple[str, ...]] = {
    "shirt": ("straight-point", "straight-point", "rounded"),
    "blouse": ("rounded", ""),
    "jacket": ("straight-point",),
    "dress": ("rounded", "", ""),
}

FIT_STYLES: dict[str, tuple[str, ...]] = {
    "t-shirt": ("", "loose", "slim"),
    "tank top": ("", "slim"),
    "shirt": ("", "slim", "loose"),
    "blouse": ("", "loose"),
    "sweater": ("", "loose"),
    "jacket": ("", "cropped", "long"),
    "trousers": ("", "wide", "slim"),
    "jeans": ("", "wide", "slim"),
    "shorts": ("",),
    "skirt": ("mini", "midi"),
    "dress": ("mini", "midi", "maxi"),
}


def _choice(rng: np.random.Generator, options: tuple | list) -> object:
    return options[int(rng.integers(len(options)))]


def _other_color(
    rng: np.random.Generator, allowed: tuple[NamedColor, ...], taken: list[NamedColor]
) -> NamedColor:
    candidates = [color for color in allowed if color not in taken]
    return _choice(rng, candidates)


def sample_parts(
    rng: np.random.Generator, kind: str, allowed: tuple[NamedColor, ...], taken: list[NamedColor]
) -> tuple[tuple[GarmentPart, ...], tuple[str, ...]]:
    """Parts of an upper garment or dress, and the style words they imply ("sleeveless")."""
    parts: list[GarmentPart] = []
    styles: list[str] = []
    collar = _choice(rng, COLLAR_KINDS.get(kind, ("",)))
    if collar:
        parts.append(GarmentPart("collar", collar, _other_color(rng, allowed, taken)))
    else:
        parts.append(GarmentPart("neck", _choice(rng, ("round", "round", "v"))))
    sleeves = _choice(rng, SLEEVED_KINDS[kind]) if SLEEVED_KINDS[kind] else ""
    if sleeves:
        parts.append(GarmentPart("sleeves", sleeves))
    else:
        styles.append("sleeveless")
    if kind in ("shirt", "jacket", "t-shirt") and rng.random() < 0.4:
        parts.append(GarmentPart("pocket", "chest patch", _other_color(rng, allowed, taken)))
    if kind in ("jacket", "shirt", "blouse", "dress") and rng.random() < 0.4:
        parts.append(GarmentPart("waist", "belted", _other_color(rng, allowed, taken)))
    return tuple(parts), tuple(styles)


def sample_garment(
    rng: np.random.Generator,
    slot: str,
    allowed: tuple[NamedColor, ...] = GARMENT_COLORS,
    color: NamedColor | None = None,
    kind: str | None = None,
    pattern: str | None = None,
    material: str | None = None,
) -> GarmentSpec:
    """Draw a garment for ``slot``.

    Args:
        rng: the sample's generator.
        slot: one of SLOTS.
        allowed: colours it may use (all of them; the caller keeps them off the skin tone).
        color, kind, pattern, material: fix that choice instead of drawing it.
    """
    if slot not in CATALOGUE:
        raise UnknownSlotError(f"garment slot {slot!r} is not one of {SLOTS}")
    kinds = tuple(CATALOGUE[slot])
    kind = kind if kind is not None else _choice(rng, kinds)
    info = CATALOGUE[slot][kind]
    material = material if material is not None else _choice(rng, tuple(info.materials))
    color = color if color is not None else _choice(rng, allowed)
    if pattern is None:
        weights = PATTERN_WEIGHTS[slot]
        names = tuple(weights)
        probabilities = np.array([weights[name] for name in names])
        pattern = names[int(rng.choice(len(names), p=probabilities / probabilities.sum()))]
    taken = [color]
    pattern_color = None
    if pattern != "solid":
        pattern_color = _other_color(rng, allowed, taken)
        taken.append(pattern_color)
    styles: tuple[str, ...] = ()
    fit = _choice(rng, FIT_STYLES.get(kind, ("",)))
    if fit:
        styles = (fit,)
    parts: tuple[GarmentPart, ...] = ()
    if slot in ("upper", "dress"):
        parts, part_styles = sample_parts(rng, kind, allowed, taken)
        styles = part_styles + styles
    return GarmentSpec(
        slot=slot, kind=kind, color=color, pattern=pattern, pattern_color=pattern_color,
        material=material, styles=styles, formality=info.materials[material], parts=parts,
    )
