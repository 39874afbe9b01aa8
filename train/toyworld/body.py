"""People of the toy world: an identity (skin, hair, proportions), a pose (limb angles and a turn of
the body), and the COCO-18 keypoints and limb sizes that a pose gives in pixels.

Body units: the standing figure is 1.0 tall from the top of the head to the soles, x = 0 is its
middle, y grows downward. A limb angle is measured from straight down, positive away from the
body's midline, so 0 hangs down, 90 points sideways and 180 points up. ``yaw`` turns the body
about its vertical axis: positive turns the face towards the image's right (the person's left side
goes away from the camera).
"""

import math
from dataclasses import dataclass, replace

import numpy as np

from ...models.labels import COCO18_KEYPOINTS
from .palette import HAIR_COLORS, SKIN_TONES

HAIR_STYLES: tuple[str, ...] = ("short", "long", "bun")

KEYPOINT_INDEX: dict[str, int] = {name: index for index, name in enumerate(COCO18_KEYPOINTS)}

SHOULDER_Y = 0.19
HIP_Y = 0.50
HEAD_CENTER_Y = 0.075
UPPER_ARM_LENGTH = 0.155
FOREARM_LENGTH = 0.14
THIGH_LENGTH = 0.225
SHIN_LENGTH = 0.215
FOOT_DROP = 0.035


@dataclass(frozen=True)
class Identity:
    """What stays the same when a person changes pose.

    Args:
        skin_rgb: skin colour.
        hair_rgb: hair colour.
        hair_style: one of HAIR_STYLES.
        shoulder_half: half shoulder width in body units.
        hip_half: half hip width in body units.
        limb_scale: multiplier on limb thickness.
        head_scale: multiplier on head size.
        fill: fraction of the frame height the figure's bounding box takes.
    """

    skin_rgb: tuple[int, int, int]
    hair_rgb: tuple[int, int, int]
    hair_style: str
    shoulder_half: float
    hip_half: float
    limb_scale: float
    head_scale: float
    fill: float


@dataclass(frozen=True)
class Pose:
    """Limb angles in degrees (see module docstring) and a body turn in radians.

    Args:
        name: pose family ("front", "arms_up", ...).
        right_arm: (upper arm, forearm) angles of the person's right arm.
        left_arm: (upper arm, forearm) angles of the left arm.
        right_leg: (thigh, shin) angles of the right leg.
        left_leg: (thigh, shin) angles of the left leg.
        yaw: body turn; 0 faces the camera.
    """

    name: str
    right_arm: tuple[float, float]
    left_arm: tuple[float, float]
    right_leg: tuple[float, float]
    left_leg: tuple[float, float]
    yaw: float = 0.0

    def mirrored(self) -> "Pose":
        """The same pose with left and right exchanged and the turn reversed."""
        return replace(
            self, right_arm=self.left_arm, left_arm=self.right_arm,
            right_leg=self.left_leg, left_leg=self.right_leg, yaw=-self.yaw,
        )


POSES: dict[str, Pose] = {
    "front": Pose("front", (12.0, 6.0), (12.0, 6.0), (4.0, 1.0), (4.0, 1.0)),
    "arms_up": Pose("arms_up", (150.0, 168.0), (150.0, 168.0), (6.0, 2.0), (6.0, 2.0)),
    "one_arm_up": Pose("one_arm_up", (140.0, 170.0), (14.0, 6.0), (5.0, 1.0), (5.0, 1.0)),
    "hands_on_hips": Pose("hands_on_hips", (42.0, -55.0), (42.0, -55.0), (7.0, 2.0), (7.0, 2.0)),
    "arms_out": Pose("arms_out", (80.0, 90.0), (80.0, 90.0), (8.0, 3.0), (8.0, 3.0)),
    "walking": Pose("walking", (22.0, 12.0), (20.0, 28.0), (-16.0, -6.0), (-14.0, -34.0), yaw=0.6),
    "side": Pose("side", (-12.0, -60.0), (14.0, 24.0), (-5.0, 0.0), (5.0, 2.0), yaw=0.75),
}

MIRRORABLE_POSES: frozenset[str] = frozenset({"walking", "side", "one_arm_up"})


