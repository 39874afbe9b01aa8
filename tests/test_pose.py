"""Pose utilities: POSE_KEYPOINT / OpenPose JSON reading, bad input, skeleton rendering, visible parts."""

import json
import logging

import numpy as np
import pytest
from fake_datasets import STANDING_POSE

from atelier.models.labels import COCO18_KEYPOINTS
from atelier.models.pose import (
    BODY_PARTS,
    LIMB_COLOR_SCALE,
    OPENPOSE_COLORS,
    BodyPose,
    EmptyPoseError,
    KeypointCountError,
    KeypointsOutsideCanvasError,
    PoseError,
    TooFewKeypointsError,
    lip_categories_for_parts,
    lip_ids_for_parts,
    pose_from_array,
    read_openpose_json,
    read_pose_keypoint,
    read_pose_keypoint_frames,
    render_skeleton,
    visible_body_parts,
)


def flat(points: np.ndarray, confidence: float = 1.0) -> list[float]:
    """[x, y, c, ...] for (18, 2) points; NaN rows become OpenPose's missing [0, 0, 0]."""
    values = []
    for x, y in points:
        values += [0.0, 0.0, 0.0] if np.isnan(x) else [float(x), float(y), confidence]
    return values


def frame(points: np.ndarray, width: int = 512, height: int = 768) -> dict:
    return {"people": [{"pose_keypoints_2d": flat(points)}], "canvas_width": width, "canvas_height": height}


def full_pose(width: int = 256, height: int = 256) -> BodyPose:
    array = np.concatenate([STANDING_POSE * [width, height], np.ones((18, 1))], axis=1)
    return pose_from_array(array, width, height)


def test_normalised_pose_keypoint_is_scaled_to_canvas_pixels():
    pose = read_pose_keypoint([frame(STANDING_POSE)])
    assert (pose.canvas_width, pose.canvas_height) == (512, 768)
    np.testing.assert_allclose(pose.keypoints, STANDING_POSE * [512, 768], rtol=1e-6)
    assert pose.visible().all()


def test_pixel_pose_keypoint_is_detected_and_kept():
    pose = read_pose_keypoint([frame(STANDING_POSE * [512, 768])])
    np.testing.assert_allclose(pose.keypoints, STANDING_POSE * [512, 768], rtol=1e-6)


def test_coordinate_mode_can_be_forced():
    points = STANDING_POSE * 0.5  # all within 0..1: "auto" reads them as normalised
    auto = read_pose_keypoint([frame(points)])
    pixels = read_pose_keypoint([frame(points)], coordinates="pixels", min_visible=0)
    np.testing.assert_allclose(auto.keypoints, points * [512, 768], rtol=1e-6)
    np.testing.assert_allclose(pixels.keypoints, points, rtol=1e-6)


def test_missing_points_have_zero_confidence_and_coordinates():
    points = STANDING_POSE.copy()
    points[7] = np.nan
    pose = read_pose_keypoint([frame(points)])
    assert not pose.visible()[7] and pose.visible().sum() == 17
    assert (pose.keypoints[7] == 0).all()


def test_frames_and_person_index():
    other = STANDING_POSE.copy()
    other[:, 0] = other[:, 0] * 0.5
    data = [frame(STANDING_POSE), {**frame(other), "people": frame(STANDING_POSE)["people"] + frame(other)["people"]}]
    poses = read_pose_keypoint_frames(data)
    assert len(poses) == 2
    second_person = read_pose_keypoint(data, frame=1, person=1)
    np.testing.assert_allclose(second_person.keypoints, other * [512, 768], rtol=1e-6)
    with pytest.raises(PoseError, match="2 frame"):
        read_pose_keypoint(data, frame=2)


def test_empty_person_list_raises():
    with pytest.raises(EmptyPoseError, match="people"):
        read_pose_keypoint([{"people": [], "canvas_width": 512, "canvas_height": 512}])
    with pytest.raises(EmptyPoseError, match="pose_keypoints_2d"):
        read_pose_keypoint([{"people": [{"pose_keypoints_2d": None}], "canvas_width": 8, "canvas_height": 8}])
    with pytest.raises(EmptyPoseError):
        read_pose_keypoint([])


def test_wrong_list_length_raises_with_the_count():
    data = frame(STANDING_POSE)
    data["people"][0]["pose_keypoints_2d"] = data["people"][0]["pose_keypoints_2d"][:51]
    with pytest.raises(KeypointCountError, match="51"):
        read_pose_keypoint([data])


def test_missing_canvas_size_raises():
    data = frame(STANDING_POSE)
    del data["canvas_width"]
    with pytest.raises(PoseError, match="canvas_width"):
        read_pose_keypoint([data])


def test_too_few_visible_points_raise():
    points = np.full((18, 2), np.nan, dtype=np.float32)
    points[0] = (0.5, 0.5)
    points[1] = (0.5, 0.6)
    with pytest.raises(TooFewKeypointsError, match="only 2"):
        read_pose_keypoint([frame(points)], min_visible=3)
    assert read_pose_keypoint([frame(points)], min_visible=2).visible().sum() == 2


