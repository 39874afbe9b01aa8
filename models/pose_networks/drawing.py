"""Target skeletons drawn the way AnimateAnyone's pose images are.

The public pose images come from ``src/dwpose`` ``draw_pose``: ``util.draw_bodypose`` draws each of
the 17 OpenPose limbs as a filled ellipse of half-width ``stickwidth = 4`` in its colour (centre,
half-length and angle truncated with ``int``), scales the whole canvas by 0.6, then draws each joint
as a disc of radius 4 in its full colour at ``int`` pixel positions, on black. ``draw_dwpose_body``
follows it step by step with ``models/pose``'s limb order and colours (the same as the public
``limbSeq`` and ``colors``); ``models/pose.render_skeleton`` rounds instead of truncating and
draws limbs from the other end, which moves edges by a pixel. ``draw_handpose`` / ``draw_facepose``
(hands, face dots) are not drawn from POSE_KEYPOINT here: connect a DWPose preprocessor's image as
``skeleton`` for those. The PoseGuider reads the drawing in [0, 1] (``do_normalize=False``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..pose import LIMB_COLOR_SCALE, OPENPOSE_COLORS, OPENPOSE_LIMBS, BodyPose

DWPOSE_STICK_WIDTH = 4
DWPOSE_JOINT_RADIUS = 4


def draw_dwpose_body(pose: BodyPose, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 drawing of ``pose``'s body as DWPose's ``util.draw_bodypose`` makes it."""
    canvas = np.zeros((height, width, 3), dtype=np.uint8)  # (H, W, 3)
    scaled = pose.resized(width, height)
    visible = scaled.visible()
    points = scaled.keypoints  # (18, 2) pixels
    for (start, end), color in zip(OPENPOSE_LIMBS, OPENPOSE_COLORS, strict=False):
        if not (visible[start] and visible[end]):
            continue
        (x0, y0), (x1, y1) = points[start], points[end]
        length = ((y0 - y1) ** 2 + (x0 - x1) ** 2) ** 0.5
        angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
        centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
        polygon = cv2.ellipse2Poly(centre, (int(length / 2), DWPOSE_STICK_WIDTH), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, list(color))
    canvas = (canvas * LIMB_COLOR_SCALE).astype(np.uint8)  # the public code dims the limbs afterwards
    for index, color in enumerate(OPENPOSE_COLORS):
        if visible[index]:
            x, y = points[index]
            cv2.circle(canvas, (int(x), int(y)), DWPOSE_JOINT_RADIUS, list(color), thickness=-1)
    return canvas


@dataclass(frozen=True)
class PoseDrawings:
    """The target pose(s): drawn from ``poses``, or ready skeleton images.

    Attributes:
        poses: one BodyPose per target frame (used when ``skeleton`` is None).
        skeleton: (B_k, H, W, 3) skeleton IMAGE in [0, 1], resized to the sampled size; or None.
    """

    poses: tuple[BodyPose, ...]
    skeleton: torch.Tensor | None = None

    def images(self, height: int, width: int) -> torch.Tensor:
        """(B_p, 3, height, width) drawings in [0, 1]."""
        if self.skeleton is not None:
            channels_first = self.skeleton[..., :3].permute(0, 3, 1, 2).float()  # (B_k, 3, H, W)
            return F.interpolate(channels_first, size=(height, width), mode="bilinear", align_corners=False)
        drawn = np.stack([draw_dwpose_body(pose, height, width) for pose in self.poses])  # (B_p, H, W, 3) uint8
        return torch.from_numpy(drawn).permute(0, 3, 1, 2).float() / 255.0  # (B_p, 3, H, W)
