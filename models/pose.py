"""Body poses: read ComfyUI's POSE_KEYPOINT and OpenPose JSON, render OpenPose skeletons, report visible parts.

Conventions (every system builds on these):

- A pose is a :class:`BodyPose`: 18 COCO-18 keypoints in the order of ``models.labels.COCO18_KEYPOINTS``,
  ``keypoints`` (18, 2) float32 **pixel** coordinates (x right, y down) on a canvas of
  ``canvas_width`` x ``canvas_height``, and ``confidence`` (18,) float32. A missing point has
  confidence 0 and coordinates (0, 0), the way OpenPose writes it.
- ComfyUI's POSE_KEYPOINT (comfyui_controlnet_aux ``encode_poses_as_dict``) is a list with one dict
  per frame: ``{"people": [{"pose_keypoints_2d": [x, y, c, ...], ...}], "canvas_width": W,
  "canvas_height": H}``. Its OpenPose preprocessor writes x, y normalised to 0..1 and c in {0, 1};
  some DWPose builds write pixels. ``coordinates="auto"`` (the default) reads a person as normalised
  when every present point lies in [0, 1] (the same test controlnet_aux's ``is_normalized`` uses),
  and as pixels otherwise. A real pixel-space body never fits in a 1x1 pixel box, so the test is
  safe; pass ``coordinates="normalized"`` or ``"pixels"`` to force either reading.
- OpenPose JSON files (``{"people": [{"pose_keypoints_2d": [...]}]}``) are in pixels and carry no
  canvas size, so the caller passes it. BODY_25 lists (75 values, as in VITON-HD's openpose_json)
  are converted to COCO-18 by dropping MidHip and the six foot points.

Bad input:

- no person, or ``pose_keypoints_2d`` null/empty -> :class:`EmptyPoseError`;
- a list whose length is not 18*3 (or 25*3 for BODY_25) -> :class:`KeypointCountError`;
- fewer than ``min_visible`` present points -> :class:`TooFewKeypointsError`;
- present points outside the canvas -> by default they are **dropped** (confidence set to 0, so
  the part counts as not visible) with one logged warning naming the points; ``on_outside="clip"``
  moves them onto the border instead and ``on_outside="raise"`` raises
  :class:`KeypointsOutsideCanvasError`. Dropping is the default because a wrist outside the frame
  is, for every consumer here, a wrist that is not visible; clipping would invent a position.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import cv2
import numpy as np

from .errors import AtelierError
from .labels import COCO18_KEYPOINTS, LIP_LABELS

logger = logging.getLogger("atelier.models.pose")

NUM_KEYPOINTS = len(COCO18_KEYPOINTS)  # 18

# OpenPose BODY_25 index of each COCO-18 point (BODY_25 adds MidHip=8 and six foot points 19..24).
BODY25_TO_COCO18: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
NUM_BODY25_KEYPOINTS = 25

# The 17 limbs OpenPose / controlnet_aux draw, as 0-based COCO-18 index pairs, in drawing order.
OPENPOSE_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

# The 18 RGB colours of the OpenPose skeleton (one per joint; limb i uses colour i scaled by 0.6).
OPENPOSE_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
LIMB_COLOR_SCALE = 0.6

CoordinateMode = Literal["auto", "normalized", "pixels"]
OutsidePolicy = Literal["drop", "clip", "raise"]


class PoseError(AtelierError, ValueError):
    """Base class of every pose-input error; the message names the input to fix."""


class EmptyPoseError(PoseError):
    """The pose has no person (empty ``people`` list or no body keypoints)."""


class KeypointCountError(PoseError):
    """``pose_keypoints_2d`` does not hold 18 (COCO-18) or 25 (BODY_25) [x, y, c] triples."""


class TooFewKeypointsError(PoseError):
    """Fewer present keypoints than the caller's minimum."""


class KeypointsOutsideCanvasError(PoseError):
    """Present keypoints lie outside the canvas and ``on_outside="raise"`` was asked for."""


