"""Shapes of garments on a posed body (worn) or laid out flat (in-shop), as masks with colours.

Every function returns ``Piece``s: a mask plus how to fill it. ``render`` turns pieces into canvas
layers (labels, owner) and decides the z-order. Sizes are in body units (``g.units``) so a garment
looks the same at 64 px and at 256 px.
"""

from dataclasses import dataclass

import numpy as np

from .body import BodyGeometry
from .canvas import capsule_mask, ellipse_mask, polygon_mask, text_mask
from .garments import GarmentSpec
from .palette import NamedColor

EASE = {"slim": 0.008, "": 0.014, "loose": 0.024, "wide": 0.014, "cropped": 0.014, "long": 0.016}
LOGO_TEXT = "ATL"
PATTERN_PERIOD = 0.045


@dataclass(frozen=True)
class Piece:
    """A painted piece of a garment.

    Args:
        name: piece name ("body", "collar", "left_shoe", ...).
        mask: (H, W) bool.
        color: fill colour.
        pattern: "solid" or a textured pattern, drawn in ``pattern_color``.
        pattern_color: second colour, or None.
        anchor: (x, y) pixel the pattern is fixed to.
        period: pattern repeat in pixels.
    """

    name: str
    mask: np.ndarray
    color: NamedColor
    pattern: str = "solid"
    pattern_color: NamedColor | None = None
    anchor: tuple[float, float] = (0.0, 0.0)
    period: float = 8.0


def garment_ease(spec: GarmentSpec, g: BodyGeometry) -> float:
    """How far the cloth stands off the body, in pixels."""
    fit = next((style for style in spec.styles if style in EASE), "")
    extra = 0.006 if spec.kind == "jacket" else 0.0
    return g.units(EASE[fit] + extra)


def _cloth(spec: GarmentSpec, name: str, mask: np.ndarray, g: BodyGeometry, anchor: np.ndarray) -> Piece:
    """A piece cut from the garment's own (maybe patterned) cloth."""
    textured = spec.pattern if spec.pattern in ("stripes", "dots", "checks") else "solid"
    return Piece(
        name, mask, spec.color, textured, spec.pattern_color if textured != "solid" else None,
        (float(anchor[0]), float(anchor[1])), g.units(PATTERN_PERIOD),
    )


def torso_mask(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int], hem_offset: float) -> np.ndarray:
    """Upper-body cloth from the neckline to ``hem_offset`` units below the hips."""
    ease = garment_ease(spec, g)
    sleeveless = "sleeveless" in spec.styles
    neck = g.point("neck")
    neck_radius = g.radii["neck"]
    sides = {}
    for side_name, sign in (("right", -1.0), ("left", 1.0)):
        shoulder = g.point(f"{side_name}_shoulder")
        hip = g.point(f"{side_name}_hip")
        strap_in = g.units(0.035) if sleeveless else 0.0
        tip = shoulder + np.array([sign * (0.6 * ease - strap_in), -g.units(0.012)])
        armpit = shoulder + np.array([sign * (ease - g.units(0.012) - 0.6 * strap_in), g.units(0.085)])
        waist = shoulder + (hip - shoulder) * 0.72 + np.array([sign * 0.9 * ease, 0.0])
        hem = hip + np.array([sign * (ease + g.units(0.004)), g.units(hem_offset)])
        sides[side_name] = [tip, armpit, waist, hem]
    neck_style = spec.part("neck").style if spec.part("neck") else "round"
    dip = g.units(0.07) if neck_style == "v" else g.units(0.02)
    neckline = [
        neck + np.array([neck_radius * 1.3, -g.units(0.014)]),
        neck + np.array([neck_radius * 0.8, g.units(0.002)]),
        neck + np.array([0.0, dip]),
        neck + np.array([-neck_radius * 0.8, g.units(0.002)]),
        neck + np.array([-neck_radius * 1.3, -g.units(0.014)]),
    ]
    outline = neckline[-1:] + sides["right"] + sides["left"][::-1] + neckline[:-1]
    return polygon_mask(shape, outline)


def sleeve_mask(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int], side: str) -> np.ndarray:
    """Sleeve of one arm ("right"/"left"); empty for sleeveless garments."""
    sleeves = spec.part("sleeves")
    if sleeves is None:
        return np.zeros(shape, dtype=bool)
    ease = garment_ease(spec, g)
    shoulder, elbow, wrist = (g.point(f"{side}_{joint}") for joint in ("shoulder", "elbow", "wrist"))
    upper_radius = g.radii["upper_arm"] + ease
    if sleeves.style == "short":
        end = shoulder + (elbow - shoulder) * 0.55
        return capsule_mask(shape, shoulder, end, upper_radius, upper_radius * 0.95)
    forearm = wrist - elbow
    cuff = wrist - forearm / max(np.linalg.norm(forearm), 1e-6) * g.units(0.012)
    return capsule_mask(shape, shoulder, elbow, upper_radius, g.radii["forearm"] + ease) | capsule_mask(
        shape, elbow, cuff, g.radii["forearm"] + ease, g.radii["forearm"] + ease * 1.2
    )


