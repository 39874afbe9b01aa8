"""Target views that hide body parts, for the second picture of a pose pair.

A fully framed toy person facing the camera shows every body part, so TruePose's target-oriented
parsing selection (§4.2: M = the source parsing of the categories "contained in the target pose")
would always select the whole person. With ``ToyWorldConfig.hidden_part_fraction`` > 0, a pose
pair's target is drawn, with that probability, in one of these views instead of ``full``:

- ``back``: seen from behind. The pose is turned to face the camera (yaw 0), painted from the front
  with the back of the head all hair and without the front-only pieces (pocket, logo patches), then
  mirrored, so the person's right side is on the image's right. Nose, eyes and ears are hidden
  (confidence 0): from behind the head hides the face and the hair covers the ears.
- ``far_arm``: a three-quarter turn (|yaw| = ``FAR_ARM_YAW``) with the far arm hanging behind the
  torso; its elbow and wrist are hidden.
- ``waist_up``: framed from above the head to mid-thigh; knees and ankles (and hands reaching far out)
  leave the frame.
- ``head_cut``: framed from the chin down; the head leaves the frame.

A keypoint that leaves the frame gets confidence 0, as in ``body.place_body``. The ``full`` view is
exactly the picture the world draws without this module.
"""

from dataclasses import replace

import numpy as np

from .body import KEYPOINT_INDEX, BodyGeometry, Identity, Pose, place_body
from .garments import GarmentSpec
from .render import Render, far_side, render_person

FULL_VIEW = "full"
HIDING_VIEWS: tuple[str, ...] = ("back", "far_arm", "waist_up", "head_cut")
HEAD_KEYPOINTS: tuple[str, ...] = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
FAR_ARM_YAW = 0.75
FAR_ARM_ANGLES = (-8.0, -12.0)  # (upper arm, forearm): hanging just inside the torso's edge
WAIST_UP_BELOW_HIPS = 0.12  # body units below the hips where the waist-up frame ends (knees are lower)
HEAD_CUT_ABOVE_NECK = 0.045  # body units above the neck keypoint where the head-cut frame starts (the chin)
FRAME_MARGIN = 0.04  # body units


class ViewNameError(ValueError):
    """A view name that is neither ``full`` nor one of HIDING_VIEWS."""


def sample_view(rng: np.random.Generator, hidden_part_fraction: float) -> str:
    """``full``, or with probability ``hidden_part_fraction`` one of HIDING_VIEWS (uniformly)."""
    if rng.random() >= hidden_part_fraction:
        return FULL_VIEW
    return HIDING_VIEWS[rng.integers(len(HIDING_VIEWS))]


def pose_for_view(pose: Pose, view: str) -> Pose:
    """The pose a view draws: ``back`` faces the camera (yaw 0, then mirrored); ``far_arm`` turns the body
    (keeping the pose's direction of turn, else to the image's right) and hangs the far arm behind it."""
    if view not in (FULL_VIEW, *HIDING_VIEWS):
        raise ViewNameError(f"view {view!r} is unknown; choose {FULL_VIEW!r} or one of {list(HIDING_VIEWS)}")
    if view == "back":
        return replace(pose, yaw=0.0)
    if view == "far_arm":
        yaw = -FAR_ARM_YAW if pose.yaw < 0 else FAR_ARM_YAW
        return replace(pose, yaw=yaw, **{f"{far_side(yaw)}_arm": FAR_ARM_ANGLES})
    return pose


def hidden(keypoints: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """A copy of (18, 3) ``keypoints`` with the named points' confidence set to 0."""
    result = keypoints.copy()
    result[[KEYPOINT_INDEX[name] for name in names], 2] = 0.0
    return result


def reframed(g: BodyGeometry, top: float, bottom: float, center_x: float, frame: tuple[int, int]) -> BodyGeometry:
    """The figure zoomed so pixel rows ``top``..``bottom`` fill the frame's height, ``center_x`` centred;
    keypoints that leave the frame get confidence 0."""
    height, width = frame
    factor = height / (bottom - top)
    zoomed = g.zoomed(factor, (width / 2.0 - center_x * factor, -top * factor))
    x, y = zoomed.keypoints[:, 0], zoomed.keypoints[:, 1]
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    keypoints = zoomed.keypoints.copy()
    keypoints[:, 2] *= inside
    return replace(zoomed, keypoints=keypoints)


def geometry_for_view(g: BodyGeometry, view: str, frame: tuple[int, int]) -> BodyGeometry:
    """The placed figure framed and with the keypoints that ``view`` hides at confidence 0."""
    if view == "back":
        return replace(g, keypoints=hidden(g.keypoints, HEAD_KEYPOINTS))
    if view == "far_arm":
        far = far_side(g.yaw)
        return replace(g, keypoints=hidden(g.keypoints, (f"{far}_elbow", f"{far}_wrist")))
    if view == "waist_up":
        top = g.head_center[1] - g.head_axes[1] - g.units(FRAME_MARGIN)
        return reframed(g, top, g.hip_center[1] + g.units(WAIST_UP_BELOW_HIPS), g.hip_center[0], frame)
    if view == "head_cut":
        top = g.point("neck")[1] - g.units(HEAD_CUT_ABOVE_NECK)
        bottom = float(g.keypoints[:, 1].max()) + g.units(FRAME_MARGIN)
        return reframed(g, top, bottom, g.hip_center[0], frame)
    return g


def mirrored(render: Render, keypoints: np.ndarray, width: int) -> tuple[Render, np.ndarray]:
    """Picture, maps, masks and (18, 3) keypoints flipped left to right (labels keep the person's sides)."""
    flipped = keypoints.copy()
    flipped[:, 0] = (width - 1) - flipped[:, 0]
    return Render(
        render.image[:, ::-1].copy(), render.parsing[:, ::-1].copy(), render.parsing_atr[:, ::-1].copy(),
        {name: mask[:, ::-1].copy() for name, mask in render.masks.items()},
    ), flipped


def render_view(identity: Identity, pose: Pose, garments: dict[str, GarmentSpec], frame: tuple[int, int], shift: float,
                view: str) -> tuple[Render, np.ndarray, Pose]:
    """A dressed person in ``view``: (render, (18, 3) keypoints, the pose drawn)."""
    pose = pose_for_view(pose, view)
    g = geometry_for_view(place_body(identity, pose, frame, shift), view, frame)
    render = render_person(identity, g, garments, frame, from_behind=view == "back")
    if view == "back":
        render, keypoints = mirrored(render, g.keypoints, frame[1])
        return render, keypoints, pose
    return render, g.keypoints, pose
