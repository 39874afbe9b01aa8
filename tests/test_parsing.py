"""Parsing utilities: palettes, label-map files, masks, boxes, agnostic masks, LIP <-> ATR."""

import numpy as np
import pytest
from fake_datasets import STANDING_POSE, fake_lip_map, write_grey_png, write_palette_png
from PIL import Image

from atelier.models.labels import ATR_LABELS, ATR_PALETTE, LIP_LABELS, LIP_PALETTE
from atelier.models.parsing import (
    ATR,
    LIP,
    AgnosticMaskConfig,
    ParsingError,
    UnknownLabelError,
    UnknownPaletteColourError,
    UnmappableLabelError,
    agnostic_mask,
    bounding_box,
    category_mask,
    category_masks,
    convert_label_map,
    labels_to_palette_image,
    load_label_map,
    palette_image_to_labels,
    region_boxes,
)
from atelier.models.pose import pose_from_array

H, W = 128, 96


def lip(name: str) -> int:
    return LIP_LABELS.index(name)


def standing_pose():
    array = np.concatenate([STANDING_POSE * [W, H], np.ones((18, 1))], axis=1)
    return pose_from_array(array, W, H)


def test_label_sets_use_the_shared_labels_and_palettes():
    assert LIP.labels == LIP_LABELS and LIP.palette == LIP_PALETTE and len(LIP) == 20
    assert ATR.labels == ATR_LABELS and ATR.palette == ATR_PALETTE and len(ATR) == 18
    with pytest.raises(UnknownLabelError, match="belt"):
        LIP.index("belt")


@pytest.mark.parametrize("label_set", [LIP, ATR])
def test_palette_round_trip(label_set):
    label_map = np.random.default_rng(0).integers(0, len(label_set), size=(17, 13))
    image = labels_to_palette_image(label_map, label_set)
    assert image.shape == (17, 13, 3) and image.dtype == np.uint8
    assert tuple(image[3, 4]) == label_set.palette[label_map[3, 4]]
    np.testing.assert_array_equal(palette_image_to_labels(image, label_set), label_map)


def test_unknown_colours_are_listed_with_pixel_counts():
    image = labels_to_palette_image(fake_lip_map(H, W), LIP)
    image[0, :3] = (1, 2, 3)
    image[1, 0] = (9, 9, 9)
    with pytest.raises(UnknownPaletteColourError) as error:
        palette_image_to_labels(image, LIP)
    message = str(error.value)
    assert "(1, 2, 3): 3 px" in message and "(9, 9, 9): 1 px" in message
    assert message.index("(1, 2, 3)") < message.index("(9, 9, 9)")


def test_out_of_range_ids_raise():
    with pytest.raises(UnknownLabelError, match="25"):
        labels_to_palette_image(np.array([[0, 25]]), LIP)


def test_load_label_map_reads_palette_grey_and_rgb_files(tmp_path):
    label_map = fake_lip_map(H, W)
    write_palette_png(tmp_path / "p.png", label_map)
    write_grey_png(tmp_path / "l.png", label_map)
    Image.fromarray(labels_to_palette_image(label_map, LIP)).save(tmp_path / "rgb.png")
    for name in ("p.png", "l.png", "rgb.png"):
        np.testing.assert_array_equal(load_label_map(tmp_path / name, LIP), label_map)


def test_load_label_map_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.png"):
        load_label_map(tmp_path / "absent.png", LIP)
    Image.fromarray(labels_to_palette_image(fake_lip_map(H, W), LIP)).save(tmp_path / "lossy.jpg", quality=70)
    with pytest.raises(UnknownPaletteColourError, match="lossy.jpg"):
        load_label_map(tmp_path / "lossy.jpg", LIP)
    write_grey_png(tmp_path / "atr_as_lip.png", np.full((4, 4), 19, dtype=np.uint8))
    with pytest.raises(UnknownLabelError, match="atr_as_lip.png"):
        load_label_map(tmp_path / "atr_as_lip.png", ATR)


def test_category_masks():
    label_map = fake_lip_map(H, W)
    upper = category_mask(label_map, LIP, ("upper_clothes", "coat"))
    assert upper.dtype == bool and upper.sum() == (label_map == lip("upper_clothes")).sum() > 0
    masks = category_masks(label_map, LIP)
    assert set(masks) == {"background", "hair", "face", "upper_clothes", "left_arm", "right_arm",
                          "pants", "left_shoe", "right_shoe"}
    assert sum(mask.sum() for mask in masks.values()) == H * W


