"""Masks of the bare body for a posed person: limbs, torso and neck skin, head, face features, hair."""

import numpy as np

from .body import KEYPOINT_INDEX, BodyGeometry, Identity
from .canvas import capsule_mask, circle_mask, ellipse_mask, polygon_mask


def arm_mask(g: BodyGeometry, shape: tuple[int, int], side: str) -> np.ndarray:
    """Upper arm, forearm and hand of the "right" or "left" arm."""
    shoulder, elbow, wrist = (g.point(f"{side}_{joint}") for joint in ("shoulder", "elbow", "wrist"))
    forearm = wrist - elbow
    hand = wrist + forearm / max(np.linalg.norm(forearm), 1e-6) * g.units(0.02)
    return (
        capsule_mask(shape, shoulder, elbow, g.radii["upper_arm"], g.radii["forearm"] * 1.05)
        | capsule_mask(shape, elbow, wrist, g.radii["forearm"] * 1.05, g.radii["forearm"] * 0.85)
        | circle_mask(shape, hand, g.radii["forearm"] * 1.1)
    )


def leg_mask(g: BodyGeometry, shape: tuple[int, int], side: str) -> np.ndarray:
    """Thigh and shin of the "right" or "left" leg (the shoe covers the foot)."""
    hip, knee, ankle = (g.point(f"{side}_{joint}") for joint in ("hip", "knee", "ankle"))
    return capsule_mask(shape, hip, knee, g.radii["thigh"], g.radii["shin"] * 1.1) | capsule_mask(
        shape, knee, ankle, g.radii["shin"] * 1.1, g.radii["shin"] * 0.8
    )


def torso_skin_mask(g: BodyGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Bare torso between shoulders and hips, with the neck."""
    right_shoulder, left_shoulder = g.point("right_shoulder"), g.point("left_shoulder")
    right_hip, left_hip = g.point("right_hip"), g.point("left_hip")
    lift = np.array([0.0, -g.units(0.01)])
    torso = polygon_mask(shape, [
        right_shoulder + lift, left_shoulder + lift,
        left_hip + np.array([g.radii["thigh"] * 0.6, 0.0]), right_hip - np.array([g.radii["thigh"] * 0.6, 0.0]),
    ])
    return torso | neck_mask(g, shape)


def neck_mask(g: BodyGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Neck from under the chin to the shoulder line."""
    chin = g.head_center + np.array([0.0, g.head_axes[1] * 0.6])
    base = g.point("neck") - np.array([0.0, g.units(0.005)])
    return capsule_mask(shape, chin, base, g.radii["neck"], g.radii["neck"] * 1.15)


def head_mask(g: BodyGeometry, shape: tuple[int, int]) -> np.ndarray:
    """The head ellipse (face and scalp)."""
    return ellipse_mask(shape, g.head_center, g.head_axes)


def face_feature_mask(g: BodyGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Eyes that face the camera and a mouth, as small dark marks."""
    marks = np.zeros(shape, dtype=bool)
    radius = max(0.5, g.head_axes[0] * 0.11)
    for name in ("right_eye", "left_eye"):
        if g.keypoints[KEYPOINT_INDEX[name], 2] > 0 and abs(g.yaw) < 1.2:
            marks |= circle_mask(shape, g.point(name), radius)
    nose = g.point("nose")
    mouth_center = np.array([nose[0], g.head_center[1] + g.head_axes[1] * 0.45])
    marks |= ellipse_mask(shape, mouth_center, (g.head_axes[0] * 0.28, max(0.5, g.head_axes[1] * 0.05)))
    return marks


def hair_cap_mask(g: BodyGeometry, identity: Identity, shape: tuple[int, int]) -> np.ndarray:
    """Hair on top of (and, for a turned head, behind) the face; a bun sits on top."""
    rx, ry = g.head_axes
    outer = ellipse_mask(shape, g.head_center, (rx * 1.1, ry * 1.08))
    face_center = g.head_center + np.array([np.sin(g.yaw) * 0.45 * rx, 0.36 * ry])
    cap = outer & ~ellipse_mask(shape, face_center, (rx * 0.98, ry * 0.98))
    if identity.hair_style == "bun":
        cap |= circle_mask(shape, g.head_center + np.array([-np.sin(g.yaw) * 0.5 * rx, -0.98 * ry]), rx * 0.45)
    return cap


def back_hair_mask(g: BodyGeometry, identity: Identity, shape: tuple[int, int]) -> np.ndarray:
    """Long hair falling behind the shoulders (empty for other styles)."""
    if identity.hair_style != "long":
        return np.zeros(shape, dtype=bool)
    rx, ry = g.head_axes
    center = g.head_center - np.array([np.sin(g.yaw) * 0.3 * rx, 0.0])
    bottom = g.point("neck")[1] + g.units(0.07)
    return ellipse_mask(shape, center, (rx * 1.12, ry * 1.05)) | polygon_mask(shape, [
        center + np.array([-rx * 1.12, 0.0]), center + np.array([rx * 1.12, 0.0]),
        (center[0] + rx * 1.25, bottom), (center[0] - rx * 1.25, bottom),
    ])