@dataclass(frozen=True)
class BodyGeometry:
    """A posed person in pixels.

    Args:
        keypoints: (18, 3) float32 COCO-18 (x, y, confidence); confidence 0 for a point that is
            hidden by the body's turn or lies outside the frame, else 1.
        scale: pixels per body unit.
        head_center: (x, y) of the head ellipse.
        head_axes: (half width, half height) of the head ellipse.
        shoulder_half: half shoulder width after the turn, pixels.
        hip_half: half hip width after the turn, pixels.
        radii: limb radii in pixels: "upper_arm", "forearm", "thigh", "shin", "neck".
        yaw: the pose's turn.
        pose_name: the pose family.
    """

    keypoints: np.ndarray
    scale: float
    head_center: np.ndarray
    head_axes: tuple[float, float]
    shoulder_half: float
    hip_half: float
    radii: dict[str, float]
    yaw: float
    pose_name: str

    def point(self, name: str) -> np.ndarray:
        """(x, y) pixel position of the named COCO-18 keypoint."""
        return self.keypoints[KEYPOINT_INDEX[name], :2].astype(np.float64)

    def units(self, length: float) -> float:
        """A length in body units, in pixels."""
        return length * self.scale

    @property
    def hip_center(self) -> np.ndarray:
        """(x, y) between the hips."""
        return (self.point("right_hip") + self.point("left_hip")) / 2.0

    def zoomed(self, factor: float, offset: tuple[float, float]) -> "BodyGeometry":
        """The same figure scaled by ``factor`` about pixel (0, 0), then moved by ``offset``."""
        shift = np.asarray(offset, dtype=np.float64)
        keypoints = self.keypoints.copy()
        keypoints[:, :2] = keypoints[:, :2] * factor + shift
        return replace(
            self,
            keypoints=keypoints.astype(np.float32),
            scale=self.scale * factor,
            head_center=self.head_center * factor + shift,
            head_axes=(self.head_axes[0] * factor, self.head_axes[1] * factor),
            shoulder_half=self.shoulder_half * factor,
            hip_half=self.hip_half * factor,
            radii={name: radius * factor for name, radius in self.radii.items()},
        )


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a person's identity."""
    return Identity(
        skin_rgb=SKIN_TONES[rng.integers(len(SKIN_TONES))],
        hair_rgb=HAIR_COLORS[rng.integers(len(HAIR_COLORS))],
        hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
        shoulder_half=float(rng.uniform(0.095, 0.115)),
        hip_half=float(rng.uniform(0.068, 0.085)),
        limb_scale=float(rng.uniform(0.9, 1.1)),
        head_scale=float(rng.uniform(0.93, 1.05)),
        fill=float(rng.uniform(0.86, 0.93)),
    )


def sample_pose(rng: np.random.Generator, exclude: str | None = None) -> Pose:
    """Draw a pose family (not ``exclude``), jitter its angles by a few degrees, maybe mirror it."""
    names = [name for name in POSES if name != exclude]
    base = POSES[names[rng.integers(len(names))]]

    def jitter(pair: tuple[float, float]) -> tuple[float, float]:
        return (pair[0] + float(rng.uniform(-6.0, 6.0)), pair[1] + float(rng.uniform(-6.0, 6.0)))

    pose = replace(
        base,
        right_arm=jitter(base.right_arm), left_arm=jitter(base.left_arm),
        right_leg=jitter(base.right_leg), left_leg=jitter(base.left_leg),
        yaw=base.yaw + (float(rng.uniform(-0.1, 0.1)) if base.yaw else 0.0),
    )
    if base.name in MIRRORABLE_POSES and rng.random() < 0.5:
        pose = pose.mirrored()
    return pose


def _limb_direction(angle_degrees: float, side: float) -> np.ndarray:
    angle = math.radians(angle_degrees)
    return np.array([side * math.sin(angle), math.cos(angle)])