def _box(center: np.ndarray, half_width: float, half_height: float) -> list[np.ndarray]:
    return [center + np.array([dx * half_width, dy * half_height]) for dx, dy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def upper_detail_pieces(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int], body: np.ndarray) -> list[Piece]:
    """Collar, chest pocket, belted waist and logo patch of an upper garment or dress."""
    pieces: list[Piece] = []
    neck = g.point("neck")
    collar = spec.part("collar")
    if collar is not None:
        mask = np.zeros(shape, dtype=bool)
        for sign in (-1.0, 1.0):
            if collar.style == "straight-point":
                corners = [(sign * 0.02, -0.018), (sign * 0.062, 0.0), (sign * 0.004, 0.052)]
                mask |= polygon_mask(shape, [neck + g.units(1.0) * np.array(corner) for corner in corners])
            else:
                center = neck + g.units(1.0) * np.array([sign * 0.028, -0.006])
                mask |= ellipse_mask(shape, center, (g.units(0.032), g.units(0.034)), 0.0, 0.0, 180.0)
        pieces.append(Piece("collar", mask, collar.color))
    pocket = spec.part("pocket")
    if pocket is not None:
        center = neck + np.array([0.5 * g.shoulder_half, g.units(0.085)])
        pocket_mask = polygon_mask(shape, _box(center, g.units(0.022), g.units(0.024))) & body
        pieces.append(Piece("pocket", pocket_mask, pocket.color))
    waist = spec.part("waist")
    if waist is not None:
        waist_y = neck[1] + (g.hip_center[1] - neck[1]) * 0.74
        band = np.zeros(shape, dtype=bool)
        top, bottom = int(round(waist_y - g.units(0.013))), int(round(waist_y + g.units(0.013)))
        band[max(top, 0):max(bottom, top + 1), :] = True
        pieces.append(Piece("belt", band & body, waist.color))
    if spec.pattern == "logo patch":
        offset_x = -0.45 * g.shoulder_half if pocket is not None else 0.0
        center = neck + np.array([offset_x, g.units(0.105)])
        half_width, half_height = g.units(0.04 if pocket is None else 0.032), g.units(0.022)
        patch = polygon_mask(shape, _box(center, half_width, half_height)) & body
        box = (center[0] - half_width, center[1] - half_height, center[0] + half_width, center[1] + half_height)
        letters = text_mask(shape, LOGO_TEXT, box)
        pieces.append(Piece("logo patch", patch & ~letters, spec.pattern_color))
        pieces.append(Piece("logo text", patch & letters, spec.color))
    return pieces