@dataclass(frozen=True)
class BodyPose:
    """One person's COCO-18 body pose in pixels.

    Args:
        keypoints: (18, 2) float32, (x, y) in pixels of the canvas; (0, 0) where missing.
        confidence: (18,) float32; 0 marks a missing point.
        canvas_width: canvas width in pixels.
        canvas_height: canvas height in pixels.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    canvas_width: int
    canvas_height: int

    def __post_init__(self) -> None:
        if self.keypoints.shape != (NUM_KEYPOINTS, 2) or self.confidence.shape != (NUM_KEYPOINTS,):
            raise KeypointCountError(
                f"BodyPose needs keypoints (18, 2) and confidence (18,), got {self.keypoints.shape} "
                f"and {self.confidence.shape}"
            )
        if self.canvas_width <= 0 or self.canvas_height <= 0:
            raise PoseError(f"canvas size must be positive, got {self.canvas_width}x{self.canvas_height}")

    def visible(self, threshold: float = 0.0) -> np.ndarray:
        """(18,) bool: points whose confidence is above ``threshold``."""
        return self.confidence > threshold

    def as_array(self) -> np.ndarray:
        """(18, 3) float32 rows of (x, y, confidence): the data sets' ``keypoints`` layout."""
        return np.concatenate([self.keypoints, self.confidence[:, None]], axis=1).astype(np.float32)

    def resized(self, width: int, height: int) -> BodyPose:
        """The same pose on a canvas of ``width`` x ``height`` (coordinates scaled per axis)."""
        scale = np.array([width / self.canvas_width, height / self.canvas_height], dtype=np.float32)
        keypoints = np.where(self.visible()[:, None], self.keypoints * scale, 0.0).astype(np.float32)
        return BodyPose(keypoints, self.confidence.copy(), int(width), int(height))

    def normalized_keypoints(self) -> np.ndarray:
        """(18, 2) float32 coordinates divided by the canvas size (0..1), missing points at 0."""
        scale = np.array([self.canvas_width, self.canvas_height], dtype=np.float32)
        return np.where(self.visible()[:, None], self.keypoints / scale, 0.0).astype(np.float32)