def _unit_skeleton(identity: Identity, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (18, 2) in body units and their visibility (18,) for a pose."""
    turn = math.cos(pose.yaw)
    points = np.zeros((len(COCO18_KEYPOINTS), 2), dtype=np.float64)
    visible = np.ones(len(COCO18_KEYPOINTS), dtype=bool)

    def put(name: str, xy: np.ndarray) -> None:
        points[KEYPOINT_INDEX[name]] = xy

    put("neck", np.array([0.0, SHOULDER_Y]))
    limbs = (("right", -1.0, pose.right_arm, pose.right_leg), ("left", 1.0, pose.left_arm, pose.left_leg))
    for side_name, side, arm, leg in limbs:
        shoulder = np.array([side * identity.shoulder_half * turn, SHOULDER_Y])
        elbow = shoulder + UPPER_ARM_LENGTH * _limb_direction(arm[0], side)
        wrist = elbow + FOREARM_LENGTH * _limb_direction(arm[1], side)
        hip = np.array([side * identity.hip_half * turn, HIP_Y])
        knee = hip + THIGH_LENGTH * _limb_direction(leg[0], side)
        ankle = knee + SHIN_LENGTH * _limb_direction(leg[1], side)
        joints = {"shoulder": shoulder, "elbow": elbow, "wrist": wrist, "hip": hip, "knee": knee, "ankle": ankle}
        for joint, xy in joints.items():
            put(f"{side_name}_{joint}", xy)

    head_rx = 0.054 * identity.head_scale
    head_ry = 0.068 * identity.head_scale
    for name, around, height in (
        ("nose", 0.0, HEAD_CENTER_Y + 0.1 * head_ry),
        ("right_eye", -0.45, HEAD_CENTER_Y - 0.12 * head_ry),
        ("left_eye", 0.45, HEAD_CENTER_Y - 0.12 * head_ry),
        ("right_ear", -math.pi / 2, HEAD_CENTER_Y),
        ("left_ear", math.pi / 2, HEAD_CENTER_Y),
    ):
        angle = around + pose.yaw
        put(name, np.array([head_rx * math.sin(angle), height]))
        visible[KEYPOINT_INDEX[name]] = math.cos(angle) > -0.12
    return points, visible


def place_body(
    identity: Identity, pose: Pose, frame: tuple[int, int], shift: float = 0.0,
) -> BodyGeometry:
    """Pose a person and fit the whole figure (hands up or out included) inside ``frame``.

    Args:
        identity: who.
        pose: how.
        frame: (height, width) in pixels.
        shift: horizontal placement in [-1, 1]: -1 against the left edge of the free space,
            1 against the right, 0 centred.
    """
    height, width = frame
    points, visible = _unit_skeleton(identity, pose)
    head_rx = 0.054 * identity.head_scale
    head_ry = 0.068 * identity.head_scale
    margin = 0.05
    top = min(HEAD_CENTER_Y - head_ry, float(points[:, 1].min())) - margin
    bottom = float(points[:, 1].max()) + FOOT_DROP + margin
    left = min(float(points[:, 0].min()), -head_rx) - margin
    right = max(float(points[:, 0].max()), head_rx) + margin
    scale = min(height * identity.fill / (bottom - top), width * 0.96 / (right - left))
    free_x = width - (right - left) * scale
    origin_x = -left * scale + free_x * (0.5 + 0.5 * float(np.clip(shift, -1.0, 1.0)))
    origin_y = -top * scale + (height - (bottom - top) * scale) / 2.0
    pixels = points * scale + np.array([origin_x, origin_y])  # (18, 2)
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    confidence = (visible & inside).astype(np.float32)
    keypoints = np.concatenate([pixels.astype(np.float32), confidence[:, None]], axis=1)  # (18, 3)
    return BodyGeometry(
        keypoints=keypoints,
        scale=scale,
        head_center=np.array([origin_x, HEAD_CENTER_Y * scale + origin_y]),
        head_axes=(head_rx * scale, head_ry * scale),
        shoulder_half=identity.shoulder_half * math.cos(pose.yaw) * scale,
        hip_half=identity.hip_half * math.cos(pose.yaw) * scale,
        radii={
            "upper_arm": 0.027 * identity.limb_scale * scale,
            "forearm": 0.022 * identity.limb_scale * scale,
            "thigh": 0.042 * identity.limb_scale * scale,
            "shin": 0.03 * identity.limb_scale * scale,
            "neck": 0.024 * identity.limb_scale * scale,
        },
        yaw=pose.yaw,
        pose_name=pose.name,
    )
