"""Metrics on the toy world: SSIM/PSNR, colour and pattern fidelity, leakage, triples, compatibility."""

import math

import numpy as np
import pytest
import torch

from atelier.models.labels import LIP_LABELS
from atelier.train.metrics import (
    MetricInputError, color_fidelity, color_leakage, compatibility_accuracy, compatibility_auc,
    corpus_triple_scores, pattern_fidelity, pattern_signature, psnr, region_color_error, ssim, triple_scores,
)
from atelier.train.metrics.similarity import K1
from atelier.train.toyworld.body import POSES, place_body, sample_identity
from atelier.train.toyworld.garments import sample_garment
from atelier.train.toyworld.palette import color_by_name
from atelier.train.toyworld.render import render_person

LIP = {name: index for index, name in enumerate(LIP_LABELS)}


@pytest.fixture(scope="module")
def striped_render():
    """A front-facing person in a navy shirt with white stripes and solid red trousers, 128x128."""
    rng = np.random.default_rng(7)
    identity = sample_identity(rng)
    garments = {
        "upper": sample_garment(rng, "upper", kind="shirt", color=color_by_name("navy blue"), pattern="stripes"),
        "lower": sample_garment(rng, "lower", kind="trousers", color=color_by_name("red"), pattern="solid"),
        "shoes": sample_garment(rng, "shoes", color=color_by_name("black")),
    }
    geometry = place_body(identity, POSES["front"], (128, 128))
    return render_person(identity, geometry, garments, (128, 128)), garments


def _noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image / 255.0 + noise, 0.0, 1.0)


def test_ssim_of_an_image_with_itself_is_one_and_drops_with_noise(striped_render):
    render, _ = striped_render
    clean = render.image
    assert ssim(clean, clean) == pytest.approx(1.0, abs=1e-9)
    light, heavy = ssim(_noisy(clean, 0.02), clean), ssim(_noisy(clean, 0.1), clean)
    assert 1.0 > light > heavy > 0.0


def test_ssim_of_two_flat_images_matches_the_closed_form():
    first = np.full((32, 40, 3), 0.2)
    second = np.full((32, 40, 3), 0.6)
    c1 = K1**2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert ssim(first, second) == pytest.approx(expected, rel=1e-9)


def test_ssim_reads_torch_channel_first_like_numpy_channel_last(striped_render):
    render, _ = striped_render
    noisy = _noisy(render.image, 0.05)
    as_tensor = torch.from_numpy(noisy).permute(2, 0, 1)  # (3, H, W)
    assert ssim(as_tensor, render.image) == pytest.approx(ssim(noisy, render.image), abs=1e-12)


def test_psnr_known_values():
    reference = np.zeros((16, 16, 3))
    assert psnr(np.full((16, 16, 3), 0.1), reference) == pytest.approx(20.0, abs=1e-9)
    assert psnr(np.full((16, 16, 3), 0.01), reference) == pytest.approx(40.0, abs=1e-9)
    assert psnr(reference, reference) == math.inf
    half = reference.copy()
    half[:8] = 0.1
    mask = np.zeros((16, 16), dtype=bool)
    mask[8:] = True
    assert psnr(half, reference, mask=mask) == math.inf
    assert psnr(half, reference) == pytest.approx(10 * math.log10(1 / 0.005), abs=1e-9)


def test_color_fidelity_is_high_for_the_render_and_low_for_a_wrong_colour(striped_render):
    render, garments = striped_render
    shirt = garments["upper"]
    region = render.parsing == LIP["upper_clothes"]
    colours = [color.rgb for color in shirt.colors()]
    assert color_fidelity(render.image, region, colours) > 0.99
    assert region_color_error(render.image, region, shirt.color.rgb) < 1.0
    wrong = render.image.copy()
    wrong[region] = color_by_name("green").rgb
    assert color_fidelity(wrong, region, colours) < 0.01
    assert region_color_error(wrong, region, shirt.color.rgb) > 30.0


def test_leakage_is_detected_when_a_garment_colour_is_painted_elsewhere(striped_render):
    render, garments = striped_render
    navy = garments["upper"].color.rgb
    elsewhere = np.isin(render.parsing, [LIP["pants"], LIP["face"], LIP["left_arm"], LIP["right_arm"]])
    assert color_leakage(render.image, navy, elsewhere, reference=render.image) == 0.0
    trousers = render.parsing == LIP["pants"]
    leaked = render.image.copy()
    rows = np.nonzero(trousers.any(axis=1))[0]
    top_half = trousers & (np.arange(render.image.shape[0])[:, None] < rows[len(rows) // 2])
    leaked[top_half] = navy
    expected = top_half.sum() / elsewhere.sum()
    assert color_leakage(leaked, navy, elsewhere, reference=render.image) == pytest.approx(expected, abs=1e-9)
    assert expected > 0.05


def test_pattern_fidelity_tells_stripes_from_solid(striped_render):
    render, garments = striped_render
    region = render.parsing == LIP["upper_clothes"]
    coverage, row_change, column_change = pattern_signature(render.image, region)
    assert 0.2 < coverage < 0.45 and row_change > 3 * column_change
    assert pattern_fidelity(render.image, render.image, region) == pytest.approx(1.0)
    assert pattern_fidelity(_noisy(render.image, 0.01), render.image, region) > 0.8
    solid = render.image.copy()
    solid[region] = garments["upper"].color.rgb
    assert pattern_fidelity(solid, render.image, region) < 0.05


def test_triple_scores_on_known_sets():
    expected = [("jacket", "has-color", "navy blue"), ("collar", "has-style", "straight-point"),
                ("collar", "has-color", "red"), ("waist", "has-color", "blue")]
    predicted = [("Jacket", "has_color", "Navy  Blue"), ("collar", "has-style", "straight point"),
                 ("collar", "has-color", "white")]
    scores = triple_scores(predicted, expected)
    assert (scores.matched, scores.predicted, scores.expected) == (2, 3, 4)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(1 / 2)
    assert scores.f1 == pytest.approx(4 / 7)
    assert triple_scores(expected, expected).f1 == 1.0
    assert triple_scores([], expected).f1 == 0.0
    assert triple_scores([], []).f1 == 1.0
    corpus = corpus_triple_scores([predicted, expected[:1]], [expected, expected[:1]])
    assert (corpus.matched, corpus.predicted, corpus.expected) == (3, 4, 5)


def test_triple_with_two_fields_is_rejected():
    with pytest.raises(MetricInputError, match="three fields"):
        triple_scores([("jacket", "navy")], [])


def test_compatibility_accuracy_and_auc_on_known_lists():
    labels = [True, True, False, False]
    assert compatibility_accuracy([True, False, False, True], labels) == 0.5
    assert compatibility_accuracy(labels, labels) == 1.0
    assert compatibility_auc([0.9, 0.4, 0.5, 0.1], labels) == pytest.approx(0.75)
    assert compatibility_auc([0.5, 0.5, 0.5, 0.5], labels) == pytest.approx(0.5)
    with pytest.raises(MetricInputError, match="expected 4"):
        compatibility_accuracy([True], labels)


def test_bad_images_are_rejected_with_their_shape():
    with pytest.raises(MetricInputError, match=r"\(H, W, 3\)"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(MetricInputError, match=r"\(3, H, W\)"):
        psnr(torch.zeros(8, 8, 3), np.zeros((8, 8, 3)))
    with pytest.raises(MetricInputError, match="at least 11x11"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
    with pytest.raises(MetricInputError, match=r"\[0, 1\]"):
        psnr(np.full((8, 8, 3), 2.0), np.zeros((8, 8, 3)))