def test_bounding_box_is_exclusive_and_clipped():
    mask = np.zeros((10, 8), dtype=bool)
    mask[2:5, 3:7] = True
    assert bounding_box(mask) == (3, 2, 7, 5)
    assert bounding_box(mask, margin=3) == (0, 0, 8, 8)
    assert bounding_box(np.zeros((4, 4), dtype=bool)) is None
    assert bounding_box(mask, min_pixels=13) is None


def test_region_boxes_cover_each_region():
    label_map = fake_lip_map(H, W)
    boxes = region_boxes(label_map)
    assert set(boxes) == {"hair", "face", "upper", "lower", "arms", "shoes"}
    x0, y0, x1, y1 = boxes["upper"]
    crop = label_map[y0:y1, x0:x1]
    assert (crop == lip("upper_clothes")).sum() == (label_map == lip("upper_clothes")).sum()
    assert bounding_box(label_map == lip("upper_clothes")) == boxes["upper"]
    atr_boxes = region_boxes(convert_label_map(label_map, LIP, ATR), ATR)
    assert atr_boxes["upper_clothes"] == boxes["upper"] and "background" not in atr_boxes


def test_upper_agnostic_mask_covers_the_top_and_keeps_face_and_lower_body():
    label_map = fake_lip_map(H, W)
    mask = agnostic_mask(label_map, "upper")
    for covered in ("upper_clothes", "left_arm", "right_arm"):
        assert mask[label_map == lip(covered)].all(), covered
    for kept in ("face", "hair", "pants", "left_shoe", "right_shoe"):
        assert not mask[label_map == lip(kept)].any(), kept
    grown = mask & (label_map == lip("background"))
    assert grown.any()  # dilation reaches past the garment's outline


def test_lower_and_dress_agnostic_masks():
    label_map = fake_lip_map(H, W)
    lower = agnostic_mask(label_map, "lower")
    assert lower[label_map == lip("pants")].all()
    assert not lower[label_map == lip("upper_clothes")].any() and not lower[label_map == lip("face")].any()
    dress = agnostic_mask(label_map, "dress")
    assert dress[label_map == lip("pants")].all() and dress[label_map == lip("upper_clothes")].all()
    assert not dress[label_map == lip("face")].any()
    with pytest.raises(ParsingError, match="garment"):
        agnostic_mask(label_map, "hat")


def test_agnostic_mask_with_pose_keeps_hand_skin_only_when_asked():
    label_map = fake_lip_map(H, W)
    pose = standing_pose()
    keep = agnostic_mask(label_map, "upper", pose)
    cover = agnostic_mask(label_map, "upper", pose, AgnosticMaskConfig(keep_hands=False))
    difference = cover & ~keep
    assert difference.any()
    arms = np.isin(label_map, [lip("left_arm"), lip("right_arm")])
    assert arms[difference].all()  # only arm skin near the hands is given back
    ys, _ = np.nonzero(difference)
    assert ys.min() > STANDING_POSE[3, 1] * H  # below the elbows
    half = agnostic_mask(label_map, "upper", pose.resized(W // 2, H // 2))
    np.testing.assert_array_equal(half, keep)  # a pose on another canvas is rescaled


def test_lip_to_atr_conversion():
    label_map = fake_lip_map(H, W)
    label_map[40:44, 20:24] = lip("glove")  # inside the right arm's area on the image's left
    label_map[60:70, 40:50] = lip("coat")
    atr = convert_label_map(label_map, LIP, ATR)
    assert (atr[label_map == lip("face")] == ATR_LABELS.index("face")).all()
    assert (atr[label_map == lip("pants")] == ATR_LABELS.index("pants")).all()
    assert (atr[label_map == lip("coat")] == ATR_LABELS.index("upper_clothes")).all()
    assert (atr[40:44, 20:24] == ATR_LABELS.index("right_arm")).all()
    with pytest.raises(UnmappableLabelError, match="glove"):
        convert_label_map(label_map, LIP, ATR, fallback="raise")


def test_atr_to_lip_conversion_and_round_trip():
    label_map = fake_lip_map(H, W)
    atr = convert_label_map(label_map, LIP, ATR)
    np.testing.assert_array_equal(convert_label_map(atr, ATR, LIP), label_map)
    atr[0:3, 0:3] = ATR_LABELS.index("bag")
    atr[64, 40:50] = ATR_LABELS.index("belt")
    back = convert_label_map(atr, ATR, LIP)
    assert (back[0:3, 0:3] == lip("background")).all() and (back[64, 40:50] == lip("pants")).all()
