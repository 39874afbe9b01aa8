"""Named colours, skin and hair tones, and the surface patterns of toy-world garments.

Colours are plain sRGB triples chosen to stay apart from each other (pairwise RGB distance of
about 50 or more), so a pixel's nearest palette colour names its colour family. Garment colours
that sit close to a person's skin tone are not drawn for that person (``colors_far_from``).
"""

import colorsys
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NamedColor:
    """A palette colour.

    Args:
        name: the word used in captions and triples ("navy blue").
        rgb: sRGB in 0..255.
        neutral: True for colours that go with anything in the outfit rule (black, white, grey,
            navy blue, beige, brown).
    """

    name: str
    rgb: tuple[int, int, int]
    neutral: bool = False

    @property
    def hue(self) -> float:
        """Hue in degrees, 0..360 (meaningful for non-neutral colours)."""
        red, green, blue = (channel / 255.0 for channel in self.rgb)
        return colorsys.rgb_to_hsv(red, green, blue)[0] * 360.0


GARMENT_COLORS: tuple[NamedColor, ...] = (
    NamedColor("black", (25, 25, 28), neutral=True),
    NamedColor("white", (240, 240, 236), neutral=True),
    NamedColor("grey", (128, 128, 132), neutral=True),
    NamedColor("navy blue", (25, 35, 95), neutral=True),
    NamedColor("beige", (205, 185, 140), neutral=True),
    NamedColor("brown", (115, 70, 35), neutral=True),
    NamedColor("red", (200, 30, 40)),
    NamedColor("burgundy", (120, 20, 50)),
    NamedColor("orange", (235, 125, 30)),
    NamedColor("mustard yellow", (220, 175, 40)),
    NamedColor("olive green", (110, 120, 45)),
    NamedColor("green", (40, 140, 65)),
    NamedColor("teal", (20, 125, 130)),
    NamedColor("sky blue", (120, 180, 230)),
    NamedColor("blue", (35, 85, 200)),
    NamedColor("purple", (115, 55, 155)),
    NamedColor("pink", (235, 135, 175)),
)

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (244, 206, 170), (226, 176, 135), (196, 140, 100), (150, 100, 65), (100, 65, 45),
)

HAIR_COLORS: tuple[tuple[int, int, int], ...] = (
    (30, 25, 25), (70, 45, 30), (215, 185, 110), (140, 60, 35), (175, 175, 175),
)

FACE_FEATURE_RGB: tuple[int, int, int] = (45, 30, 30)
BACKGROUND_RGB: tuple[int, int, int] = (226, 229, 234)
SHOP_BACKGROUND_RGB: tuple[int, int, int] = (255, 255, 255)

PATTERNS: tuple[str, ...] = ("solid", "stripes", "dots", "checks", "logo patch")
TEXTURE_PATTERNS: tuple[str, ...] = ("stripes", "dots", "checks")

SKIN_MIN_DISTANCE = 60.0


class UnknownColorError(ValueError):
    """A colour name is not in the garment palette."""


class UnknownPatternError(ValueError):
    """A pattern name is not one of PATTERNS."""


def color_by_name(name: str) -> NamedColor:
    """The palette colour called ``name``; raises UnknownColorError listing the valid names."""
    for color in GARMENT_COLORS:
        if color.name == name:
            return color
    valid = ", ".join(color.name for color in GARMENT_COLORS)
    raise UnknownColorError(f"colour {name!r} is not in the toy-world palette ({valid})")


def rgb_distance(first: tuple[int, int, int], second: tuple[int, int, int]) -> float:
    """Euclidean distance between two sRGB triples in 0..255."""
    return float(np.linalg.norm(np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)))


def nearest_color(rgb: tuple[int, int, int], candidates: tuple[NamedColor, ...] = GARMENT_COLORS) -> NamedColor:
    """The candidate colour closest to ``rgb`` in RGB distance."""
    return min(candidates, key=lambda color: rgb_distance(color.rgb, rgb))


def colors_far_from(rgb: tuple[int, int, int], min_distance: float = SKIN_MIN_DISTANCE) -> tuple[NamedColor, ...]:
    """Palette colours at least ``min_distance`` away from ``rgb`` (used to keep garments off skin tone)."""
    return tuple(color for color in GARMENT_COLORS if rgb_distance(color.rgb, rgb) >= min_distance)


def pattern_mask(
    pattern: str, shape: tuple[int, int], period: float, anchor: tuple[float, float]
) -> np.ndarray:
    """Where a textured pattern shows its second colour, over a whole frame.

    Args:
        pattern: "stripes" (horizontal, a third of each period), "dots" (staggered discs,
            about a fifth of the area) or "checks" (crossing bands, about 44% of the area).
            "solid" and "logo patch" give an all-False mask (the logo is a garment part).
        shape: (height, width) of the frame.
        period: pattern repeat in pixels.
        anchor: (x, y) pixel the pattern is fixed to, so it moves with the garment.

    Returns:
        (H, W) bool mask, True where the pattern colour goes.
    """
    if pattern not in PATTERNS:
        raise UnknownPatternError(f"pattern {pattern!r} is not one of {PATTERNS}")
    height, width = shape
    if pattern not in TEXTURE_PATTERNS:
        return np.zeros(shape, dtype=bool)
    period = max(float(period), 3.0)
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5 - anchor[1]  # (H, 1)
    xs = np.arange(width, dtype=np.float64)[None, :] + 0.5 - anchor[0]  # (1, W)
    if pattern == "stripes":
        return np.broadcast_to(np.mod(ys, period) < period / 3.0, shape).copy()
    if pattern == "checks":
        return (np.mod(xs, period) < period / 4.0) | (np.mod(ys, period) < period / 4.0)
    row = np.floor(ys / period)
    shifted_x = xs - np.mod(row, 2.0) * period / 2.0  # (H, W)
    dx = np.mod(shifted_x, period) - period / 2.0
    dy = np.mod(ys, period) - period / 2.0
    return dx**2 + dy**2 < (0.28 * period) ** 2