def skirt_mask(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Skirt (or a dress's skirt) from the waist to its length ("mini", "midi", "maxi")."""
    ease = garment_ease(spec, g)
    length = next((style for style in spec.styles if style in ("mini", "midi", "maxi")), "midi")
    drop, flare, joint = {"mini": (0.13, 0.03, "knee"), "midi": (0.3, 0.055, "knee"), "maxi": (0.42, 0.08, "ankle")}[length]
    hip_center = g.hip_center
    right_joint, left_joint = g.point(f"right_{joint}"), g.point(f"left_{joint}")
    spread = abs(left_joint[0] - right_joint[0]) / 2.0 + g.radii["thigh"] + ease
    hem_half = max(g.hip_half + ease + g.units(flare), spread)
    hem_center_x = hip_center[0] + ((right_joint[0] + left_joint[0]) / 2.0 - hip_center[0]) * min(1.0, drop / 0.44)
    top_y = hip_center[1] - g.units(0.07)
    top_half = g.hip_half + ease + g.units(0.004)
    hem_y = hip_center[1] + g.units(drop)
    return polygon_mask(shape, [
        (hip_center[0] - top_half, top_y), (hip_center[0] + top_half, top_y),
        (hem_center_x + hem_half, hem_y), (hem_center_x - hem_half, hem_y),
    ])


def trousers_mask(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Trousers, jeans or shorts: waistband, seat and two legs."""
    ease = garment_ease(spec, g)
    thigh = g.radii["thigh"] + ease
    flare = g.units(0.02) if "wide" in spec.styles else 0.0
    right_hip, left_hip = g.point("right_hip"), g.point("left_hip")
    top_y = g.hip_center[1] - g.units(0.06)
    mask = polygon_mask(shape, [
        (right_hip[0] - 0.6 * thigh, top_y), (left_hip[0] + 0.6 * thigh, top_y),
        left_hip + np.array([0.8 * thigh, g.units(0.02)]), g.hip_center + np.array([0.0, g.units(0.07)]),
        right_hip + np.array([-0.8 * thigh, g.units(0.02)]),
    ])
    for side in ("right", "left"):
        hip, knee, ankle = (g.point(f"{side}_{joint}") for joint in ("hip", "knee", "ankle"))
        if spec.kind == "shorts":
            mask |= capsule_mask(shape, hip, hip + (knee - hip) * 0.5, thigh, thigh * 0.95)
            continue
        shin = g.radii["shin"] + ease
        mask |= capsule_mask(shape, hip, knee, thigh, shin) | capsule_mask(shape, knee, ankle, shin, shin + flare)
    return mask


def shoe_pieces(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int]) -> list[Piece]:
    """One piece per foot, named "right_shoe" / "left_shoe"."""
    pieces = []
    turned = abs(g.yaw) > 0.3
    for side, sign in (("right", -1.0), ("left", 1.0)):
        knee, ankle = g.point(f"{side}_knee"), g.point(f"{side}_ankle")
        down = (ankle - knee) / max(np.linalg.norm(ankle - knee), 1e-6)
        toe = np.array([np.sign(g.yaw) if turned else 0.25 * sign, 0.0])
        center = ankle + down * g.units(0.018) + toe * g.units(0.014)
        axes = np.array([0.044, 0.021]) if turned else np.array([0.033, 0.024])
        axes = axes * {"heels": 0.85, "sneakers": 1.08}.get(spec.kind, 1.0)
        mask = ellipse_mask(shape, center, (g.units(axes[0]), g.units(axes[1])))
        if spec.kind == "boots":
            shaft_top = ankle + (knee - ankle) * 0.4
            mask |= capsule_mask(shape, shaft_top, ankle, g.radii["shin"] + g.units(0.008), g.radii["shin"] + g.units(0.01))
        pieces.append(Piece(f"{side}_shoe", mask, spec.color))
    return pieces


def bag_pieces(spec: GarmentSpec, g: BodyGeometry, shape: tuple[int, int], shop: bool = False) -> list[Piece]:
    """Bag body, handles or strap, and a logo patch; worn by the lower hand (or at the hip) or laid flat."""
    unit = g.units(1.0)
    size = {"tote bag": (0.1, 0.085), "shoulder bag": (0.08, 0.062), "clutch": (0.08, 0.04)}[spec.kind]
    half_width, half_height = size[0] * unit / 2.0, size[1] * unit / 2.0
    wrists = {side: g.point(f"{side}_wrist") for side in ("right", "left")}
    hand_side = max(wrists, key=lambda side: wrists[side][1])
    hand = wrists[hand_side]
    hands_free = hand[1] > g.hip_center[1] - g.units(0.1)
    straps = np.zeros(shape, dtype=bool)
    if shop:
        center = g.hip_center
        if spec.kind != "clutch":
            loop = (half_width * 0.6, half_height * (1.2 if spec.kind == "tote bag" else 2.2))
            top = center - np.array([0.0, half_height])
            thickness = max(1.0, 0.006 * unit)
            straps = ellipse_mask(shape, top, loop, 0.0, 180.0, 360.0) & ~ellipse_mask(
                shape, top, (loop[0] - thickness, loop[1] - thickness), 0.0, 180.0, 360.0)
    elif spec.kind == "shoulder bag" or not hands_free:
        sign = -1.0 if hand_side == "right" else 1.0
        hip = g.point(f"{hand_side}_hip")
        center = hip + np.array([sign * (g.radii["thigh"] + half_width * 0.9), g.units(0.03)])
        other = "left" if hand_side == "right" else "right"
        strap_end = center + np.array([-sign * half_width * 0.6, -half_height])
        straps = capsule_mask(shape, g.point(f"{other}_shoulder"), strap_end, 0.005 * unit, 0.005 * unit)
    elif spec.kind == "tote bag":
        center = hand + np.array([0.0, g.units(0.05) + half_height])
        for sign in (-1.0, 1.0):
            handle_end = center + np.array([sign * half_width * 0.6, -half_height])
            straps |= capsule_mask(shape, hand, handle_end, 0.005 * unit, 0.005 * unit)
    else:
        center = hand + np.array([0.0, g.units(0.008)])
    body = polygon_mask(shape, _box(center, half_width, half_height))
    corner = center - np.array([half_width, half_height])
    textured = spec.pattern if spec.pattern in ("stripes", "dots", "checks") else "solid"
    period = g.units(PATTERN_PERIOD)
    pieces = [
        Piece("strap", straps & ~body, spec.color),
        Piece(
            "body", body, spec.color, textured, spec.pattern_color if textured != "solid" else None,
            (float(corner[0]), float(corner[1])), period,
        ),
    ]
    if spec.pattern == "logo patch":
        box = (
            center[0] - half_width * 0.6, center[1] - half_height * 0.4,
            center[0] + half_width * 0.6, center[1] + half_height * 0.4,
        )
        patch = polygon_mask(shape, [(box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])])
        letters = text_mask(shape, LOGO_TEXT, box)
        pieces.append(Piece("logo patch", patch & ~letters, spec.pattern_color))
        pieces.append(Piece("logo text", patch & letters, spec.color))
    return pieces


def cloth_piece(spec: GarmentSpec, name: str, mask: np.ndarray, g: BodyGeometry) -> Piece:
    """A piece of the garment's main cloth, its pattern anchored at the neck (uppers, dresses) or hips."""
    anchor = g.point("neck") if spec.slot in ("upper", "dress") else g.hip_center
    return _cloth(spec, name, mask, g, anchor)
