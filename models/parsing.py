"""Human parsing maps: LIP (20) and ATR (18) label sets, palette images, masks, agnostic masks, boxes.

Conventions:

- A label map is an (H, W) integer array whose values index a :class:`LabelSet` (``LIP`` or
  ``ATR``, names and PASCAL-VOC palettes from ``models.labels``). Masks are (H, W) bool arrays.
- A palette image is (H, W, 3) uint8 RGB where each pixel is exactly its class colour. Reading one
  back is an exact colour match: any colour outside the palette (JPEG artefacts, anti-aliased
  edges, a different palette) raises :class:`UnknownPaletteColourError` listing the offending
  colours and their pixel counts, never a guessed class.
- Boxes are ``(x0, y0, x1, y1)`` integer pixel bounds with x1, y1 exclusive, so
  ``image[y0:y1, x0:x1]`` is the crop.
- Agnostic masks (the region a try-on model repaints) are computed on **LIP** label maps; convert
  ATR maps (DressCode) first with :func:`convert_label_map`. Recipe in :func:`agnostic_mask`.
- VITON-HD's image-parse-v3 maps are LIP-indexed except that index 10 ("jumpsuits") marks the
  neck; the upper-body recipe covers index 10 either way, so both readings give the same mask.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from .errors import AtelierError
from .labels import ATR_LABELS, ATR_PALETTE, LIP_LABELS, LIP_PALETTE
from .pose import BodyPose

logger = logging.getLogger("atelier.models.parsing")

Box = tuple[int, int, int, int]
GarmentType = Literal["upper", "lower", "dress"]
FallbackMode = Literal["nearest", "raise"]


class ParsingError(AtelierError, ValueError):
    """Base class of parsing-map errors; the message names the input to fix."""


class UnknownPaletteColourError(ParsingError):
    """A palette image holds colours that are not in the label set's palette."""


class UnknownLabelError(ParsingError):
    """A label name or id that the label set does not have."""


class UnmappableLabelError(ParsingError):
    """A label map holds classes with no counterpart in the target label set (``fallback="raise"``)."""


@dataclass(frozen=True)
class LabelSet:
    """A human-parsing label set: class names in index order and one RGB colour per class.

    Args:
        name: short name ("lip", "atr").
        labels: class names; index i is label id i.
        palette: RGB colour of each class, same order.
    """

    name: str
    labels: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, name: str) -> int:
        """Label id of ``name``; raises :class:`UnknownLabelError` with the known names."""
        try:
            return self.labels.index(name)
        except ValueError:
            raise UnknownLabelError(
                f"{self.name.upper()} has no label {name!r}; labels: {', '.join(self.labels)}"
            ) from None

    def ids(self, names: Iterable[str]) -> list[int]:
        """Label ids of several names, in the given order."""
        return [self.index(name) for name in names]


LIP = LabelSet("lip", LIP_LABELS, LIP_PALETTE)
ATR = LabelSet("atr", ATR_LABELS, ATR_PALETTE)