def pose_from_array(
    array: np.ndarray | Sequence[Sequence[float]],
    canvas_width: int,
    canvas_height: int,
    *,
    on_outside: OutsidePolicy = "drop",
    min_visible: int = 0,
    source: str = "keypoint array",
) -> BodyPose:
    """Build a :class:`BodyPose` from an (18, 3) array of pixel (x, y, confidence) rows.

    Rows with confidence <= 0, or with x and y both 0 (OpenPose's "not found"), are missing.
    Out-of-canvas handling and ``min_visible`` are as in the module docstring.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.shape != (NUM_KEYPOINTS, 3):
        raise KeypointCountError(f"{source}: expected shape (18, 3), got {tuple(array.shape)}")
    keypoints = array[:, :2].copy()
    confidence = array[:, 2].copy()
    present = (confidence > 0) & ~((keypoints[:, 0] == 0) & (keypoints[:, 1] == 0))
    present &= np.isfinite(keypoints).all(axis=1)
    confidence = np.where(present, confidence, 0.0).astype(np.float32)
    keypoints = np.where(present[:, None], keypoints, 0.0).astype(np.float32)
    keypoints, confidence = _apply_outside_policy(
        keypoints, confidence, canvas_width, canvas_height, on_outside, source
    )
    pose = BodyPose(keypoints, confidence, int(canvas_width), int(canvas_height))
    count = int(pose.visible().sum())
    if count < min_visible:
        raise TooFewKeypointsError(
            f"{source}: only {count} of 18 keypoints are present, at least {min_visible} are needed"
        )
    return pose


def read_pose_keypoint(
    pose_keypoint: Sequence[Mapping] | Mapping,
    *,
    frame: int = 0,
    person: int = 0,
    coordinates: CoordinateMode = "auto",
    on_outside: OutsidePolicy = "drop",
    min_visible: int = 3,
) -> BodyPose:
    """Read one person of one frame of ComfyUI's POSE_KEYPOINT (comfyui_controlnet_aux format).

    Args:
        pose_keypoint: the POSE_KEYPOINT value: a list of frame dicts (a single dict is accepted too).
        frame: index of the frame in the list.
        person: index in the frame's ``people`` list.
        coordinates: "auto" detects normalised 0..1 vs pixels (module docstring).
        on_outside: what to do with points outside the canvas ("drop", "clip", "raise").
        min_visible: fewest present points accepted (raises :class:`TooFewKeypointsError`).
    """
    frames = [pose_keypoint] if isinstance(pose_keypoint, Mapping) else list(pose_keypoint)
    if not frames:
        raise EmptyPoseError("POSE_KEYPOINT is an empty list: connect a pose preprocessor output with a frame")
    if not 0 <= frame < len(frames):
        raise PoseError(f"POSE_KEYPOINT has {len(frames)} frame(s), frame {frame} was asked for")
    data = frames[frame]
    width, height = data.get("canvas_width"), data.get("canvas_height")
    if not isinstance(width, (int, float)) or not isinstance(height, (int, float)) or width <= 0 or height <= 0:
        raise PoseError(
            f"POSE_KEYPOINT frame {frame} needs positive canvas_width and canvas_height, got {width!r} x {height!r}"
        )
    source = f"POSE_KEYPOINT frame {frame} person {person}"
    flat = _person_keypoints(data, person, source)
    array = _flat_to_coco18(flat, source)  # (18, 3)
    if _is_normalized(array, coordinates):
        array[:, 0] *= width
        array[:, 1] *= height
    return pose_from_array(
        array, int(width), int(height), on_outside=on_outside, min_visible=min_visible, source=source
    )


def read_pose_keypoint_frames(
    pose_keypoint: Sequence[Mapping],
    *,
    person: int = 0,
    coordinates: CoordinateMode = "auto",
    on_outside: OutsidePolicy = "drop",
    min_visible: int = 3,
) -> list[BodyPose]:
    """Read the same person index from every frame of a POSE_KEYPOINT list (one pose per frame)."""
    return [
        read_pose_keypoint(
            pose_keypoint, frame=index, person=person, coordinates=coordinates,
            on_outside=on_outside, min_visible=min_visible,
        )
        for index in range(len(pose_keypoint))
    ]


def read_openpose_json(
    source: str | Path | Mapping,
    canvas_width: int,
    canvas_height: int,
    *,
    person: int = 0,
    on_outside: OutsidePolicy = "drop",
    min_visible: int = 3,
) -> BodyPose:
    """Read one person from an OpenPose JSON file (or its parsed dict); coordinates are pixels.

    Args:
        source: path of a ``*_keypoints.json`` file, or the already parsed dict.
        canvas_width: width of the image the keypoints were detected on (OpenPose JSON has no size).
        canvas_height: height of that image.
        person: index in ``people``.
        on_outside: what to do with points outside the canvas ("drop", "clip", "raise").
        min_visible: fewest present points accepted.
    """
    name = "OpenPose JSON"
    if isinstance(source, (str, Path)):
        name = str(source)
        try:
            data = json.loads(Path(source).read_text())
        except FileNotFoundError as error:
            raise FileNotFoundError(f"OpenPose JSON file not found: {source}") from error
        except json.JSONDecodeError as error:
            raise PoseError(f"{source} is not valid JSON: {error}") from error
    else:
        data = source
    label = f"{name} person {person}"
    array = _flat_to_coco18(_person_keypoints(data, person, label), label)
    return pose_from_array(
        array, canvas_width, canvas_height, on_outside=on_outside, min_visible=min_visible, source=label
    )


def render_skeleton(
    poses: BodyPose | Iterable[BodyPose],
    width: int | None = None,
    height: int | None = None,
    *,
    stick_width: int = 4,
    joint_radius: int = 4,
) -> np.ndarray:
    """Draw OpenPose-style skeletons on black, as the OpenPose ControlNet expects.

    Follows comfyui_controlnet_aux's ``draw_bodypose``: each of the 17 limbs is a filled ellipse of
    half-width ``stick_width`` in 0.6 x its colour, then each present joint a disc of
    ``joint_radius`` in its full colour. Poses are rescaled to the output size.

    Args:
        poses: one pose or several (all drawn on the same canvas).
        width: output width; defaults to the first pose's canvas width.
        height: output height; defaults to the first pose's canvas height.
        stick_width: limb half-thickness in pixels.
        joint_radius: joint disc radius in pixels.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    pose_list = [poses] if isinstance(poses, BodyPose) else list(poses)
    if not pose_list and (width is None or height is None):
        raise EmptyPoseError("render_skeleton got no pose and no output size")
    width = int(width if width is not None else pose_list[0].canvas_width)
    height = int(height if height is not None else pose_list[0].canvas_height)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)  # (H, W, 3)
    for pose in pose_list:
        scaled = pose.resized(width, height)
        visible = scaled.visible()
        points = scaled.keypoints
        for (start, end), color in zip(OPENPOSE_LIMBS, OPENPOSE_COLORS):
            if not (visible[start] and visible[end]):
                continue
            (x0, y0), (x1, y1) = points[start], points[end]
            length = math.hypot(x1 - x0, y1 - y0)
            angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
            center = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
            polygon = cv2.ellipse2Poly(center, (int(length / 2), stick_width), int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, [int(c * LIMB_COLOR_SCALE) for c in color])
        for index, color in enumerate(OPENPOSE_COLORS):
            if visible[index]:
                x, y = points[index]
                cv2.circle(canvas, (int(round(x)), int(round(y))), joint_radius, color, thickness=-1)
    return canvas


