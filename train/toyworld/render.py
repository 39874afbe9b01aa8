"""Render a dressed person, or one garment laid flat, together with its ground truth.

Label conventions (indices are looked up in ``models.labels`` by name):

- LIP parsing: upper garments are ``upper_clothes`` (jackets too; LIP's ``coat`` is not used),
  dresses ``dress``, trousers/jeans/shorts ``pants``, skirts ``skirt``, shoes ``left_shoe`` /
  ``right_shoe``, hair ``hair``, arms and legs by the person's own side (as COCO keypoints).
  LIP has no class for the neck, bare torso or a bag: neck and torso skin are labelled ``face``
  (``masks["neck"]`` holds them, for data sets such as VITON-HD that give the neck its own
  label), and a bag is ``background`` (``masks["bag"]`` holds it).
- ATR parsing: the same, with ``belt`` for a belted waist and ``bag`` for a bag.
- Agnostic masks hide where a garment of that kind could be on this body, not the garment's own
  outline (so they do not leak its shape): ``agnostic_upper`` covers the torso (loose fit, long
  hem), both arms and the neck; ``agnostic_lower`` covers hips and both legs down to the ankles;
  ``agnostic_dress`` covers both. Each is dilated a little, and never covers the head, the hair,
  the shoes, the bag, or the visible pixels of the garment that is kept (the lower garment for
  ``agnostic_upper``; the upper garment and the arms for ``agnostic_lower``).
"""

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ...models.labels import ATR_LABELS, LIP_LABELS
from .body import BodyGeometry, Identity, Pose, place_body
from .body_paint import (
    arm_mask,
    back_hair_mask,
    face_feature_mask,
    hair_cap_mask,
    head_mask,
    leg_mask,
    neck_mask,
    torso_skin_mask,
)
from .canvas import Canvas, Layer, capsule_mask, polygon_mask
from .garment_paint import (
    PATTERN_PERIOD,
    Piece,
    bag_pieces,
    cloth_piece,
    shoe_pieces,
    skirt_mask,
    sleeve_mask,
    torso_mask,
    trousers_mask,
    upper_detail_pieces,
)
from .garments import GarmentSpec
from .palette import BACKGROUND_RGB, FACE_FEATURE_RGB, SHOP_BACKGROUND_RGB

LIP = {name: index for index, name in enumerate(LIP_LABELS)}
ATR = {name: index for index, name in enumerate(ATR_LABELS)}

UPPER_HEM = {"cropped": -0.05, "long": 0.1}
DRESS_BODICE_HEM = -0.04
SHOP_IDENTITY = Identity((0, 0, 0), (0, 0, 0), "short", 0.105, 0.078, 1.0, 1.0, 0.9)
SHOP_POSE = Pose("shop", (24.0, 14.0), (24.0, 14.0), (6.0, 2.0), (6.0, 2.0))
SHOP_SHOE_POSE = Pose("shop_shoes", (10.0, 5.0), (10.0, 5.0), (8.0, 2.0), (8.0, 2.0), yaw=0.9)
SHOP_FILL = 0.84
FRONT_ONLY_PIECES = frozenset({"pocket", "logo patch", "logo text"})


class EmptyGarmentError(ValueError):
    """A garment rendered to no pixels (its geometry fell outside the frame)."""


@dataclass(frozen=True)
class Render:
    """One rendered picture and its ground truth.

    Args:
        image: (H, W, 3) uint8 RGB.
        parsing: (H, W) uint8 LIP labels.
        parsing_atr: (H, W) uint8 ATR labels.
        masks: (H, W) bool masks: one per worn slot ("upper", "lower", "dress", "shoes", "bag"),
            "person", "skin", "neck", "face", "hair", "agnostic_upper", "agnostic_lower",
            "agnostic_dress".
    """

    image: np.ndarray
    parsing: np.ndarray
    parsing_atr: np.ndarray
    masks: dict[str, np.ndarray]