def labels_to_palette_image(label_map: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """(H, W) label ids -> (H, W, 3) uint8 palette image. Out-of-range ids raise :class:`UnknownLabelError`."""
    label_map = np.asarray(label_map)
    _check_label_range(label_map, label_set, "label map")
    palette = np.asarray(label_set.palette, dtype=np.uint8)  # (C, 3)
    return palette[label_map.astype(np.int64)]  # (H, W, 3)


def palette_image_to_labels(image: np.ndarray, label_set: LabelSet, *, max_listed: int = 5) -> np.ndarray:
    """(H, W, 3) uint8 palette image -> (H, W) int64 label ids by exact colour match.

    Raises:
        UnknownPaletteColourError: some pixels match no class colour; the message lists the
            ``max_listed`` most frequent offending colours with pixel counts.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ParsingError(f"palette image must be (H, W, 3) RGB, got shape {image.shape}")
    rgb = image.astype(np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # (H, W)
    palette_codes = np.array([(r << 16) | (g << 8) | b for r, g, b in label_set.palette], dtype=np.int64)
    order = np.argsort(palette_codes)
    sorted_codes = palette_codes[order]
    position = np.clip(np.searchsorted(sorted_codes, codes), 0, len(sorted_codes) - 1)
    known = sorted_codes[position] == codes
    if not known.all():
        colours, counts = np.unique(codes[~known], return_counts=True)
        top = np.argsort(-counts, kind="stable")[:max_listed]
        listed = ", ".join(
            f"({c >> 16}, {(c >> 8) & 255}, {c & 255}): {n} px" for c, n in zip(colours[top], counts[top])
        )
        raise UnknownPaletteColourError(
            f"palette image has {int((~known).sum())} pixels in {len(colours)} colour(s) outside the "
            f"{label_set.name.upper()} palette, e.g. {listed}. Save label maps as lossless PNG with exact "
            f"class colours (or as single-channel label ids)."
        )
    return order[position].astype(np.int64)  # (H, W)


def load_label_map(path: str | Path, label_set: LabelSet) -> np.ndarray:
    """Read a label map file as (H, W) int64 ids.

    Palette-mode ("P") and grey ("L"/"I") PNGs hold ids directly (VITON-HD image-parse, DressCode
    label_maps, SCHP output); RGB images are decoded by exact palette colour.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label map not found: {path}")
    with Image.open(path) as image:
        if image.mode in ("P", "L", "I", "I;16"):
            label_map = np.asarray(image).astype(np.int64)
            _check_label_range(label_map, label_set, str(path))
            return label_map
        rgb = np.asarray(image.convert("RGB"))
    try:
        return palette_image_to_labels(rgb, label_set)
    except UnknownPaletteColourError as error:
        raise UnknownPaletteColourError(f"{path}: {error}") from None


def category_mask(label_map: np.ndarray, label_set: LabelSet, names: str | Iterable[str]) -> np.ndarray:
    """(H, W) bool mask of the pixels whose class is one of ``names``."""
    names = [names] if isinstance(names, str) else list(names)
    return np.isin(label_map, label_set.ids(names))


def category_masks(label_map: np.ndarray, label_set: LabelSet) -> dict[str, np.ndarray]:
    """One (H, W) bool mask per class present in the map, keyed by class name."""
    return {label_set.labels[i]: label_map == i for i in np.unique(label_map).tolist()}


def bounding_box(mask: np.ndarray, *, margin: int = 0, min_pixels: int = 1) -> Box | None:
    """Tight box ``(x0, y0, x1, y1)`` (exclusive ends) of a bool mask, grown by ``margin`` and
    clipped to the image; ``None`` when the mask has fewer than ``min_pixels`` pixels."""
    ys, xs = np.nonzero(mask)
    if len(xs) < max(1, min_pixels):
        return None
    height, width = mask.shape
    return (
        max(0, int(xs.min()) - margin), max(0, int(ys.min()) - margin),
        min(width, int(xs.max()) + 1 + margin), min(height, int(ys.max()) + 1 + margin),
    )


# LIP regions TruePose crops for CLIP (CAA); each region is a union of LIP classes.
LIP_REGIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "hair": ("hat", "hair"),
    "face": ("face", "sunglasses"),
    "upper": ("upper_clothes", "coat", "jumpsuits", "scarf"),
    "dress": ("dress",),
    "lower": ("pants", "skirt"),
    "arms": ("left_arm", "right_arm", "glove"),
    "legs": ("left_leg", "right_leg", "socks"),
    "shoes": ("left_shoe", "right_shoe"),
})


def region_boxes(
    label_map: np.ndarray,
    label_set: LabelSet = LIP,
    regions: Mapping[str, Sequence[str]] | None = None,
    *,
    margin: int = 0,
    min_pixels: int = 1,
) -> dict[str, Box]:
    """Bounding box of each region present in the map.

    Args:
        label_map: (H, W) ids of ``label_set``.
        label_set: LIP or ATR.
        regions: region name -> class names; defaults to :data:`LIP_REGIONS` for LIP and to one
            region per class (except background) otherwise.
        margin: pixels added on each side (clipped to the image).
        min_pixels: regions with fewer pixels are left out.

    Returns:
        region name -> (x0, y0, x1, y1); absent regions are not keys.
    """
    if regions is None:
        regions = LIP_REGIONS if label_set == LIP else {name: (name,) for name in label_set.labels[1:]}
    boxes = {}
    for region, names in regions.items():
        box = bounding_box(category_mask(label_map, label_set, names), margin=margin, min_pixels=min_pixels)
        if box is not None:
            boxes[region] = box
    return boxes


@dataclass
class AgnosticMaskConfig:
    """Sizes of the agnostic-mask recipe, as fractions of the image height.

    Args:
        dilation: radius of the elliptical dilation of the garment region.
        closing: radius of the closing that fills holes between garment parts.
        limb_width: thickness of the arm/leg strokes drawn from keypoints (when a pose is given).
        hand_radius: radius of the protected disc around each hand (when a pose is given).
        keep_hands: protect skin (arm-labelled) pixels of the hands from the mask.
    """

    dilation: float = 0.02
    closing: float = 0.04
    limb_width: float = 0.05
    hand_radius: float = 0.05
    keep_hands: bool = True