# Body parts and the COCO-18 keypoints that show them. A part is visible when every group has
# at least one visible point (groups are alternatives, e.g. either shoulder).
BODY_PART_KEYPOINTS: Mapping[str, tuple[tuple[int, ...], ...]] = MappingProxyType({
    "head": ((0, 14, 15, 16, 17),),          # nose, eyes or ears
    "torso": ((1, 2, 5), (8, 11)),            # neck or a shoulder, and a hip
    "right_arm": ((2,), (3,)),                # right shoulder and right elbow
    "left_arm": ((5,), (6,)),                 # left shoulder and left elbow
    "right_leg": ((8,), (9,)),                # right hip and right knee
    "left_leg": ((11,), (12,)),               # left hip and left knee
    "feet": ((10, 13),),                      # an ankle
})
BODY_PARTS: tuple[str, ...] = tuple(BODY_PART_KEYPOINTS)

# LIP categories that can appear where a body part is visible (TruePose selects parsing
# categories from these). Garments are listed with every part they can cover.
BODY_PART_TO_LIP: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "head": ("hat", "hair", "sunglasses", "face"),
    "torso": ("upper_clothes", "coat", "dress", "jumpsuits", "scarf"),
    "right_arm": ("right_arm", "glove", "upper_clothes", "coat", "dress", "jumpsuits"),
    "left_arm": ("left_arm", "glove", "upper_clothes", "coat", "dress", "jumpsuits"),
    "right_leg": ("right_leg", "pants", "skirt", "dress", "jumpsuits", "socks"),
    "left_leg": ("left_leg", "pants", "skirt", "dress", "jumpsuits", "socks"),
    "feet": ("left_shoe", "right_shoe", "socks"),
})


def visible_body_parts(pose: BodyPose, threshold: float = 0.0) -> set[str]:
    """Names from :data:`BODY_PARTS` whose keypoints are visible (see :data:`BODY_PART_KEYPOINTS`)."""
    visible = pose.visible(threshold)
    return {
        part
        for part, groups in BODY_PART_KEYPOINTS.items()
        if all(visible[list(group)].any() for group in groups)
    }