def _garment_labels(spec: GarmentSpec, piece: Piece) -> tuple[int, int]:
    if spec.slot == "shoes":
        name = piece.name
        return LIP[name], ATR[name]
    if spec.slot == "bag":
        return LIP["background"], ATR["bag"]
    if spec.slot == "lower":
        name = "skirt" if spec.kind == "skirt" else "pants"
        return LIP[name], ATR[name]
    name = "dress" if spec.slot == "dress" else "upper_clothes"
    return LIP[name], ATR["belt"] if piece.name == "belt" else ATR[name]


def paint_piece(canvas: Canvas, spec: GarmentSpec, piece: Piece) -> None:
    """Add a garment piece to the canvas as its own layer, owned by the garment's slot."""
    if not piece.mask.any():
        return
    lip, atr = _garment_labels(spec, piece)
    layer = Layer(
        name=f"{spec.slot}.{piece.name}", owner=spec.slot, lip=lip, atr=atr, rgb=piece.color.rgb,
        pattern=piece.pattern, pattern_rgb=piece.pattern_color.rgb if piece.pattern_color else None,
        period=piece.period, anchor=piece.anchor,
    )
    canvas.paint(canvas.add_layer(layer), piece.mask)


def _paint_skin(canvas: Canvas, name: str, owner: str, label: str, rgb: tuple[int, int, int], mask: np.ndarray) -> None:
    canvas.paint(canvas.add_layer(Layer(name, owner, LIP[label], ATR[label], rgb)), mask)


def upper_body_pieces(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int]) -> list[Piece]:
    """Torso cloth and details of an upper garment, or the bodice of a dress."""
    if spec.slot == "dress":
        hem = DRESS_BODICE_HEM
    else:
        hem = next((UPPER_HEM[style] for style in spec.styles if style in UPPER_HEM), 0.035)
    body = torso_mask(spec, g, shape, hem)
    return [cloth_piece(spec, "body", body, g)] + upper_detail_pieces(spec, g, shape, body)