# LIP classes replaced by a new garment of each type (VITON-HD / DressCode practice: the garment,
# the skin it may cover or uncover, and for "upper" LIP index 10, which VITON-HD uses for the neck).
AGNOSTIC_COVERED: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "upper": ("upper_clothes", "coat", "jumpsuits", "scarf", "left_arm", "right_arm", "glove"),
    "lower": ("pants", "skirt", "left_leg", "right_leg", "socks"),
    "dress": (
        "upper_clothes", "coat", "dress", "jumpsuits", "scarf", "pants", "skirt",
        "left_arm", "right_arm", "glove", "left_leg", "right_leg", "socks",
    ),
})
# LIP classes never masked for each garment type.
AGNOSTIC_PROTECTED: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "upper": ("hat", "hair", "sunglasses", "face", "pants", "skirt", "left_leg", "right_leg",
              "socks", "left_shoe", "right_shoe"),
    "lower": ("hat", "hair", "sunglasses", "face", "upper_clothes", "coat", "scarf",
              "left_arm", "right_arm", "glove", "left_shoe", "right_shoe"),
    "dress": ("hat", "hair", "sunglasses", "face", "left_shoe", "right_shoe"),
})
_ARM_CHAINS = ((2, 3, 4), (5, 6, 7))      # shoulder, elbow, wrist (right, left)
_LEG_CHAINS = ((8, 9, 10), (11, 12, 13))  # hip, knee, ankle (right, left)


def agnostic_mask(
    label_map: np.ndarray,
    garment: GarmentType,
    pose: BodyPose | None = None,
    config: AgnosticMaskConfig | None = None,
) -> np.ndarray:
    """The region to repaint when the ``garment`` on a person is replaced (VITON-HD / DressCode recipe).

    Recipe, on a LIP label map of height H:

    1. start from the classes in :data:`AGNOSTIC_COVERED` for the garment type (the garment plus
       the skin a different cut may cover: arms for upper, legs for lower, both for dress);
    2. with a pose, add strokes of ``limb_width * H`` along the arms (upper, dress) or legs
       (lower, dress), so a short sleeve can become a long one;
    3. dilate by an ellipse of radius ``dilation * H`` and close holes with radius ``closing * H``;
    4. remove the classes in :data:`AGNOSTIC_PROTECTED` (face, hair and hat always; the other
       garment's classes and shoes), and with a pose and ``keep_hands``, the arm-labelled pixels
       within ``hand_radius * H`` of each hand (wrist pushed 30% further along the forearm).

    Args:
        label_map: (H, W) LIP label ids.
        garment: "upper", "lower" or "dress".
        pose: optional pose on the same canvas (rescaled to the map if its canvas differs).
        config: recipe sizes; defaults to :class:`AgnosticMaskConfig`.

    Returns:
        (H, W) bool mask, True where the garment will be repainted.
    """
    if garment not in AGNOSTIC_COVERED:
        raise ParsingError(f"garment must be one of {sorted(AGNOSTIC_COVERED)}, got {garment!r}")
    config = config or AgnosticMaskConfig()
    label_map = np.asarray(label_map)
    _check_label_range(label_map, LIP, "agnostic_mask label map")
    height, width = label_map.shape
    mask = category_mask(label_map, LIP, AGNOSTIC_COVERED[garment]).astype(np.uint8)  # (H, W)
    if pose is not None:
        pose = pose.resized(width, height) if (pose.canvas_width, pose.canvas_height) != (width, height) else pose
        chains = {"upper": _ARM_CHAINS, "lower": _LEG_CHAINS, "dress": _ARM_CHAINS + _LEG_CHAINS}[garment]
        _draw_chains(mask, pose, chains, max(1, round(config.limb_width * height)))
    mask = cv2.dilate(mask, _disc(round(config.dilation * height)))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _disc(round(config.closing * height)))
    protected = category_mask(label_map, LIP, AGNOSTIC_PROTECTED[garment])
    if pose is not None and config.keep_hands and garment != "lower":
        protected |= _hand_skin(label_map, pose, max(1, round(config.hand_radius * height)))
    return mask.astype(bool) & ~protected


# Classes that exist in both sets under the same name map one to one; these are the rest.
# LIP -> ATR: coat is an upper garment, a jumpsuit is closest to a dress; glove and socks go to
# the nearer arm / leg (left or right is decided per pixel by distance).
_LIP_TO_ATR_NEAREST: Mapping[str, str | tuple[str, str]] = MappingProxyType({
    "coat": "upper_clothes",
    "jumpsuits": "dress",
    "glove": ("left_arm", "right_arm"),
    "socks": ("left_leg", "right_leg"),
})
# ATR -> LIP: a belt is worn with the lower garment; LIP has no bag class, so a bag is background.
_ATR_TO_LIP_NEAREST: Mapping[str, str | tuple[str, str]] = MappingProxyType({
    "belt": "pants",
    "bag": "background",
})


