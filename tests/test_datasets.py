"""Data-set loaders on small fake trees: sample-dict convention, content, and missing-file errors."""

import logging
import shutil

import numpy as np
import pytest
import torch
from fake_datasets import (
    STANDING_POSE,
    build_deepfashion_cfld,
    build_deepfashion_pidm,
    build_dresscode,
    build_hm,
    build_polyvore,
    build_vitonhd,
    colour,
    fake_lip_map,
)
from torch.utils.data import DataLoader

from atelier.models.labels import ATR_LABELS, LIP_LABELS
from atelier.train.datasets import (
    DatasetFormatError,
    DatasetLayoutError,
    DeepFashionPoseTransfer,
    DressCode,
    HMArticles,
    PolyvoreOutfits,
    VitonHD,
    to_signed,
)
from atelier.train.datasets import sample as keys


def assert_image(tensor: torch.Tensor, height: int, width: int, rgb=None) -> None:
    """(3, H, W) float32 in [0, 1], optionally a solid colour (JPEG tolerance)."""
    assert tensor.shape == (3, height, width) and tensor.dtype == torch.float32
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0
    if rgb is not None:
        mean = tensor.mean(dim=(1, 2)) * 255
        np.testing.assert_allclose(mean.numpy(), rgb, atol=3)


# VITON-HD