def lower_body_piece(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int]) -> Piece:
    """Trousers or skirt, or the skirt of a dress."""
    if spec.slot == "dress" or spec.kind == "skirt":
        return cloth_piece(spec, "skirt", skirt_mask(spec, g, shape), g)
    return cloth_piece(spec, "body", trousers_mask(spec, g, shape), g)


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    size = max(1, int(round(radius)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * size + 1, 2 * size + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _upper_region(g: BodyGeometry, shape: tuple[int, int]) -> np.ndarray:
    reach = g.units(0.03)
    region = neck_mask(g, shape) | polygon_mask(shape, [
        g.point("right_shoulder") + np.array([-reach, -g.units(0.02)]),
        g.point("left_shoulder") + np.array([reach, -g.units(0.02)]),
        g.point("left_hip") + np.array([reach + g.radii["thigh"] * 0.5, g.units(0.1)]),
        g.point("right_hip") + np.array([-reach - g.radii["thigh"] * 0.5, g.units(0.1)]),
    ])
    for side in ("right", "left"):
        shoulder, elbow, wrist = (g.point(f"{side}_{joint}") for joint in ("shoulder", "elbow", "wrist"))
        region |= capsule_mask(shape, shoulder, elbow, g.radii["upper_arm"] + reach, g.radii["forearm"] + reach)
        region |= capsule_mask(shape, elbow, wrist, g.radii["forearm"] + reach, g.radii["forearm"] + reach)
    return region


def _lower_region(g: BodyGeometry, shape: tuple[int, int]) -> np.ndarray:
    reach = g.units(0.03)
    top = g.hip_center[1] - g.units(0.08)
    width = g.hip_half + g.radii["thigh"] + reach
    region = polygon_mask(shape, [
        (g.hip_center[0] - width, top), (g.hip_center[0] + width, top),
        g.point("left_hip") + np.array([g.radii["thigh"] + reach, g.units(0.05)]),
        g.point("right_hip") - np.array([g.radii["thigh"] + reach, -g.units(0.05)]),
    ])
    for side in ("right", "left"):
        hip, knee, ankle = (g.point(f"{side}_{joint}") for joint in ("hip", "knee", "ankle"))
        region |= capsule_mask(shape, hip, knee, g.radii["thigh"] + reach, g.radii["shin"] + reach)
        region |= capsule_mask(shape, knee, ankle, g.radii["shin"] + reach, g.radii["shin"] + reach)
    return region


def agnostic_masks(canvas: Canvas, g: BodyGeometry) -> dict[str, np.ndarray]:
    """Agnostic masks from the render's own ground truth (see module docstring)."""
    shape = canvas.shape
    grow = g.units(0.015)
    owner_names = ("upper", "lower", "dress", "shoes", "bag", "face", "hair", "arms")
    owners = {owner: canvas.owner_mask(owner) for owner in owner_names}
    keep_always = owners["face"] | owners["hair"] | owners["shoes"] | owners["bag"]
    upper_region = _dilate(_upper_region(g, shape) | owners["upper"] | owners["dress"], grow)
    lower_region = _dilate(_lower_region(g, shape) | owners["lower"] | owners["dress"], grow)
    legs = canvas.owner_mask("legs")
    return {
        "agnostic_upper": upper_region & ~(keep_always | owners["lower"] | legs),
        "agnostic_lower": lower_region & ~(keep_always | owners["upper"] | owners["arms"]),
        "agnostic_dress": (upper_region | lower_region) & ~keep_always,
    }


def far_side(yaw: float) -> str | None:
    """The arm ("left" / "right") a turn of ``yaw`` puts behind the torso, or None for a frontal body."""
    if yaw > 0.25:
        return "left"
    if yaw < -0.25:
        return "right"
    return None


def render_person(
    identity: Identity, g: BodyGeometry, garments: dict[str, GarmentSpec], frame: tuple[int, int],
    background_rgb: tuple[int, int, int] = BACKGROUND_RGB, from_behind: bool = False,
) -> Render:
    """Paint a dressed person in z-order and read picture, parsing maps and masks off the canvas.

    Args:
        identity: skin, hair and proportions.
        g: the posed body in pixels (``body.place_body``).
        garments: specs by slot; "upper" + "lower" or "dress", plus "shoes" and optionally "bag".
        frame: (height, width).
        background_rgb: colour behind the person.
        from_behind: paint the back of the person on the front's geometry (``views`` mirrors it): the
            head is all hair, long hair falls over the back, and FRONT_ONLY_PIECES are left out.
    """
    canvas = Canvas(*frame)
    shape = canvas.shape
    skin = identity.skin_rgb
    upper = garments.get("dress") or garments.get("upper")
    far = far_side(g.yaw)
    sides = [side for side in ("right", "left") if side != far]

    def paint_arm(side: str) -> None:
        _paint_skin(canvas, f"skin.{side}_arm", "arms", f"{side}_arm", skin, arm_mask(g, shape, side))
        if upper is not None:
            paint_piece(canvas, upper, cloth_piece(upper, f"{side}_sleeve", sleeve_mask(upper, g, shape, side), g))

    back_hair = back_hair_mask(g, identity, shape)
    if not from_behind:
        _paint_skin(canvas, "hair.back", "hair", "hair", identity.hair_rgb, back_hair)
    if far is not None:
        paint_arm(far)
    for side in ("right", "left"):
        _paint_skin(canvas, f"skin.{side}_leg", "legs", f"{side}_leg", skin, leg_mask(g, shape, side))
    _paint_skin(canvas, "skin.torso", "neck", "face", skin, torso_skin_mask(g, shape))
    for slot in ("lower", "dress"):
        if slot in garments:
            paint_piece(canvas, garments[slot], lower_body_piece(garments[slot], g, shape))
    if "shoes" in garments:
        for piece in shoe_pieces(garments["shoes"], g, shape):
            paint_piece(canvas, garments["shoes"], piece)
    if upper is not None:
        for piece in upper_body_pieces(upper, g, shape):
            if not (from_behind and piece.name in FRONT_ONLY_PIECES):
                paint_piece(canvas, upper, piece)
    for side in sides:
        paint_arm(side)
    if "bag" in garments:
        for piece in bag_pieces(garments["bag"], g, shape):
            if not (from_behind and piece.name in FRONT_ONLY_PIECES):
                paint_piece(canvas, garments["bag"], piece)
    if from_behind:
        head = back_hair | head_mask(g, shape) | hair_cap_mask(g, identity, shape)
        _paint_skin(canvas, "hair.back_of_head", "hair", "hair", identity.hair_rgb, head)
    else:
        _paint_skin(canvas, "skin.head", "face", "face", skin, head_mask(g, shape))
        _paint_skin(canvas, "face.features", "face", "face", FACE_FEATURE_RGB, face_feature_mask(g, shape))
        _paint_skin(canvas, "hair.cap", "hair", "hair", identity.hair_rgb, hair_cap_mask(g, identity, shape))

    masks = {slot: canvas.owner_mask(slot) for slot in ("upper", "lower", "dress", "shoes", "bag")}
    masks["person"] = canvas.ids > 0
    masks["neck"] = canvas.owner_mask("neck")
    masks["face"] = canvas.owner_mask("face")
    masks["hair"] = canvas.owner_mask("hair")
    masks["skin"] = masks["neck"] | masks["face"] | canvas.owner_mask("arms") | canvas.owner_mask("legs")
    masks.update(agnostic_masks(canvas, g))
    return Render(canvas.compose(background_rgb), canvas.label_map("lip"), canvas.label_map("atr"), masks)


def _shop_pieces(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int]) -> list[Piece]:
    if spec.slot == "shoes":
        return shoe_pieces(spec, g, shape)
    if spec.slot == "bag":
        return bag_pieces(spec, g, shape, shop=True)
    if spec.slot == "lower":
        return [lower_body_piece(spec, g, shape)]
    pieces = [cloth_piece(spec, f"{side}_sleeve", sleeve_mask(spec, g, shape, side), g) for side in ("right", "left")]
    if spec.slot == "dress":
        pieces.insert(0, lower_body_piece(spec, g, shape))
    return pieces + upper_body_pieces(spec, g, shape)


def render_shop(spec: GarmentSpec, frame: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The garment laid flat on white, centred and filling most of the frame ("in-shop" picture).

    The same painting code as the worn garment runs on a canonical standing body (arms slightly
    out), zoomed so the garment's box fills ``SHOP_FILL`` of the frame: parts, pattern and
    colours correspond one to one with the worn garment. The pattern keeps the repeat it has on a
    person who fills the frame, so small items (shoes, bags) do not get giant stripes.

    Returns:
        image (H, W, 3) uint8 and mask (H, W) bool.
    """
    height, width = frame
    probe_factor = max(1.0, 512.0 / max(height, width))
    probe_frame = (int(math.ceil(height * probe_factor)), int(math.ceil(width * probe_factor)))
    probe = place_body(SHOP_IDENTITY, SHOP_SHOE_POSE if spec.slot == "shoes" else SHOP_POSE, probe_frame)
    probe_mask = np.zeros(probe_frame, dtype=bool)
    for piece in _shop_pieces(spec, probe, probe_frame):
        probe_mask |= piece.mask
    if not probe_mask.any():
        raise EmptyGarmentError(f"{spec.kind} ({spec.slot}) rendered no pixels in a {probe_frame} probe frame")
    ys, xs = np.nonzero(probe_mask)
    box_width, box_height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    zoom = min(SHOP_FILL * width / box_width, SHOP_FILL * height / box_height)
    box_center = np.array([(xs.max() + xs.min() + 1) / 2.0, (ys.max() + ys.min() + 1) / 2.0])
    offset = np.array([width / 2.0, height / 2.0]) - box_center * zoom
    g = probe.zoomed(zoom, (float(offset[0]), float(offset[1])))
    period = probe.units(PATTERN_PERIOD) / probe_factor
    canvas = Canvas(height, width)
    for piece in _shop_pieces(spec, g, canvas.shape):
        paint_piece(canvas, spec, replace(piece, period=period))
    return canvas.compose(SHOP_BACKGROUND_RGB), canvas.ids > 0
