"""The fashion vocabulary of the default parser: every phrase it knows and what kind of word it is.

Phrases are written as they appear in triples ("navy blue", "t-shirt", "straight-point");
matching ignores case and reads hyphens as spaces, so "T-Shirt" and "straight point" match too.
Word kinds:

- GARMENT: a garment noun; starts a new entity and becomes the anchor for later parts;
- PART: a garment part ("collar", "waist"); hangs from the anchor garment by ``has-feature``;
- PATTERN: a pattern noun ("stripes", "logo patch"); hangs from its garment by ``has-pattern``
  and takes its own colour ("white stripes" -> (stripes, has-color, white));
- PATTERN_ADJECTIVE: "striped", "checked" ... -> ``has-pattern`` with the noun form;
- COLOR, MATERIAL, STYLE (fit and length words are STYLE with a ``STYLE_GROUPS`` entry);
- COLOR_SHADE: "light", "dark", ... joined with the next colour ("light blue").

``lexicon_entries`` is this base vocabulary (the toy world's words; the tiny tokenizer spells
them). The parser reads ``parser_entries``: the base plus the catalogue vocabulary of real shop
text, generated from data (``catalogue_vocabulary``: product types, colour groups and survey
colour names) and curated (``catalogue_words``: parts, materials, finishes); base words keep
their kind where the two overlap. ``parser_aliases`` maps written forms to a canonical phrase
(plural garments to singular: "bras" -> "bra").
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache

from . import catalogue_vocabulary as generated
from . import catalogue_words as curated


class WordKind(str, Enum):
    """What a lexicon phrase is."""

    GARMENT = "garment"
    PART = "part"
    PATTERN = "pattern"
    PATTERN_ADJECTIVE = "pattern_adjective"
    COLOR = "color"
    COLOR_SHADE = "color_shade"
    MATERIAL = "material"
    STYLE = "style"


GARMENTS: tuple[str, ...] = (
    "t-shirt", "tank top", "shirt", "blouse", "sweater", "jumper", "cardigan", "hoodie", "sweatshirt", "jacket",
    "coat", "blazer", "vest", "top", "crop top", "polo shirt", "trousers", "pants", "jeans", "shorts", "skirt",
    "leggings", "dress", "jumpsuit", "sneakers", "boots", "loafers", "heels", "sandals", "shoes", "tote bag",
    "shoulder bag", "clutch", "bag", "backpack", "scarf", "hat", "cap", "belt", "bodysuit", "parka", "trench coat",
)
PARTS: tuple[str, ...] = (
    "collar", "neck", "neckline", "sleeves", "sleeve", "cuffs", "pocket", "pockets", "waist", "waistband", "hem",
    "buttons", "zip", "zipper", "hood", "lapels", "straps", "placket", "yoke", "drawstring", "lining", "back", "front",
    "shoulders", "sole", "toe", "heel", "handle", "strap",
)
PATTERNS: tuple[str, ...] = (
    "stripes", "dots", "polka dots", "checks", "logo patch", "logo", "print", "floral print", "graphic print",
    "animal print", "leopard print", "plaid", "houndstooth", "paisley", "camouflage", "embroidery",
)
PATTERN_ADJECTIVES: dict[str, str] = {
    "striped": "stripes", "dotted": "dots", "polka-dot": "dots", "checked": "checks", "checkered": "checks",
    "plaid": "plaid", "floral": "floral print", "printed": "print", "embroidered": "embroidery",
    "leopard-print": "leopard print", "camo": "camouflage",
}
COLORS: tuple[str, ...] = (
    "black", "white", "grey", "gray", "navy blue", "navy", "beige", "brown", "red", "burgundy", "orange",
    "mustard yellow", "mustard", "yellow", "olive green", "olive", "green", "teal", "sky blue", "blue", "purple",
    "pink", "khaki", "cream", "ivory", "off-white", "camel", "tan", "charcoal", "maroon", "coral", "lavender", "lilac",
    "mint", "turquoise", "gold", "silver", "denim blue", "dusty pink", "light blue", "dark blue", "light grey",
    "dark grey", "dark green", "emerald", "rust", "taupe", "mauve", "fuchsia", "magenta", "violet", "indigo",
)
COLOR_SHADES: tuple[str, ...] = ("light", "dark", "pale", "bright", "deep", "dusty", "neon", "pastel")
MATERIALS: tuple[str, ...] = (
    "cotton", "organic cotton", "denim", "wool", "silk", "linen", "leather", "faux leather", "suede", "canvas",
    "jersey", "polyester", "cashmere", "velvet", "satin", "corduroy", "chiffon", "lace", "nylon", "fleece", "knit",
    "rib-knit", "tweed", "viscose", "sweatshirt fabric", "mesh", "twill", "poplin", "crepe", "lyocell", "modal",
)
FIT_STYLES: tuple[str, ...] = (
    "slim", "loose", "oversized", "relaxed", "fitted", "regular", "skinny", "wide", "tight", "boxy", "straight",
    "slim fit", "regular fit", "relaxed fit", "loose fit",
)
LENGTH_STYLES: tuple[str, ...] = (
    "cropped", "mini", "midi", "maxi", "ankle-length", "knee-length", "calf-length", "long", "short",
)
OTHER_STYLES: tuple[str, ...] = (
    "sleeveless", "straight-point", "rounded", "round", "v", "crew", "chest patch", "belted", "pleated",
    "double-breasted", "single-breasted", "hooded", "lined", "padded", "quilted", "button-down", "spread", "mandarin",
    "high", "turtle", "wrap", "ribbed", "ruffled", "distressed", "high-waisted", "casual", "formal", "vintage",
    "elegant", "sporty", "classic", "puff", "flared", "tapered", "zip-up", "drawstring", "elasticated", "patch",
)
STYLE_GROUPS: dict[str, str] = {
    **{word: "fit" for word in FIT_STYLES + curated.FIT_STYLES},
    **{word: "length" for word in LENGTH_STYLES + curated.LENGTH_STYLES},
}


def lexicon_entries() -> dict[str, WordKind]:
    """Every phrase (as written in triples) and its kind; a later kind does not override an earlier one."""
    entries: dict[str, WordKind] = {}
    groups: list[tuple[tuple[str, ...], WordKind]] = [
        (GARMENTS, WordKind.GARMENT), (PARTS, WordKind.PART), (PATTERNS, WordKind.PATTERN),
        (tuple(PATTERN_ADJECTIVES), WordKind.PATTERN_ADJECTIVE), (COLORS, WordKind.COLOR),
        (COLOR_SHADES, WordKind.COLOR_SHADE), (MATERIALS, WordKind.MATERIAL),
        (FIT_STYLES + LENGTH_STYLES + OTHER_STYLES, WordKind.STYLE),
    ]
    for phrases, kind in groups:
        for phrase in phrases:
            entries.setdefault(phrase, kind)
    return entries


@lru_cache(maxsize=1)
def parser_entries() -> dict[str, WordKind]:
    """The base lexicon plus the catalogue vocabulary (see the module docstring); read-only."""
    entries = dict(lexicon_entries())
    groups: list[tuple[tuple[str, ...], WordKind]] = [
        (generated.GARMENT_TYPES + curated.GARMENT_NOUNS, WordKind.GARMENT), (curated.PARTS, WordKind.PART),
        (generated.COLORS, WordKind.COLOR), (curated.MATERIALS, WordKind.MATERIAL),
        (curated.FIT_STYLES + curated.LENGTH_STYLES + curated.FINISH_STYLES, WordKind.STYLE),
    ]
    for phrases, kind in groups:
        for phrase in phrases:
            entries.setdefault(phrase, kind)
    return entries


def parser_aliases() -> dict[str, str]:
    """Written form -> canonical phrase of the same kind (plural garment nouns to singular)."""
    entries = parser_entries()
    return {written: canonical for written, canonical in curated.GARMENT_SINGULARS.items()
            if entries.get(canonical) is WordKind.GARMENT}


def match_key(phrase: str) -> tuple[str, ...]:
    """The words a phrase is matched by: lower case, hyphens read as spaces."""
    return tuple(phrase.lower().replace("-", " ").split())
