"""The attribute-binding toy world: one garment of two parts, each in its own colour, with its caption
and its knowledge-graph triples, so whether the right colour lands on the right part can be read
back inside each part's mask.

A picture is a dress on a white ground: the dress itself (its bodice) in one colour and its skirt in
another, never the same. The graph is the paper's: (dress, has-color, c_body), (dress, has-feature,
skirt), (skirt, has-color, c_part), always in that canonical order (as a parser writes it). The plain
caption is natural language and names the two parts in either order ("a red dress with a blue
skirt" / "a blue skirt on a red dress"), so in plain text the position of a colour word does not say
which part it belongs to; only its neighbouring noun does. Every colour and noun here is a single
token of the tiny tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...models.errors import AtelierError
from ..toyworld.palette import GARMENT_COLORS

GARMENT = "dress"
PART = "skirt"
BACKGROUND = (255, 255, 255)
CAPTION_ORDERS = ("body-first", "part-first")
DEFAULT_COLORS = ("red", "green", "blue", "black", "beige", "brown")
RGB_BY_NAME = {color.name: color.rgb for color in GARMENT_COLORS}
TRAIN_STREAM = 0
EVAL_STREAM = 1


class BindingWorldError(AtelierError, ValueError):
    """A binding-world option cannot be rendered; the message names the option."""


@dataclass(frozen=True)
class BindingWorldConfig:
    """Size and vocabulary of the binding world.

    Args:
        size: picture side in pixels.
        colors: palette colour names the parts take (at least 2; single words).
        jitter: largest shift of the garment's outline, in 1/64ths of the side.
        seed: the world's seed (training and evaluation pictures are separate streams of it).
    """

    size: int = 64
    colors: tuple[str, ...] = DEFAULT_COLORS
    jitter: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [name for name in self.colors if name not in RGB_BY_NAME]
        if unknown or len(set(self.colors)) < 2:
            raise BindingWorldError(f"--colors needs at least 2 distinct palette colours; unknown: {unknown}, "
                                    f"known: {sorted(RGB_BY_NAME)}")
        if self.size < 16:
            raise BindingWorldError(f"--size must be >= 16 pixels, got {self.size}")


@dataclass(frozen=True)
class BindingSample:
    """One picture's ground truth.

    Args:
        body: colour name of the dress's own (bodice) region.
        part: colour name of the skirt.
        order: which part the plain caption names first (one of CAPTION_ORDERS).
        image: (S, S, 3) uint8 picture.
        body_mask: (S, S) bool, the bodice.
        part_mask: (S, S) bool, the skirt.
    """

    body: str
    part: str
    order: str
    image: np.ndarray
    body_mask: np.ndarray
    part_mask: np.ndarray

    @property
    def caption(self) -> str:
        """The plain caption, in this sample's word order."""
        return caption_for(self.body, self.part, self.order)

    @property
    def triples(self) -> list[tuple[str, str, str]]:
        """The knowledge graph, in canonical order."""
        return triples_for(self.body, self.part)


def caption_for(body: str, part: str, order: str) -> str:
    """"a red dress with a blue skirt" (body-first) or "a blue skirt on a red dress" (part-first)."""
    if order == "body-first":
        return f"a {body} {GARMENT} with a {part} {PART}"
    return f"a {part} {PART} on a {body} {GARMENT}"


def triples_for(body: str, part: str) -> list[tuple[str, str, str]]:
    """(dress, has-color, body), (dress, has-feature, skirt), (skirt, has-color, part)."""
    return [(GARMENT, "has-color", body), (GARMENT, "has-feature", PART), (PART, "has-color", part)]


def _trapezoid(side: int, top: float, bottom: float, centre: float, half_top: float, half_bottom: float) -> np.ndarray:
    rows, cols = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5  # (S, S) pixel centres
    share = np.clip((rows - top) / max(bottom - top, 1e-6), 0.0, 1.0)  # (S, S) 0 at the top edge, 1 at the bottom
    half = half_top + (half_bottom - half_top) * share  # (S, S)
    return (rows >= top) & (rows < bottom) & (np.abs(cols - centre) < half)


def render(config: BindingWorldConfig, body: str, part: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dress picture (S, S, 3) uint8 and its bodice and skirt masks (S, S) bool; the outline
    shifts by up to ``config.jitter``/64 of the side."""
    side = config.size
    unit = side / 64.0
    shift = rng.integers(-config.jitter, config.jitter + 1, size=4) * unit  # centre, top, waist, hem
    centre = side / 2 + shift[0]
    top, waist, hem = 8 * unit + shift[1], 29 * unit + shift[2], 58 * unit + shift[3]
    body_mask = _trapezoid(side, top, waist, centre, 12 * unit, 9 * unit)
    part_mask = _trapezoid(side, waist, hem, centre, 9 * unit, 22 * unit)
    image = np.empty((side, side, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    image[body_mask] = RGB_BY_NAME[body]
    image[part_mask] = RGB_BY_NAME[part]
    return image, body_mask, part_mask


def colour_pairs(colors: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every ordered (body, part) pair of distinct colours."""
    return [(body, part) for body in colors for part in colors if body != part]


def training_samples(config: BindingWorldConfig, count: int) -> list[BindingSample]:
    """``count`` training pictures: random distinct colour pairs, caption orders and outlines."""
    rng = np.random.default_rng([config.seed, TRAIN_STREAM])
    pairs = colour_pairs(config.colors)
    samples = []
    for _ in range(count):
        body, part = pairs[int(rng.integers(len(pairs)))]
        order = CAPTION_ORDERS[int(rng.integers(len(CAPTION_ORDERS)))]
        samples.append(BindingSample(body, part, order, *render(config, body, part, rng)))
    return samples


def evaluation_samples(config: BindingWorldConfig, repeats: int) -> list[BindingSample]:
    """Every ordered colour pair ``repeats`` times, the caption order alternating with the repeat
    (body-first on even repeats: equally often for an even ``repeats``, 2 : 1 for 3), with fresh
    outlines from a stream the training pictures do not use."""
    rng = np.random.default_rng([config.seed, EVAL_STREAM])
    samples = []
    for repeat in range(repeats):
        for body, part in colour_pairs(config.colors):
            order = CAPTION_ORDERS[repeat % len(CAPTION_ORDERS)]
            samples.append(BindingSample(body, part, order, *render(config, body, part, rng)))
    return samples