def test_vitonhd_sample(tmp_path):
    pairs = build_vitonhd(tmp_path)
    dataset = VitonHD(tmp_path, "test")
    assert len(dataset) == 2
    sample = dataset[0]
    assert_image(sample[keys.IMAGE], 32, 24, colour(0))
    assert_image(sample[keys.GARMENT], 32, 24, colour(11))  # unpaired: the other person's garment
    assert sample[keys.NAME] == "00001_00" and sample[keys.GARMENT_NAME] == pairs[0][1][:-4]
    garment_mask = sample[keys.GARMENT_MASK]
    assert garment_mask.shape == (1, 32, 24) and set(garment_mask.unique().tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(sample[keys.PARSING].numpy(), fake_lip_map(32, 24))
    assert sample[keys.PARSING].dtype == torch.int64 and sample[keys.PARSING_LABELS] == "lip"
    np.testing.assert_allclose(sample[keys.KEYPOINTS][:, :2].numpy(), STANDING_POSE * [24, 32], rtol=1e-5)
    np.testing.assert_allclose(sample[keys.KEYPOINTS][:, 2].numpy(), 0.9, rtol=1e-6)
    agnostic = sample[keys.AGNOSTIC_MASK][0].bool().numpy()
    parsing = sample[keys.PARSING].numpy()
    assert agnostic[parsing == LIP_LABELS.index("upper_clothes")].all()
    assert not agnostic[parsing == LIP_LABELS.index("face")].any()


def test_vitonhd_resize_paired_and_batching(tmp_path):
    build_vitonhd(tmp_path)
    dataset = VitonHD(tmp_path, "test", paired=True, size=(64, 48))
    sample = dataset[0]
    assert_image(sample[keys.GARMENT], 64, 48, colour(10))
    assert sample[keys.PARSING].shape == (64, 48) and sample[keys.AGNOSTIC_MASK].shape == (1, 64, 48)
    np.testing.assert_allclose(sample[keys.KEYPOINTS][:, :2].numpy(), STANDING_POSE * [48, 64], rtol=1e-5)
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch[keys.IMAGE].shape == (2, 3, 64, 48) and batch[keys.NAME] == ["00001_00", "00002_00"]
    assert to_signed(batch[keys.IMAGE]).min() >= -1.0


def test_vitonhd_older_folder_names_and_png_masks(tmp_path):
    build_vitonhd(tmp_path)
    split = tmp_path / "test"
    (split / "image-parse-v3").rename(split / "image-parse")
    (split / "openpose_json").rename(split / "openpose-json")
    for mask in (split / "cloth-mask").iterdir():
        mask.rename(mask.with_suffix(".png"))
    assert VitonHD(tmp_path, "test")[1][keys.GARMENT_MASK].sum() > 0


def test_vitonhd_missing_files_are_named(tmp_path):
    build_vitonhd(tmp_path)
    with pytest.raises(DatasetLayoutError, match="train"):
        VitonHD(tmp_path, "train")
    (tmp_path / "test" / "openpose_json" / "00002_00_keypoints.json").unlink()
    dataset = VitonHD(tmp_path, "test")
    dataset[0]
    with pytest.raises(FileNotFoundError, match="00002_00_keypoints.json"):
        dataset[1]
    shutil.rmtree(tmp_path / "test" / "cloth-mask")
    with pytest.raises(DatasetLayoutError, match="cloth-mask"):
        VitonHD(tmp_path, "test")
    (tmp_path / "test_pairs.txt").unlink()
    (tmp_path / "test" / "cloth-mask").mkdir()
    with pytest.raises(DatasetLayoutError, match="test_pairs.txt"):
        VitonHD(tmp_path, "test")


def test_vitonhd_missing_image_is_named(tmp_path):
    build_vitonhd(tmp_path)
    (tmp_path / "test" / "cloth" / "00001_00.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match="00001_00.jpg"):
        VitonHD(tmp_path, "test")[1]


# DressCode


def test_dresscode_samples_over_categories(tmp_path):
    build_dresscode(tmp_path)
    dataset = DressCode(tmp_path, "train", categories=("upper_body", "dresses"), size=(64, 48))
    assert len(dataset) == 3
    upper, dress = dataset[1], dataset[2]
    assert_image(upper[keys.IMAGE], 64, 48, colour(1))
    assert_image(upper[keys.GARMENT], 64, 48, colour(21))
    assert upper[keys.CATEGORY] == "upper" and dress[keys.CATEGORY] == "dress"
    assert upper[keys.NAME] == "000002_0" and upper[keys.GARMENT_NAME] == "000002_1"
    assert upper[keys.PARSING_LABELS] == "atr" and upper[keys.PARSING].shape == (64, 48)
    assert (upper[keys.PARSING] == ATR_LABELS.index("upper_clothes")).any()
    assert keys.GARMENT_MASK not in upper
    keypoints = upper[keys.KEYPOINTS].numpy()
    visible = np.arange(18) != 4
    np.testing.assert_allclose(keypoints[visible, :2], (STANDING_POSE * [48, 64])[visible], rtol=1e-4)
    assert keypoints[4].tolist() == [0.0, 0.0, 0.0] and np.allclose(keypoints[visible, 2], 0.8)
    upper_mask = upper[keys.AGNOSTIC_MASK][0].bool().numpy()
    dress_mask = dress[keys.AGNOSTIC_MASK][0].bool().numpy()
    pants = (upper[keys.PARSING] == ATR_LABELS.index("pants")).numpy()
    assert not upper_mask[pants].any() and dress_mask[pants].all()


def test_dresscode_missing_files_are_named(tmp_path):
    build_dresscode(tmp_path)
    with pytest.raises(DatasetLayoutError, match="lower_body"):
        DressCode(tmp_path, "train")
    with pytest.raises(DatasetLayoutError, match="test_pairs_paired.txt"):
        DressCode(tmp_path, "test", categories=("upper_body",))
    (tmp_path / "upper_body" / "label_maps" / "000001_4.png").unlink()
    with pytest.raises(DatasetLayoutError, match="000001_4.png"):
        DressCode(tmp_path, "train", categories=("upper_body",))[0]
    (tmp_path / "dresses" / "keypoints" / "020001_2.json").write_text('{"points": []}')
    with pytest.raises(DatasetFormatError, match="020001_2.json"):
        DressCode(tmp_path, "train", categories=("dresses",))[0]


# DeepFashion


def test_deepfashion_cfld_layout(tmp_path):
    pairs = build_deepfashion_cfld(tmp_path)
    dataset = DeepFashionPoseTransfer(tmp_path, "train", size=(64, 44))
    assert dataset.layout == "cfld" and len(dataset) == 2
    sample = dataset[1]
    assert_image(sample[keys.IMAGE], 64, 44, colour(1))
    assert_image(sample[keys.TARGET_IMAGE], 64, 44, colour(0))
    assert sample[keys.NAME] == f"{pairs[1][0][:-4]}__{pairs[1][1][:-4]}"
    source, target = sample[keys.KEYPOINTS].numpy(), sample[keys.TARGET_KEYPOINTS].numpy()
    expected_x = (np.floor(STANDING_POSE[:, 0] * 176) + 1) * 44 / 176  # source is image 1: x shifted by 1
    np.testing.assert_allclose(source[:17, 0], expected_x[:17], rtol=1e-5)
    np.testing.assert_allclose(target[:17, 1], np.floor(STANDING_POSE[:17, 1] * 256) * 64 / 256, rtol=1e-5)
    assert source[17].tolist() == [0.0, 0.0, 0.0]


def test_deepfashion_fashion_spelling_and_gfla_folder(tmp_path):
    build_deepfashion_cfld(tmp_path)
    for kind in ("pairs", "annotation"):
        (tmp_path / f"fasion-resize-{kind}-train.csv").rename(tmp_path / f"fashion-resize-{kind}-train.csv")
    (tmp_path / "train_highres").rename(tmp_path / "train")
    assert DeepFashionPoseTransfer(tmp_path, "train")[0][keys.IMAGE].shape == (3, 32, 22)


def test_deepfashion_pidm_layout(tmp_path):
    names = build_deepfashion_pidm(tmp_path)
    dataset = DeepFashionPoseTransfer(tmp_path, "train")
    assert dataset.layout == "pidm" and len(dataset) == 2  # one target, two sources
    sample = dataset[1]
    assert_image(sample[keys.IMAGE], 32, 32, colour(2))
    assert_image(sample[keys.TARGET_IMAGE], 32, 32, colour(0))
    assert sample[keys.NAME] == "01_3_back__01_1_front"
    keypoints = sample[keys.KEYPOINTS].numpy()
    visible = np.arange(18) != 16
    np.testing.assert_allclose(keypoints[visible, :2], (STANDING_POSE * 32)[visible], atol=0.2)
    assert keypoints[16].tolist() == [0.0, 0.0, 0.0]
    assert names[0].startswith("img/")


def test_deepfashion_missing_files_are_named(tmp_path):
    with pytest.raises(DatasetLayoutError, match="fasion-resize-pairs-train.csv"):
        DeepFashionPoseTransfer(tmp_path, "train")
    build_deepfashion_cfld(tmp_path / "cfld")
    (tmp_path / "cfld" / "fasion-resize-annotation-train.csv").unlink()
    with pytest.raises(DatasetLayoutError, match="annotation"):
        DeepFashionPoseTransfer(tmp_path / "cfld", "train")
    build_deepfashion_pidm(tmp_path / "pidm")
    (tmp_path / "pidm" / "pose" / "WOMEN" / "Dresses" / "id_00000001" / "01_1_front.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="01_1_front.txt"):
        DeepFashionPoseTransfer(tmp_path / "pidm", "train")[0]


def test_deepfashion_image_without_keypoints_is_a_format_error(tmp_path):
    build_deepfashion_cfld(tmp_path)
    with (tmp_path / "fasion-resize-pairs-train.csv").open("a") as handle:
        handle.write("fashionMENDenimid0000008001_1front.jpg,unknown.jpg\n")
    dataset = DeepFashionPoseTransfer(tmp_path, "train")
    images = tmp_path / "train_highres"
    (images / "unknown.jpg").write_bytes((images / dataset.pairs[0][0]).read_bytes())
    with pytest.raises(DatasetFormatError, match="unknown.jpg"):
        dataset[2]


# Polyvore


def test_polyvore_outfits_in_index_order(tmp_path):
    build_polyvore(tmp_path)
    dataset = PolyvoreOutfits(tmp_path, "train")
    assert len(dataset) == 2
    outfit = dataset[0]
    assert outfit[keys.NAME] == "100"
    assert outfit[keys.ITEM_IDS] == ["t1", "b1", "s1"]
    assert outfit[keys.ITEM_CATEGORIES] == ["tops", "bottoms", "shoes"]
    assert outfit[keys.ITEM_IMAGES].shape == (3, 3, 16, 16) and outfit[keys.ITEM_VALID].all()
    np.testing.assert_allclose(outfit[keys.ITEM_IMAGES][1].mean(dim=(1, 2)).numpy() * 255, colour(1), atol=3)


def test_polyvore_padding_makes_outfits_batchable(tmp_path):
    build_polyvore(tmp_path)
    dataset = PolyvoreOutfits(tmp_path / "polyvore_outfits", "train", size=(8, 8), max_items=3)
    short = dataset[1]
    assert short[keys.ITEM_VALID].tolist() == [True, True, False]
    assert short[keys.ITEM_IDS] == ["t2", "g1", ""] and short[keys.ITEM_IMAGES][2].abs().sum() == 0
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch[keys.ITEM_IMAGES].shape == (2, 3, 3, 8, 8)
    truncated = PolyvoreOutfits(tmp_path, "train", max_items=2)[0]
    assert truncated[keys.ITEM_IDS] == ["t1", "b1"]


def test_polyvore_missing_files_are_named(tmp_path):
    build_polyvore(tmp_path)
    with pytest.raises(DatasetLayoutError, match="disjoint"):
        PolyvoreOutfits(tmp_path, "train", variant="disjoint")
    (tmp_path / "polyvore_outfits" / "images" / "s1.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match="s1.jpg"):
        PolyvoreOutfits(tmp_path, "train")[0]
    (tmp_path / "polyvore_outfits" / "polyvore_item_metadata.json").write_text("{}")
    with pytest.raises(DatasetFormatError, match="t1"):
        PolyvoreOutfits(tmp_path, "train")


# H&M


def test_hm_articles_with_captions(tmp_path, caplog):
    rows = build_hm(tmp_path)
    with caplog.at_level(logging.WARNING, logger="atelier.train.datasets.hm"):
        dataset = HMArticles(tmp_path, size=(40, 32))
    assert len(dataset) == 2 and "0999999001" in caplog.text
    first, second = dataset[0], dataset[1]
    assert first[keys.NAME] == "0108775015"
    assert_image(first[keys.IMAGE], 40, 32, colour(0))
    assert first[keys.CAPTION] == rows[0]["detail_desc"] and second[keys.CAPTION] == ""
    assert first[keys.CATEGORY] == "Vest top" and first[keys.ATTRIBUTES]["colour_group_name"] == "Black"


def test_hm_missing_files_are_named(tmp_path):
    build_hm(tmp_path)
    with pytest.raises(DatasetLayoutError, match="0999999001.jpg"):
        HMArticles(tmp_path, missing_images="raise")
    shutil.rmtree(tmp_path / "images")
    with pytest.raises(DatasetLayoutError, match="images"):
        HMArticles(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "articles.csv").write_text("article_id,prod_name\n1,x\n")
    with pytest.raises(DatasetFormatError, match="detail_desc"):
        HMArticles(tmp_path)