def lip_categories_for_parts(parts: Iterable[str]) -> set[str]:
    """LIP category names that can appear on the given body parts (background is never included)."""
    categories: set[str] = set()
    for part in parts:
        if part not in BODY_PART_TO_LIP:
            raise PoseError(f"unknown body part {part!r}; known parts: {', '.join(BODY_PARTS)}")
        categories.update(BODY_PART_TO_LIP[part])
    return categories


def lip_ids_for_parts(parts: Iterable[str]) -> list[int]:
    """Sorted LIP label ids of :func:`lip_categories_for_parts`."""
    return sorted(LIP_LABELS.index(name) for name in lip_categories_for_parts(parts))


def _person_keypoints(data: Mapping, person: int, source: str) -> list:
    people = data.get("people") if isinstance(data, Mapping) else None
    if not people:
        raise EmptyPoseError(f"{source}: the 'people' list is empty or missing (no person was detected)")
    if not 0 <= person < len(people):
        raise EmptyPoseError(f"{source}: {len(people)} person(s) in 'people', index {person} was asked for")
    flat = people[person].get("pose_keypoints_2d")
    if not flat:
        raise EmptyPoseError(f"{source}: 'pose_keypoints_2d' is empty (no body keypoints)")
    return list(flat)


def _flat_to_coco18(flat: list, source: str) -> np.ndarray:
    if len(flat) == NUM_KEYPOINTS * 3:
        return np.asarray(flat, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)  # (18, 3)
    if len(flat) == NUM_BODY25_KEYPOINTS * 3:
        body25 = np.asarray(flat, dtype=np.float32).reshape(NUM_BODY25_KEYPOINTS, 3)  # (25, 3)
        return body25[list(BODY25_TO_COCO18)].copy()  # (18, 3)
    raise KeypointCountError(
        f"{source}: pose_keypoints_2d has {len(flat)} values; expected 54 (COCO-18 x [x, y, c]) "
        f"or 75 (BODY_25)"
    )


def _is_normalized(array: np.ndarray, coordinates: CoordinateMode) -> bool:
    if coordinates == "normalized":
        return True
    if coordinates == "pixels":
        return False
    present = (array[:, 2] > 0) & ~((array[:, 0] == 0) & (array[:, 1] == 0))
    if not present.any():
        return False
    xy = array[present, :2]
    return bool(((xy >= 0) & (xy <= 1)).all())


def _apply_outside_policy(
    keypoints: np.ndarray,
    confidence: np.ndarray,
    width: int,
    height: int,
    policy: OutsidePolicy,
    source: str,
) -> tuple[np.ndarray, np.ndarray]:
    if policy not in ("drop", "clip", "raise"):
        raise PoseError(f"on_outside must be 'drop', 'clip' or 'raise', got {policy!r}")
    present = confidence > 0
    inside = (keypoints[:, 0] >= 0) & (keypoints[:, 0] <= width) & (keypoints[:, 1] >= 0) & (keypoints[:, 1] <= height)
    outside = present & ~inside
    if not outside.any():
        return keypoints, confidence
    names = ", ".join(
        f"{COCO18_KEYPOINTS[i]} ({keypoints[i, 0]:.1f}, {keypoints[i, 1]:.1f})" for i in np.flatnonzero(outside)
    )
    if policy == "raise":
        raise KeypointsOutsideCanvasError(f"{source}: keypoints outside the {width}x{height} canvas: {names}")
    if policy == "clip":
        logger.warning(
            "%s: clipping keypoints outside the %dx%d canvas onto its border: %s", source, width, height, names
        )
        keypoints = keypoints.copy()
        keypoints[outside, 0] = np.clip(keypoints[outside, 0], 0, width)
        keypoints[outside, 1] = np.clip(keypoints[outside, 1], 0, height)
        return keypoints, confidence
    logger.warning("%s: dropping keypoints outside the %dx%d canvas (marked missing): %s", source, width, height, names)
    keypoints = np.where(outside[:, None], 0.0, keypoints).astype(np.float32)
    confidence = np.where(outside, 0.0, confidence).astype(np.float32)
    return keypoints, confidence
