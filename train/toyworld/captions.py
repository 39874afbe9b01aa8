"""Captions and ground-truth triples in the style of the knowledge-graph garment paper.

The paper's example: "a navy blue jacket with a red straight-point collar and a blue belted waist"
gives (jacket, has-color, navy blue), (jacket, has-feature, collar), (collar, has-style,
straight-point), (collar, has-color, red), (jacket, has-feature, waist), (waist, has-color, blue).

Rules used here (one triple per fact that the caption states):

- the garment: (kind, has-color, colour); (kind, has-material, material); (kind, has-style, word)
  for each style word ("loose", "midi", "sleeveless");
- a pattern: (kind, has-pattern, pattern) and (pattern, has-color, its colour), read from
  "with white stripes" / "with a white logo patch";
- a part: (kind, has-feature, part), (part, has-style, style), and (part, has-color, colour) when
  the part has its own colour. The paper's example leaves out (waist, has-style, belted) although
  its caption says "belted"; it is kept here so every caption word has its triple.

Part and pattern entities are not qualified by their garment ("collar", "stripes"): only uppers
and dresses have parts, but two patterned garments in one person caption share the pattern
entity, as they would in the paper's scheme.
"""

from .garments import GarmentSpec

Triple = tuple[str, str, str]

SLOT_ORDER: tuple[str, ...] = ("upper", "dress", "lower", "shoes", "bag")


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def _is_plural(kind: str) -> bool:
    return kind in ("trousers", "jeans", "shorts", "sneakers", "boots", "loafers", "heels")


def _part_phrase(part_name: str, style: str, color: str | None) -> str:
    described = f"{style}-neck" if (part_name, style) == ("neck", "v") else f"{style} {part_name}"
    words = f"{color} {described}" if color else described
    if part_name == "sleeves":
        return words
    return f"{_article(words)} {words}"


def _join(phrases: list[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def garment_caption(spec: GarmentSpec) -> tuple[str, list[Triple]]:
    """One garment's phrase ("a loose navy blue cotton shirt with white stripes and a red
    straight-point collar") and its triples."""
    kind = spec.kind
    triples: list[Triple] = [(kind, "has-color", spec.color.name), (kind, "has-material", spec.material)]
    triples += [(kind, "has-style", style) for style in spec.styles]
    head = " ".join([*spec.styles, spec.color.name, spec.material, kind])
    head = head if _is_plural(kind) else f"{_article(head)} {head}"
    extras: list[str] = []
    if spec.pattern != "solid":
        pattern_color = spec.pattern_color.name
        triples += [(kind, "has-pattern", spec.pattern), (spec.pattern, "has-color", pattern_color)]
        phrase = f"{pattern_color} {spec.pattern}"
        extras.append(phrase if spec.pattern in ("stripes", "dots", "checks") else f"{_article(phrase)} {phrase}")
    for part in spec.parts:
        color = part.color.name if part.color is not None else None
        triples += [(kind, "has-feature", part.name), (part.name, "has-style", part.style)]
        if color is not None:
            triples.append((part.name, "has-color", color))
        extras.append(_part_phrase(part.name, part.style, color))
    if extras:
        head = f"{head} with {_join(extras)}"
    return head, triples


def outfit_caption(garments: dict[str, GarmentSpec], lead: str = "a person wearing") -> tuple[str, list[Triple]]:
    """Caption of several garments ("a person wearing a ... shirt, ... jeans and ... sneakers"),
    with the union of their triples (duplicates removed, order kept)."""
    phrases: list[str] = []
    triples: list[Triple] = []
    for slot in SLOT_ORDER:
        if slot not in garments:
            continue
        phrase, garment_triples = garment_caption(garments[slot])
        phrases.append(f"carrying {phrase}" if slot == "bag" and lead.endswith("wearing") else phrase)
        triples += garment_triples
    caption = f"{lead} {_join(phrases)}" if lead else _join(phrases)
    return caption, list(dict.fromkeys(triples))