def convert_label_map(
    label_map: np.ndarray,
    source: LabelSet,
    target: LabelSet,
    *,
    fallback: FallbackMode = "nearest",
) -> np.ndarray:
    """Convert a label map between LIP and ATR.

    Classes with the same name (16 of them: background, hat, hair, sunglasses, upper_clothes,
    dress, pants, skirt, scarf, face, arms, legs, shoes) map one to one. The others follow the
    documented nearest class (LIP coat -> upper_clothes, jumpsuits -> dress, glove -> nearer arm,
    socks -> nearer leg; ATR belt -> pants, bag -> background), or raise
    :class:`UnmappableLabelError` (with pixel counts) when ``fallback="raise"``.

    Returns:
        (H, W) int64 ids of ``target``.
    """
    label_map = np.asarray(label_map)
    _check_label_range(label_map, source, f"{source.name.upper()} label map")
    if source == target:
        return label_map.astype(np.int64)
    if (source, target) not in ((LIP, ATR), (ATR, LIP)):
        raise ParsingError(f"no conversion from {source.name} to {target.name}; only LIP <-> ATR")
    nearest_table = _LIP_TO_ATR_NEAREST if (source, target) == (LIP, ATR) else _ATR_TO_LIP_NEAREST
    lookup = np.full(len(source), -1, dtype=np.int64)
    for index, name in enumerate(source.labels):
        if name in target.labels:
            lookup[index] = target.index(name)
    converted = lookup[label_map.astype(np.int64)]  # (H, W); -1 where no same-name class
    unmapped = [source.labels[i] for i in np.unique(label_map).tolist() if lookup[i] < 0]
    if unmapped and fallback == "raise":
        counts = ", ".join(f"{name}: {int((label_map == source.index(name)).sum())} px" for name in unmapped)
        raise UnmappableLabelError(
            f"{source.name.upper()} classes without a {target.name.upper()} counterpart are present ({counts}); "
            f"use fallback='nearest' to map them to the documented nearest class"
        )
    for name in unmapped:
        pixels = label_map == source.index(name)
        choice = nearest_table[name]
        if isinstance(choice, str):
            converted[pixels] = target.index(choice)
        else:
            converted[pixels] = _nearer_side(converted, pixels, target.index(choice[0]), target.index(choice[1]))
    return converted


def _nearer_side(converted: np.ndarray, pixels: np.ndarray, left_id: int, right_id: int) -> np.ndarray:
    """For each True pixel, the id of the nearer of two classes already in ``converted``.

    With neither class present, the person is assumed to face the camera: their left side is on
    the image's right half.
    """
    height, width = converted.shape
    distances = []
    for class_id in (left_id, right_id):
        present = converted == class_id
        if present.any():
            free = (~present).astype(np.uint8)
            distances.append(cv2.distanceTransform(free, cv2.DIST_L2, 3))
        else:
            distances.append(np.full((height, width), np.inf, dtype=np.float32))
    if np.isinf(distances[0]).all() and np.isinf(distances[1]).all():
        columns = np.broadcast_to(np.arange(width)[None, :], (height, width))
        return np.where(columns[pixels] >= width / 2, left_id, right_id)
    return np.where(distances[0][pixels] <= distances[1][pixels], left_id, right_id)


def _draw_chains(mask: np.ndarray, pose: BodyPose, chains: Sequence[Sequence[int]], thickness: int) -> None:
    visible = pose.visible()
    for chain in chains:
        for start, end in zip(chain[:-1], chain[1:]):
            if visible[start] and visible[end]:
                p0 = tuple(int(round(v)) for v in pose.keypoints[start])
                p1 = tuple(int(round(v)) for v in pose.keypoints[end])
                cv2.line(mask, p0, p1, 1, thickness)


def _hand_skin(label_map: np.ndarray, pose: BodyPose, radius: int) -> np.ndarray:
    hands = np.zeros(label_map.shape, dtype=np.uint8)
    visible = pose.visible()
    for _, elbow, wrist in _ARM_CHAINS:
        if not visible[wrist]:
            continue
        center = pose.keypoints[wrist]
        if visible[elbow]:
            center = center + 0.3 * (pose.keypoints[wrist] - pose.keypoints[elbow])
        cv2.circle(hands, (int(round(center[0])), int(round(center[1]))), radius, 1, thickness=-1)
    return hands.astype(bool) & category_mask(label_map, LIP, ("left_arm", "right_arm", "glove"))


def _disc(radius: int) -> np.ndarray:
    size = 2 * max(0, int(radius)) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _check_label_range(label_map: np.ndarray, label_set: LabelSet, source: str) -> None:
    if label_map.size == 0:
        return
    low, high = int(label_map.min()), int(label_map.max())
    if low < 0 or high >= len(label_set):
        bad = np.unique(label_map[(label_map < 0) | (label_map >= len(label_set))])[:5].tolist()
        raise UnknownLabelError(
            f"{source}: label ids {bad} are outside {label_set.name.upper()}'s 0..{len(label_set) - 1}; "
            f"is this map in another label set?"
        )
