"""IGR data: toy-world, VITON-HD and DressCode pairs, the stage-2 quality rule on constructed masks,
filter lists, and the seeded batches."""

import numpy as np
import pytest
import torch
from atelier.train.igr.data import (
    DressCodeIGR,
    IGRDataError,
    ToyIGR,
    VitonIGR,
    batch_for_step,
    build_dataset,
    stage_positions,
)
from atelier.train.igr.quality import (
    FilterListError,
    QualityRule,
    count_pieces,
    garment_quality,
    read_filter_list,
    touches_border,
)
from fake_datasets import build_dresscode, build_vitonhd, colour


def _box(height: int, width: int, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


FLAT = _box(40, 40, 5, 35, 5, 35)  # 900 px flat garment, one piece


def test_clean_worn_garment_is_high_quality():
    worn = _box(40, 40, 10, 30, 12, 28)  # 320 px, inside the frame, one piece
    flags = garment_quality(worn, FLAT, reference_ratio=320 / 900)
    assert flags.high_quality and flags.visible_ratio == pytest.approx(320 / 900)


def test_garment_touching_the_border_is_truncated():
    worn = _box(40, 40, 20, 40, 12, 28)  # reaches the bottom row
    flags = garment_quality(worn, FLAT, reference_ratio=320 / 900)
    assert touches_border(worn) and flags.truncated and not flags.high_quality
    assert not flags.split


def test_small_visible_area_is_occluded():
    worn = _box(40, 40, 10, 20, 12, 28)  # 160 px = half the kind's usual 320
    assert garment_quality(worn, FLAT, reference_ratio=320 / 900).occluded_area
    assert not garment_quality(worn, FLAT, reference_ratio=320 / 900, rule=QualityRule(min_visible=0.4)).occluded_area


def test_garment_cut_in_two_is_split_but_specks_are_ignored():
    worn = _box(40, 40, 10, 30, 12, 28)
    cut = worn.copy()
    cut[18:21] = False  # an arm across the garment: two pieces
    assert count_pieces(cut) == 2
    flags = garment_quality(cut, FLAT, reference_ratio=cut.sum() / 900)
    assert flags.split and not flags.occluded_area and not flags.high_quality
    speck = worn.copy()
    speck[2, 2] = True  # one stray pixel, under 2 % of the area
    assert count_pieces(speck) == 1 and garment_quality(speck, FLAT, speck.sum() / 900).high_quality


def test_filter_list_reads_paths_and_ids(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("# kept pairs\n./train/image/00001_00.jpg\n\n00002_00  # by id\n")
    assert read_filter_list(path) == {"train/image/00001_00.jpg", "00002_00"}
    with pytest.raises(FilterListError, match="does not exist"):
        read_filter_list(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(FilterListError, match="lists no sample"):
        read_filter_list(tmp_path / "empty.txt")


@pytest.fixture(scope="module")
def toy():
    return ToyIGR((48, 32), (32, 24), start=0, count=16)


def test_toy_pairs_are_one_per_worn_garment(toy):
    expected = [(i, c) for i in range(16) for c in ("upper", "lower", "dress") if c in toy.world.design_person(i).garments]
    assert toy.entries == expected
    sample = toy[0]
    index, category = toy.entries[0]
    person = toy.world.person(index)
    assert sample.person.shape == (3, 48, 32) and sample.mask.shape == (48, 32) and sample.garment.shape == (3, 32, 24)
    assert torch.equal(sample.mask, torch.from_numpy(person.masks[f"agnostic_{category}"]).float())
    shop = torch.from_numpy(person.garments[category].shop_image).permute(2, 0, 1).float() / 255.0
    shrunk = torch.nn.functional.interpolate(shop[None], size=(32, 24), mode="bilinear", antialias=True)[0]
    assert torch.allclose(sample.garment, shrunk.clamp(0, 1), atol=1e-6)
    assert sample.sample_id == f"person-{index}-{category}"


def test_toy_quality_flags_follow_the_rule(toy):
    ratios: dict[str, list[float]] = {}
    pairs = []
    for index, category in toy.entries:
        person = toy.world.person(index)
        garment = person.garments[category]
        ratio = person.masks[category].sum() / garment.shop_mask.sum()
        ratios.setdefault(garment.spec.kind, []).append(ratio)
        pairs.append((person.masks[category], garment.shop_mask, garment.spec.kind))
    expected = [garment_quality(w, f, float(np.median(ratios[k]))).high_quality for w, f, k in pairs]
    assert [toy.high_quality(p) for p in range(len(toy))] == expected
    assert toy.flagged_fraction == pytest.approx(expected.count(False) / len(expected))
    kept = stage_positions(toy, fine=True)
    assert kept == [p for p, good in enumerate(expected) if good] and len(kept) < len(toy)
    assert stage_positions(toy, fine=False) == list(range(len(toy)))


def test_toy_garment_mask_option_uses_worn_pixels():
    data = ToyIGR((32, 32), start=0, count=4, mask="garment", rule=None)
    index, category = data.entries[0]
    assert torch.equal(data[0].mask, torch.from_numpy(data.world.person(index).masks[category]).float())
    assert data.flagged_fraction == 0.0 and data.quality_source == "none"
    with pytest.raises(IGRDataError, match="mask must be one of"):
        ToyIGR((32, 32), count=2, mask="box")


def test_batches_are_fixed_by_seed_and_step(toy):
    positions = list(range(len(toy)))
    first = batch_for_step(toy, positions, 3, 2, 0)
    assert torch.equal(first.persons, batch_for_step(toy, positions, 3, 2, 0).persons)
    assert first.sample_ids != batch_for_step(toy, positions, 4, 2, 0).sample_ids or \
        first.sample_ids != batch_for_step(toy, positions, 5, 2, 0).sample_ids
    assert first.masks.shape == (2, 48, 32) and first.garments.shape == (2, 3, 32, 24)


def test_vitonhd_pairs_each_person_with_its_own_cloth(tmp_path):
    build_vitonhd(tmp_path)
    keep = tmp_path / "keep.txt"
    keep.write_text("test/image/00002_00.jpg\n")
    data = VitonIGR(tmp_path, "test", person_size=(32, 24), cloth_size=(16, 12), filter_list=keep)
    first = data[0]
    assert first.category == "upper" and first.sample_id == "00001_00"
    assert first.garment.shape == (3, 16, 12) and first.mask.shape == (32, 24) and first.mask.sum() > 0
    cloth = first.garment.mean((1, 2)) * 255  # own cloth: colour(0 + 10), not the pair list's other one
    assert torch.allclose(cloth, torch.tensor(colour(10), dtype=torch.float32), atol=4)
    assert [data.high_quality(i) for i in range(2)] == [False, True] and data.flagged_fraction == 0.5
    assert stage_positions(data, fine=True) == [1]
    unfiltered = VitonIGR(tmp_path, "test", person_size=(32, 24))
    with pytest.raises(IGRDataError, match="--filter-list"):
        stage_positions(unfiltered, fine=True)


def test_dresscode_pairs_keep_categories_and_ids(tmp_path):
    build_dresscode(tmp_path)
    data = build_dataset("dresscode", (32, 24), None, str(tmp_path), categories=("upper", "dress"))
    assert isinstance(data, DressCodeIGR)
    samples = [data[i] for i in range(len(data))]
    assert [s.category for s in samples] == ["upper", "upper", "dress"]
    assert [s.sample_id for s in samples] == ["000001_0", "000002_0", "020001_0"]
    assert all(s.mask.sum() > 0 and s.garment.shape == (3, 32, 24) for s in samples)
    keep = tmp_path / "keep.txt"
    keep.write_text("dresses/images/020001_0.jpg\n000001_0\n")
    filtered = DressCodeIGR(tmp_path, folders=("upper_body", "dresses"), person_size=(32, 24), filter_list=keep)
    assert stage_positions(filtered, fine=True) == [0, 2]