def test_outside_points_are_dropped_with_a_warning(caplog):
    points = STANDING_POSE * [100, 200]
    points[7] = (130.0, 150.0)  # left wrist right of the 100-px-wide canvas
    data = [{**frame(points), "canvas_width": 100, "canvas_height": 200}]
    with caplog.at_level(logging.WARNING, logger="atelier.models.pose"):
        pose = read_pose_keypoint(data)
    assert not pose.visible()[7] and pose.visible().sum() == 17
    assert "left_wrist" in caplog.text
    assert "left_arm" in visible_body_parts(pose)  # shoulder and elbow are still there


def test_outside_points_clip_or_raise_on_request():
    points = STANDING_POSE * [100, 200]
    points[7] = (130.0, 150.0)
    data = [{**frame(points), "canvas_width": 100, "canvas_height": 200}]
    clipped = read_pose_keypoint(data, on_outside="clip")
    np.testing.assert_allclose(clipped.keypoints[7], (100.0, 150.0))
    assert clipped.visible()[7]
    with pytest.raises(KeypointsOutsideCanvasError, match="left_wrist"):
        read_pose_keypoint(data, on_outside="raise")


def test_openpose_json_body25_is_converted_to_coco18(tmp_path):
    body25 = np.zeros((25, 3), dtype=np.float32)
    coco_in_body25 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    body25[coco_in_body25, :2] = STANDING_POSE * [300, 400]
    body25[coco_in_body25, 2] = 0.7
    body25[8] = (150, 210, 0.9)  # MidHip, not a COCO-18 point
    path = tmp_path / "person_keypoints.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": body25.ravel().tolist()}]}))
    pose = read_openpose_json(path, 300, 400)
    np.testing.assert_allclose(pose.keypoints, STANDING_POSE * [300, 400], rtol=1e-5)
    np.testing.assert_allclose(pose.confidence, 0.7)


def test_openpose_json_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere_keypoints.json"):
        read_openpose_json(tmp_path / "nowhere_keypoints.json", 10, 10)


def test_resized_pose_scales_each_axis_and_keeps_missing_points_at_zero():
    array = np.concatenate([STANDING_POSE * [200, 400], np.ones((18, 1))], axis=1)
    array[3, 2] = 0
    pose = pose_from_array(array, 200, 400).resized(100, 100)
    np.testing.assert_allclose(pose.keypoints[0], STANDING_POSE[0] * [100, 100], rtol=1e-6)
    assert (pose.keypoints[3] == 0).all() and pose.as_array().shape == (18, 3)


def test_render_skeleton_uses_openpose_colours_on_black():
    pose = full_pose()
    image = render_skeleton(pose)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert (image[0, 0] == 0).all() and (image[255, 255] == 0).all()
    nose = np.round(pose.keypoints[0]).astype(int)
    assert tuple(image[nose[1], nose[0]]) == OPENPOSE_COLORS[0]
    # limb 8 is right knee (9) -> right ankle (10), drawn in 0.6 x colour 8
    midpoint = np.round((pose.keypoints[9] + pose.keypoints[10]) / 2).astype(int)
    expected = tuple(int(c * LIMB_COLOR_SCALE) for c in OPENPOSE_COLORS[8])
    assert tuple(image[midpoint[1], midpoint[0]]) == expected


def test_render_skeleton_skips_limbs_with_a_missing_end_and_rescales():
    array = full_pose().as_array()
    array[10, 2] = 0  # right ankle missing
    pose = pose_from_array(array, 256, 256)
    image = render_skeleton(pose)
    midpoint = np.round((full_pose().keypoints[9] + full_pose().keypoints[10]) / 2).astype(int)
    assert (image[midpoint[1], midpoint[0]] == 0).all()
    small = render_skeleton(pose, width=128, height=64)
    assert small.shape == (64, 128, 3)
    nose = np.round(pose.keypoints[0] * [0.5, 0.25]).astype(int)
    assert tuple(small[nose[1], nose[0]]) == OPENPOSE_COLORS[0]


def test_visible_body_parts_follow_the_keypoints():
    assert visible_body_parts(full_pose()) == set(BODY_PARTS)
    array = full_pose().as_array()
    array[[6, 10, 13], 2] = 0  # left elbow, both ankles
    parts = visible_body_parts(pose_from_array(array, 256, 256))
    assert "left_arm" not in parts and "feet" not in parts
    assert {"head", "torso", "right_arm", "left_leg", "right_leg"} <= parts
    only_upper = full_pose().as_array()
    only_upper[[0, 14, 15, 16, 17], 2] = 0
    assert "head" not in visible_body_parts(pose_from_array(only_upper, 256, 256))


def test_body_parts_map_to_lip_categories():
    categories = lip_categories_for_parts({"left_arm"})
    assert {"left_arm", "upper_clothes"} <= categories and "face" not in categories
    assert "background" not in lip_categories_for_parts(BODY_PARTS)
    assert lip_ids_for_parts({"head"}) == sorted([1, 2, 4, 13])
    with pytest.raises(PoseError, match="unknown body part"):
        lip_categories_for_parts({"tail"})


def test_body_pose_rejects_wrong_shapes():
    with pytest.raises(KeypointCountError):
        BodyPose(np.zeros((17, 2), np.float32), np.zeros(17, np.float32), 10, 10)
    assert len(COCO18_KEYPOINTS) == 18
