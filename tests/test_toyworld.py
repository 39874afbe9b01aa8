"""The toy fashion world: determinism, ground truth that matches the pictures, captions and
triples, pose pairs, the outfit rule (palette and accents colour clauses), sizes, and the
contact-sheet command."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from atelier.models.labels import ATR_LABELS, LIP_LABELS
from atelier.train.toyworld import (
    GarmentPart, GarmentSpec, SampleIndexError, ToyWorld, ToyWorldConfig, ToyWorldConfigError,
    compatibility_violations, garment_caption, is_compatible,
)
from atelier.train.toyworld.color_rules import (
    ACHROMATIC, FAMILY_WHEEL, SLOT_RELATIONS, MissingAnchorError, UnknownColorRuleError, family_of, hue_difference,
    palette_allowed, palette_preferred, related_families,
)
from atelier.train.toyworld.garments import sample_garment
from atelier.train.toyworld.outfits import sample_outfit
from atelier.train.toyworld.palette import GARMENT_COLORS, SHOP_BACKGROUND_RGB, color_by_name

LIP = {name: index for index, name in enumerate(LIP_LABELS)}
ATR = {name: index for index, name in enumerate(ATR_LABELS)}
SAMPLES = range(8)


@pytest.fixture(scope="module")
def world() -> ToyWorld:
    return ToyWorld(ToyWorldConfig(height=96, width=96, seed=11, num_people=50, num_outfits=60))


@pytest.fixture(scope="module")
def people(world):
    return [world.person(index) for index in SAMPLES]


def _slot_labels(spec: GarmentSpec) -> tuple[int, ...]:
    if spec.slot == "upper":
        return (LIP["upper_clothes"],)
    if spec.slot == "dress":
        return (LIP["dress"],)
    if spec.slot == "lower":
        return (LIP["skirt"],) if spec.kind == "skirt" else (LIP["pants"],)
    return (LIP["left_shoe"], LIP["right_shoe"])


def test_same_seed_gives_identical_arrays(world):
    again = ToyWorld(world.config)
    first, second = world.pose_pair(3), again.pose_pair(3)
    for one, other in ((first.source, second.source), (first.target, second.target)):
        np.testing.assert_array_equal(one.image, other.image)
        np.testing.assert_array_equal(one.parsing, other.parsing)
        np.testing.assert_array_equal(one.keypoints, other.keypoints)
        for name, mask in one.masks.items():
            np.testing.assert_array_equal(mask, other.masks[name])
        assert one.caption == other.caption and one.triples == other.triples
    np.testing.assert_array_equal(world.outfit(4).items["upper"].shop_image, again.outfit(4).items["upper"].shop_image)


def test_different_index_or_seed_gives_different_samples(world, people):
    assert all(not np.array_equal(people[0].image, other.image) for other in people[1:])
    assert len({person.caption for person in people}) == len(people)
    reseeded = ToyWorld(ToyWorldConfig(height=96, width=96, seed=12, num_people=50))
    assert not np.array_equal(reseeded.person(0).image, people[0].image)


def test_parsing_pixels_lie_inside_the_worn_garment_and_have_its_colours(people):
    checked = set()
    for person in people:
        for slot, garment in person.garments.items():
            spec = garment.spec
            worn = person.masks[slot]
            assert worn.any(), f"{spec.kind} of person {person.index} is not visible"
            colours = {color.rgb for color in spec.colors()}
            if slot == "bag":
                assert np.all(person.parsing[worn] == LIP["background"])
                assert np.all(person.parsing_atr[worn] == ATR["bag"])
            else:
                labelled = np.isin(person.parsing, _slot_labels(spec))
                np.testing.assert_array_equal(labelled, worn)
            seen = {tuple(int(value) for value in pixel) for pixel in np.unique(person.image[worn], axis=0)}
            assert seen <= colours, f"{spec.kind}: colours {seen - colours} are not the garment's"
            checked.add(slot)
    assert {"upper", "lower", "shoes"} <= checked


def test_skin_masks_and_labels_agree(people):
    for person in people:
        arms = np.isin(person.parsing, [LIP["left_arm"], LIP["right_arm"]])
        legs = np.isin(person.parsing, [LIP["left_leg"], LIP["right_leg"]])
        assert not (arms & ~person.masks["skin"]).any() and not (legs & ~person.masks["skin"]).any()
        assert np.all(person.image[arms | legs] == person.identity.skin_rgb)
        assert np.all(person.parsing[person.masks["hair"]] == LIP["hair"])
        np.testing.assert_array_equal(person.masks["person"], (person.parsing > 0) | person.masks["bag"])


def test_agnostic_masks_cover_their_garment_and_spare_head_and_shoes(people):
    for person in people:
        head = person.masks["face"] | person.masks["hair"] | person.masks["shoes"]
        for name in ("agnostic_upper", "agnostic_lower", "agnostic_dress"):
            assert not (person.masks[name] & head).any()
        if "upper" in person.garments:
            assert not (person.masks["upper"] & ~person.masks["agnostic_upper"]).any()
            assert not (person.masks["lower"] & ~person.masks["agnostic_lower"]).any()
            assert not (person.masks["agnostic_upper"] & person.masks["lower"]).any()
        else:
            assert not (person.masks["dress"] & ~person.masks["agnostic_dress"]).any()


def test_keypoints_are_coco18_and_visible_ones_lie_in_the_frame(people):
    for person in people:
        assert person.keypoints.shape == (18, 3)
        visible = person.keypoints[:, 2] > 0
        assert visible.sum() >= 14
        x, y = person.keypoints[visible, 0], person.keypoints[visible, 1]
        assert np.all((x >= 0) & (x < 96) & (y >= 0) & (y < 96))


def test_shop_images_are_garment_on_white(people):
    for person in people:
        for garment in person.garments.values():
            outside = garment.shop_image[~garment.shop_mask]
            assert np.all(outside == SHOP_BACKGROUND_RGB)
            inside = {tuple(int(value) for value in pixel) for pixel in np.unique(garment.shop_image[garment.shop_mask], axis=0)}
            assert inside <= {color.rgb for color in garment.spec.colors()}
            assert garment.shop_mask.mean() > 0.05


def test_triples_match_captions(people):
    for person in people:
        caption = person.caption.lower()
        for entity, relation, value in person.triples:
            assert entity in caption and value in caption, (entity, relation, value, caption)
        for garment in person.garments.values():
            assert (garment.spec.kind, "has-color", garment.spec.color.name) in person.triples


def test_caption_reproduces_the_papers_example():
    jacket = GarmentSpec(
        slot="upper", kind="jacket", color=color_by_name("navy blue"), pattern="solid", pattern_color=None,
        material="wool", styles=(), formality=2,
        parts=(GarmentPart("collar", "straight-point", color_by_name("red")), GarmentPart("waist", "belted", color_by_name("blue"))),
    )
    caption, triples = garment_caption(jacket)
    assert caption == "a navy blue wool jacket with a red straight-point collar and a blue belted waist"
    paper = {("jacket", "has-color", "navy blue"), ("jacket", "has-feature", "collar"), ("collar", "has-style", "straight-point"),
             ("collar", "has-color", "red"), ("jacket", "has-feature", "waist"), ("waist", "has-color", "blue")}
    assert paper <= set(triples)
    assert set(triples) - paper == {("jacket", "has-material", "wool"), ("waist", "has-style", "belted")}


def test_pose_pairs_share_identity_and_garments_but_not_keypoints(world):
    for index in range(6):
        pair = world.pose_pair(index)
        np.testing.assert_array_equal(pair.source.image, world.person(index).image)
        assert pair.source.identity == pair.target.identity
        assert pair.source.pose.name != pair.target.pose.name
        assert pair.source.caption == pair.target.caption
        for slot, garment in pair.source.garments.items():
            assert pair.target.garments[slot].spec == garment.spec
            np.testing.assert_array_equal(pair.target.garments[slot].shop_image, garment.shop_image)
            assert pair.target.masks[slot].any()
        moved = np.abs(pair.source.keypoints[:, :2] - pair.target.keypoints[:, :2]).max()
        assert moved > 5.0


def test_outfit_labels_follow_the_rule(world):
    verdicts = []
    for index in range(40):
        outfit = world.outfit(index)
        specs = {slot: item.spec for slot, item in outfit.items.items()}
        assert set(specs) == {"upper", "bag", "lower", "shoes"}
        assert outfit.compatible == is_compatible(specs)
        assert bool(outfit.violations) == (not outfit.compatible)
        verdicts.append(outfit.compatible)
    assert 5 < sum(verdicts) < 35


def _item_maker():
    rng = np.random.default_rng(0)

    def item(slot, kind, material, color, pattern="solid"):
        return sample_garment(rng, slot, kind=kind, material=material, color=color_by_name(color), pattern=pattern)

    return item


def test_accents_rule_clauses_on_hand_built_outfits():
    item = _item_maker()
    base = {
        "upper": item("upper", "shirt", "cotton", "white"), "bag": item("bag", "shoulder bag", "leather", "brown"),
        "lower": item("lower", "trousers", "cotton", "navy blue"), "shoes": item("shoes", "loafers", "leather", "black"),
    }
    assert compatibility_violations(base, "accents") == []
    warm = {**base, "upper": item("upper", "shirt", "cotton", "red"), "bag": item("bag", "shoulder bag", "leather", "burgundy")}
    assert is_compatible(warm, "accents")
    assert hue_difference(color_by_name("red"), color_by_name("green")) < 150
    clash = {**base, "upper": item("upper", "shirt", "cotton", "red"), "bag": item("bag", "shoulder bag", "leather", "green")}
    assert [text.split(":")[0] for text in compatibility_violations(clash, "accents")] == ["color"]
    formal_gap = {**base, "shoes": item("shoes", "sneakers", "canvas", "black"), "upper": item("upper", "shirt", "silk", "white")}
    assert [text.split(":")[0] for text in compatibility_violations(formal_gap, "accents")] == ["formality"]
    busy = {**base, "upper": item("upper", "shirt", "cotton", "white", "stripes"), "lower": item("lower", "trousers", "cotton", "navy blue", "checks")}
    assert [text.split(":")[0] for text in compatibility_violations(busy, "accents")] == ["pattern"]


def test_palette_rule_clauses_on_hand_built_outfits():
    item = _item_maker()
    red = {
        "upper": item("upper", "shirt", "cotton", "red"), "bag": item("bag", "shoulder bag", "leather", "teal"),
        "lower": item("lower", "trousers", "cotton", "pink"), "shoes": item("shoes", "loafers", "leather", "brown"),
    }
    assert compatibility_violations(red) == []
    assert is_compatible({**red, "shoes": item("shoes", "loafers", "leather", "purple")}), "both neighbours are analogous"
    navy_lower = {**red, "lower": item("lower", "trousers", "cotton", "navy blue")}
    violations = compatibility_violations(navy_lower)
    assert len(violations) == 1 and violations[0].startswith("color: the navy blue lower") and "tonal" in violations[0]
    assert is_compatible(navy_lower, "accents"), "the accents rule lets neutrals go with anything"
    monochrome = {
        "upper": item("upper", "shirt", "cotton", "white"), "bag": item("bag", "shoulder bag", "leather", "grey"),
        "lower": item("lower", "trousers", "cotton", "black"), "shoes": item("shoes", "loafers", "leather", "black"),
    }
    assert is_compatible(monochrome)
    brown_bag = {**monochrome, "bag": item("bag", "shoulder bag", "leather", "brown")}
    assert [text.split(":")[0] for text in compatibility_violations(brown_bag)] == ["color"]
    with pytest.raises(MissingAnchorError, match="upper"):
        compatibility_violations({slot: spec for slot, spec in red.items() if slot != "upper"})
    with pytest.raises(UnknownColorRuleError, match="palette"):
        is_compatible(red, "rainbow")


def test_palette_families_cover_the_palette_on_a_colour_wheel():
    members = [name for _, names in FAMILY_WHEEL for name in names] + list(ACHROMATIC)
    assert sorted(members) == sorted(color.name for color in GARMENT_COLORS)
    opposite = {family: related_families(color_by_name(names[0]), "complementary")[0] for family, names in FAMILY_WHEEL}
    assert opposite == {"red": "green", "orange": "blue", "yellow": "purple", "green": "red", "blue": "orange", "purple": "yellow"}
    for color in GARMENT_COLORS:
        for slot in SLOT_RELATIONS:
            assert palette_preferred(color, slot) in palette_allowed(color, slot)
        assert family_of(palette_preferred(color, "lower")) == family_of(color)


def test_palette_outfits_colours_follow_the_upper_and_incompatible_ones_break_the_rule():
    rng = np.random.default_rng(3)
    compatible = [sample_outfit(rng, True) for _ in range(150)]
    for design in compatible:
        upper = design.items["upper"].color
        for slot in SLOT_RELATIONS:
            assert design.items[slot].color in palette_allowed(upper, slot)
    preferred = np.mean([d.items[s].color == palette_preferred(d.items["upper"].color, s) for d in compatible for s in SLOT_RELATIONS])
    assert 0.7 < preferred < 0.95, "the preferred colour, with a little randomness"
    incompatible = [sample_outfit(rng, False) for _ in range(150)]
    for design in incompatible:
        assert not design.compatible and design.violations
        clauses = {text.split(":")[0] for text in design.violations}
        assert set(design.broken) <= clauses
        if "color" in design.broken:
            upper = design.items["upper"].color
            assert any(design.items[s].color not in palette_allowed(upper, s) for s in SLOT_RELATIONS)
    assert sum("color" in d.broken for d in incompatible) > 30


@pytest.mark.parametrize("size", [(64, 64), (256, 256), (256, 176)])
def test_every_supported_size_renders(size):
    world = ToyWorld(ToyWorldConfig(height=size[0], width=size[1], seed=1, num_people=4, num_outfits=2))
    pair = world.pose_pair(2)
    for person in (pair.source, pair.target):
        assert person.image.shape == (*size, 3) and person.image.dtype == np.uint8
        assert person.parsing.shape == size and person.parsing_atr.shape == size
        assert all(mask.shape == size for mask in person.masks.values())
        assert all(person.masks[slot].any() for slot in person.garments)
        assert 0.08 < person.masks["person"].mean() < 0.6
    for garment in world.outfit(1).items.values():
        assert garment.shop_image.shape == (*size, 3)


def test_bad_config_and_index_are_rejected():
    with pytest.raises(ToyWorldConfigError, match="height"):
        ToyWorldConfig(height=16)
    with pytest.raises(ToyWorldConfigError, match="dress_fraction"):
        ToyWorldConfig(dress_fraction=1.5)
    with pytest.raises(SampleIndexError, match="outside 0..1"):
        ToyWorld(ToyWorldConfig(num_people=2)).person(2)


def test_contact_sheet_command_writes_a_png_of_the_expected_size(tmp_path):
    out = tmp_path / "sheet.png"
    command = [sys.executable, "-m", "atelier.train.toyworld.contact_sheet", "--out", str(out),
               "--size", "64", "--count", "2", "--outfits", "1", "--seed", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    with Image.open(out) as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == (7 * 64, 16 + 3 * (64 + 48))
