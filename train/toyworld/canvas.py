"""A label painter: shapes are painted as layer ids in z-order, and colours, LIP/ATR label maps and
per-owner masks are all read from the same id map, so every ground truth matches the picture.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

from .palette import pattern_mask

SUBPIXEL_BITS = 4
SUBPIXEL_SCALE = 1 << SUBPIXEL_BITS

Point = tuple[float, float] | np.ndarray


@dataclass(frozen=True)
class Layer:
    """One paintable surface.

    Args:
        name: what the surface is ("upper.collar", "skin.left_arm").
        owner: the thing it belongs to: a garment slot ("upper", "lower", "dress", "shoes", "bag")
            or a body part group ("skin", "face", "hair").
        lip: LIP label of its pixels.
        atr: ATR label of its pixels.
        rgb: main colour.
        pattern: "solid" or one of palette.TEXTURE_PATTERNS, drawn in ``pattern_rgb``.
        pattern_rgb: second colour of the pattern.
        period: pattern repeat in pixels.
        anchor: (x, y) pixel that fixes the pattern to the garment.
    """

    name: str
    owner: str
    lip: int
    atr: int
    rgb: tuple[int, int, int]
    pattern: str = "solid"
    pattern_rgb: tuple[int, int, int] | None = None
    period: float = 8.0
    anchor: tuple[float, float] = (0.0, 0.0)


@dataclass
class Canvas:
    """An (H, W) map of layer ids; id 0 is the background."""

    height: int
    width: int
    ids: np.ndarray = field(init=False)
    layers: list[Layer] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = np.zeros((self.height, self.width), dtype=np.int16)
        self.layers = [Layer("background", "background", 0, 0, (0, 0, 0))]

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    def add_layer(self, layer: Layer) -> int:
        """Register a layer and return its id."""
        self.layers.append(layer)
        return len(self.layers) - 1

    def paint(self, layer_id: int, mask: np.ndarray) -> None:
        """Paint ``mask`` (H, W) bool with ``layer_id`` over whatever is there."""
        self.ids[mask] = layer_id

    def owner_mask(self, owner: str) -> np.ndarray:
        """(H, W) bool: visible pixels of every layer that belongs to ``owner``."""
        owned = [index for index, layer in enumerate(self.layers) if layer.owner == owner and index > 0]
        return np.isin(self.ids, owned)

    def label_map(self, scheme: str) -> np.ndarray:
        """(H, W) uint8 label map in the "lip" or "atr" label set."""
        table = np.array([getattr(layer, scheme) for layer in self.layers], dtype=np.uint8)
        return table[self.ids]

    def compose(self, background_rgb: tuple[int, int, int]) -> np.ndarray:
        """(H, W, 3) uint8 RGB picture of the painted layers over ``background_rgb``."""
        table = np.array([background_rgb] + [layer.rgb for layer in self.layers[1:]], dtype=np.uint8)
        image = table[self.ids]  # (H, W, 3)
        for index, layer in enumerate(self.layers):
            if index == 0 or layer.pattern_rgb is None:
                continue
            where = self.ids == index
            if not where.any():
                continue
            second = pattern_mask(layer.pattern, self.shape, layer.period, layer.anchor)
            image[where & second] = layer.pattern_rgb
        return image


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * SUBPIXEL_SCALE).astype(np.int32)


def polygon_mask(shape: tuple[int, int], points: list[Point] | np.ndarray) -> np.ndarray:
    """(H, W) bool filled polygon through ``points`` given as (x, y) pixels."""
    buffer = np.zeros(shape, dtype=np.uint8)
    vertices = _fixed(np.asarray(points, dtype=np.float64).reshape(-1, 2))  # (N, 2)
    cv2.fillPoly(buffer, [vertices], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return buffer.astype(bool)


def ellipse_mask(
    shape: tuple[int, int], center: Point, axes: tuple[float, float], angle: float = 0.0,
    start: float = 0.0, end: float = 360.0,
) -> np.ndarray:
    """(H, W) bool filled ellipse (or sector) with half-axes ``axes`` in pixels, ``angle`` in degrees."""
    buffer = np.zeros(shape, dtype=np.uint8)
    center_fixed = tuple(int(value) for value in _fixed(center))
    axes_fixed = tuple(max(1, int(value)) for value in _fixed(axes))
    cv2.ellipse(buffer, center_fixed, axes_fixed, angle, start, end, 1, -1, cv2.LINE_8, SUBPIXEL_BITS)
    return buffer.astype(bool)


def circle_mask(shape: tuple[int, int], center: Point, radius: float) -> np.ndarray:
    """(H, W) bool filled disc."""
    return ellipse_mask(shape, center, (radius, radius))


def capsule_mask(shape: tuple[int, int], start: Point, end: Point, start_radius: float, end_radius: float) -> np.ndarray:
    """(H, W) bool tapered limb: discs at both ends joined by their common tangent quad."""
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    mask = circle_mask(shape, start, start_radius) | circle_mask(shape, end, end_radius)
    direction = end - start
    length = float(np.linalg.norm(direction))
    if length < 1e-6:
        return mask
    normal = np.array([-direction[1], direction[0]]) / length
    quad = [
        start + normal * start_radius, end + normal * end_radius,
        end - normal * end_radius, start - normal * start_radius,
    ]
    return mask | polygon_mask(shape, quad)


def text_mask(shape: tuple[int, int], text: str, box: tuple[float, float, float, float]) -> np.ndarray:
    """(H, W) bool glyphs of ``text`` fitted inside box (x0, y0, x1, y1); empty if the box is too small."""
    x0, y0, x1, y1 = box
    box_width, box_height = x1 - x0, y1 - y0
    buffer = np.zeros(shape, dtype=np.uint8)
    if box_width < 10 or box_height < 5:
        return buffer.astype(bool)
    font = cv2.FONT_HERSHEY_SIMPLEX
    (text_width, text_height), _ = cv2.getTextSize(text, font, 1.0, 1)
    font_scale = min(0.8 * box_width / text_width, 0.7 * box_height / text_height)
    thickness = max(1, int(round(font_scale * 2)))
    (text_width, text_height), _ = cv2.getTextSize(text, font, font_scale, thickness)
    origin = (int(round(x0 + (box_width - text_width) / 2)), int(round(y0 + (box_height + text_height) / 2)))
    cv2.putText(buffer, text, origin, font, font_scale, 1, thickness, cv2.LINE_8)
    box_mask = polygon_mask(shape, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    return buffer.astype(bool) & box_mask
