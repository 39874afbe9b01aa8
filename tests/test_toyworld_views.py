"""Pose-pair targets that hide body parts (``toyworld.views``) and what TruePose's parsing selection M
makes of them (``train.truepose.selection_rate``)."""

import json

import numpy as np
import pytest
from atelier.models.labels import COCO18_KEYPOINTS, LIP_LABELS
from atelier.models.parsing import LIP
from atelier.models.pose import pose_from_array
from atelier.models.truepose.parsing_selection import selected_source_mask
from atelier.train.toyworld import ToyWorld, ToyWorldConfig, ToyWorldConfigError
from atelier.train.toyworld.views import (
    FULL_VIEW,
    HIDING_VIEWS,
    ViewNameError,
    pose_for_view,
    render_view,
)
from atelier.train.truepose.data import ToyPosePairs
from atelier.train.truepose.selection_rate import (
    SelectionRateOptionError,
    main,
    parse_args,
    selection_rate,
)

SIZE = (64, 48)
LABEL = {name: index for index, name in enumerate(LIP_LABELS)}
POINT = {name: index for index, name in enumerate(COCO18_KEYPOINTS)}
HEAD = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")


@pytest.fixture(scope="module")
def world() -> ToyWorld:
    return ToyWorld(ToyWorldConfig(height=SIZE[0], width=SIZE[1], seed=5, num_people=40, hidden_part_fraction=0.5))


def _hidden(keypoints: np.ndarray, names: tuple[str, ...]) -> bool:
    return bool(np.all(keypoints[[POINT[name] for name in names], 2] == 0))


def test_hidden_part_fraction_changes_only_the_targets_it_redraws(world):
    plain = ToyWorld(ToyWorldConfig(height=SIZE[0], width=SIZE[1], seed=5, num_people=40))
    views = [world.target_view(index) for index in range(40)]
    assert {plain.target_view(index) for index in range(40)} == {FULL_VIEW}
    assert 8 < sum(view != FULL_VIEW for view in views) < 32
    for index in range(12):
        pair, reference = world.pose_pair(index), plain.pose_pair(index)
        np.testing.assert_array_equal(pair.source.image, reference.source.image)
        assert pair.target.view == views[index]
        if views[index] == FULL_VIEW:
            np.testing.assert_array_equal(pair.target.image, reference.target.image)
            np.testing.assert_array_equal(pair.target.keypoints, reference.target.keypoints)
        else:
            assert not np.array_equal(pair.target.parsing, reference.target.parsing)


@pytest.mark.parametrize("view", HIDING_VIEWS)
def test_each_view_hides_its_keypoints_and_pixels(world, view):
    design = world.design_person(1)
    render, keypoints, pose = render_view(design.identity, design.poses[1], design.garments, SIZE,
                                          design.shifts[1], view)
    assert render.image.shape == (*SIZE, 3) and render.parsing.shape == SIZE
    assert 0.05 < render.masks["person"].mean() < 0.9
    visible = keypoints[:, 2] > 0
    assert np.all((keypoints[visible, 0] >= 0) & (keypoints[visible, 0] < SIZE[1]))
    assert np.all((keypoints[visible, 1] >= 0) & (keypoints[visible, 1] < SIZE[0]))
    if view == "back":
        assert _hidden(keypoints, HEAD)
        assert keypoints[POINT["right_shoulder"], 0] > keypoints[POINT["left_shoulder"], 0]  # seen from behind
        top = render.masks["person"].any(axis=1).argmax()
        assert np.all(render.parsing[top:top + 3][render.masks["person"][top:top + 3]] == LABEL["hair"])
    elif view == "far_arm":
        far = "left" if pose.yaw > 0 else "right"
        assert _hidden(keypoints, (f"{far}_elbow", f"{far}_wrist"))
        assert not _hidden(keypoints, (f"{'right' if far == 'left' else 'left'}_elbow",))
    elif view == "waist_up":
        assert _hidden(keypoints, ("right_knee", "left_knee", "right_ankle", "left_ankle"))
        assert not np.isin(render.parsing, [LABEL["left_shoe"], LABEL["right_shoe"]]).any()
    else:
        assert _hidden(keypoints, HEAD)
        assert not _hidden(keypoints, ("neck",))


def test_selection_leaves_out_what_the_target_hides(world):
    design = world.design_person(2)
    source, source_keypoints, _ = render_view(design.identity, design.poses[0], design.garments, SIZE,
                                              design.shifts[0], FULL_VIEW)
    dropped = {"back": ("face", "hair"), "head_cut": ("face", "hair"), "waist_up": ("left_shoe", "right_shoe")}
    for view, labels in dropped.items():
        _, keypoints, _ = render_view(design.identity, design.poses[1], design.garments, SIZE, design.shifts[1], view)
        selected = selected_source_mask(source.parsing, LIP, pose_from_array(keypoints, SIZE[1], SIZE[0]))
        hidden_labels = np.isin(source.parsing, [LABEL[name] for name in labels])
        assert hidden_labels.any() and not (selected & hidden_labels).any(), view
        assert selected.any()
    full = selected_source_mask(source.parsing, LIP, pose_from_array(source_keypoints, SIZE[1], SIZE[0]))
    np.testing.assert_array_equal(full, source.parsing > 0)


def test_unknown_view_and_fraction_are_rejected():
    with pytest.raises(ViewNameError, match="'sideways' is unknown"):
        pose_for_view(ToyWorld().design_person(0).poses[1], "sideways")
    with pytest.raises(ToyWorldConfigError, match="hidden_part_fraction"):
        ToyWorldConfig(hidden_part_fraction=1.5)


def test_selection_rate_follows_the_fraction():
    everything = selection_rate(ToyPosePairs(SIZE, 0, 12, 0, hidden_part_fraction=1.0))
    assert everything.pairs == 12 and everything.partial >= 10 and everything.mean_excluded > 0.0
    assert set(everything.by_view) <= set(HIDING_VIEWS)
    nothing = selection_rate(ToyPosePairs(SIZE, 0, 12, 0, hidden_part_fraction=0.0))
    assert nothing.partial == 0 and nothing.rate == 0.0 and nothing.by_view == {FULL_VIEW: [12, 0]}


def test_selection_rate_command_prints_one_json_line(capsys):
    result = main(["--pairs", "6", "--size", "64x48", "--hidden-part-fraction", "1"])
    line = json.loads(capsys.readouterr().out)
    assert line == result and line["pairs"] == 6 and 0.0 <= line["rate"] <= 1.0
    with pytest.raises(SelectionRateOptionError, match="--hidden-part-fraction"):
        parse_args(["--hidden-part-fraction", "2"])
    with pytest.raises(SystemExit, match="--hidden-part-fraction"):
        main(["--hidden-part-fraction", "2"])
