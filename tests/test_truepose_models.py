"""TruePose's host-free parts: eq. 6 weights, HPFA (eq. 7–8), CAA (eq. 9), parsing selection, pose encoder, spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from atelier.models import weight_systems
from atelier.models.parsing import ATR, LIP, convert_label_map
from atelier.models.pose import BodyPose, TooFewKeypointsError
from atelier.models.reference_attention import multihead_attention
from atelier.models.sites import SITE_GROUPS, SITES_BY_NAME
from atelier.models.truepose.caa import (
    CAAInputError,
    CAAProjections,
    caa_read,
    lowest_regions,
    region_average_scores,
    region_crop_boxes,
    region_token_masks,
    select_clip_embeddings,
)
from atelier.models.truepose.config import TruePoseConfig, TruePoseConfigError
from atelier.models.truepose.hpfa import (
    HPFAProjections,
    HPFAShapeError,
    attention_scores,
    hpfa_read,
    hpfa_source,
    hpfa_weights,
    reweighted_attention,
)
from atelier.models.truepose.parsing_selection import (
    mask_on_grid,
    selected_source_mask,
    target_categories,
)
from atelier.models.truepose.pose_encoder import PoseEncoder, SkeletonImageError
from atelier.models.truepose.spec import TRUEPOSE
from atelier.models.weight_format import META_SYSTEM, BaseModel
from atelier.models.weights import WeightFileError, export_untrained, load_weight_file
from safetensors import safe_open
from torch import nn

TINY_BASE = BaseModel(model_channels=8, context_dim=16)
SITE = SITES_BY_NAME["output_11"]  # level 0: width = model_channels
WIDTH, HEADS = 8, 2


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=_generator(seed))


# --- eq. 6 ---------------------------------------------------------------------------------------

def test_eq6_gives_the_four_cases():
    scores = torch.tensor([[2.0, -1.0], [-3.0, 4.0]]).view(1, 1, 2, 2)  # (B, H, T', T')
    key_mask = torch.tensor([1.0, 0.0]).view(1, 2, 1)  # key 0 in M, key 1 outside
    weights_ = hpfa_weights(scores, key_mask, sigma=0.3, delta=0.6)[0, 0]
    expected = torch.tensor([
        [1.0 + 0.6, 1.0 + 0.3],  # A'>0 in M: 1+δ;  A'<0 outside M: 1+σ
        [0.6, 0.3],              # A'<0 in M: δ;    A'>0 outside M: σ
    ])
    torch.testing.assert_close(weights_, expected)


def test_eq6_with_zero_sigma_delta_keeps_only_one_sign_of_logits():
    scores = _randn(2, HEADS, 5, 6)
    ones = torch.ones(2, 6, 1)
    zeros = torch.zeros(2, 6, 1)
    in_mask = scores * hpfa_weights(scores, ones, sigma=0.0, delta=0.0)
    out_mask = scores * hpfa_weights(scores, zeros, sigma=0.0, delta=0.0)
    torch.testing.assert_close(in_mask, scores.clamp_min(0.0))   # M all one: negative logits -> 0
    torch.testing.assert_close(out_mask, scores.clamp_max(0.0))  # M all zero: positive logits -> 0
    # No (σ, δ) gives M' ≡ 1, so σ = δ = 0 is NOT plain attention.
    assert not torch.allclose(in_mask, scores)


def test_eq6_all_one_and_all_zero_masks_use_delta_and_sigma_only():
    scores = _randn(1, HEADS, 4, 4, seed=1)
    all_in = hpfa_weights(scores, torch.ones(1, 4, 1), sigma=0.3, delta=0.6)
    all_out = hpfa_weights(scores, torch.zeros(1, 4, 1), sigma=0.3, delta=0.6)
    torch.testing.assert_close(all_in, torch.where(scores > 0, 1.6, 0.6))
    torch.testing.assert_close(all_out, torch.where(scores > 0, 0.3, 1.3))


def test_reweighting_moves_attention_mass_onto_masked_keys():
    scores = _randn(1, HEADS, 6, 6, seed=2)
    key_mask = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 1.0]).view(1, 6, 1)
    values = key_mask.expand(1, 6, WIDTH).contiguous()  # V' = 1 on masked keys: H' = mass on M
    plain = reweighted_attention(scores, torch.ones_like(scores), values)
    reweighted = reweighted_attention(scores, hpfa_weights(scores, key_mask, 0.3, 0.6), values)
    assert bool((reweighted > plain).all())


def test_mask_shape_mismatch_names_the_numbers():
    with pytest.raises(HPFAShapeError, match=r"\(1, 6, 1\)"):
        hpfa_weights(torch.zeros(1, 1, 6, 6), torch.zeros(1, 5, 1), 0.3, 0.6)


# --- HPFA (eq. 7–8) ------------------------------------------------------------------------------

def _layer_weights(seed: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(_randn(WIDTH, WIDTH, seed=seed + i) * 0.3 for i in range(3))


def _initialised_projections() -> tuple[HPFAProjections, tuple[torch.Tensor, ...]]:
    projections = HPFAProjections({SITE.name: (WIDTH, WIDTH)})
    layer = _layer_weights()
    projections.initialise_from({SITE.name: layer})
    return projections, layer


def test_all_one_weights_reduce_eq7_to_plain_attention():
    q, k, v = (_randn(2, 7, WIDTH, seed=s) for s in (10, 11, 12))
    scores = attention_scores(q, k, HEADS)
    torch.testing.assert_close(
        reweighted_attention(scores, torch.ones_like(scores), v), multihead_attention(q, k, v, HEADS)
    )


def test_projections_initialised_from_the_layer_reproduce_its_attention():
    """Identity: with W^{Q'}, W^{K'} = the layer's Wq, Wk, A' is the layer's own attention logits; with
    W^{V'} = I, H' is a softmax mix of F' itself; and eq. 8 with W^{K'_h}, W^{V'_h} = Wk, Wv is the
    reference CROSS read of H' through the layer's own key/value weights."""
    projections, (weight_q, weight_k, weight_v) = _initialised_projections()
    source_states = _randn(2, 12, WIDTH, seed=20)  # F': B = 2, T' = 12
    q_target = _randn(2, 20, WIDTH, seed=21)  # Q: T = 20 target tokens
    key_mask = (torch.rand(2, 12, 1, generator=_generator(22)) > 0.5).float()
    source = hpfa_source(projections, SITE, source_states, key_mask, heads=HEADS, sigma=0.3, delta=0.6)

    plain_scores = attention_scores(source_states @ weight_q.T, source_states @ weight_k.T, HEADS)
    torch.testing.assert_close(source.scores, plain_scores)
    expected_hidden = reweighted_attention(
        plain_scores, hpfa_weights(plain_scores, key_mask, 0.3, 0.6), source_states
    )
    torch.testing.assert_close(source.hidden, expected_hidden)
    fused = hpfa_read(q_target, source, HEADS)
    expected = multihead_attention(q_target, source.hidden @ weight_k.T, source.hidden @ weight_v.T, HEADS)
    torch.testing.assert_close(fused, expected)
    assert fused.shape == (2, 20, WIDTH)
    assert source.scores.shape == (2, HEADS, 12, 12)


def test_hpfa_depends_on_the_mask_and_one_source_serves_a_batch_of_targets():
    projections, _ = _initialised_projections()
    source_states = _randn(1, 12, WIDTH, seed=30)
    in_mask = hpfa_source(projections, SITE, source_states, torch.ones(1, 12, 1), heads=HEADS, sigma=0.3, delta=0.6)
    out_mask = hpfa_source(projections, SITE, source_states, torch.zeros(1, 12, 1), heads=HEADS, sigma=0.3, delta=0.6)
    assert not torch.allclose(in_mask.hidden, out_mask.hidden)
    q_target = _randn(3, 9, WIDTH, seed=31)
    fused = hpfa_read(q_target, in_mask, HEADS)
    assert fused.shape == (3, 9, WIDTH)
    torch.testing.assert_close(fused[1], hpfa_read(q_target[1:2], in_mask, HEADS)[0])
    two_sources = hpfa_source(projections, SITE, source_states.repeat(2, 1, 1), torch.ones(2, 12, 1),
                              heads=HEADS, sigma=0.3, delta=0.6)
    with pytest.raises(HPFAShapeError, match="batch 2 but the target has 3"):
        hpfa_read(q_target, two_sources, HEADS)


def test_without_parsing_guidance_eq7_is_the_layers_plain_attention():
    """B4 ("w/o HPFA"): no mask gives M' ≡ 1, so H' is Softmax(A')V' whatever the parsing says."""
    projections, (weight_q, weight_k, _) = _initialised_projections()
    source_states = _randn(1, 12, WIDTH, seed=32)
    unguided = hpfa_source(projections, SITE, source_states, None, heads=HEADS, sigma=0.3, delta=0.6)
    expected = multihead_attention(source_states @ weight_q.T, source_states @ weight_k.T, source_states, HEADS)
    torch.testing.assert_close(unguided.hidden, expected)
    guided = hpfa_source(projections, SITE, source_states, torch.ones(1, 12, 1), heads=HEADS, sigma=0.3, delta=0.6)
    assert not torch.allclose(guided.hidden, unguided.hidden)
    assert TruePoseConfig.from_dict({"parsing_guidance": False}).parsing_guidance is False
    with pytest.raises(TruePoseConfigError, match="'parsing_guidance'"):
        TruePoseConfig.from_dict({"parsing_guidance": 0})


# --- CAA (eq. 9) ---------------------------------------------------------------------------------

def _scores_receiving(received: list[float], queries: int = 3) -> torch.Tensor:
    """A' (1, H, queries, T') whose mean over heads and queries is ``received`` per key."""
    column = torch.tensor(received).view(1, 1, 1, -1)
    noise = _randn(1, HEADS, queries, len(received), seed=40)
    noise = noise - noise.mean(dim=(1, 2), keepdim=True)  # zero mean per key
    return column + noise


def test_caa_picks_the_k_lowest_present_regions():
    scores = _scores_receiving([0.5, -1.0, 0.2, -5.0])
    region_masks = torch.tensor([  # regions a, b, c, d over 4 source tokens; d is absent
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ]).view(1, 4, 4, 1)
    averages = region_average_scores(scores, region_masks)
    torch.testing.assert_close(averages[0, :3], torch.tensor([0.5, -1.0, 0.2]))
    assert averages[0, 3].item() == float("inf")
    indices, valid = lowest_regions(averages, k=2)
    assert indices[0].tolist() == [1, 2]
    assert valid.all()
    indices, valid = lowest_regions(averages, k=4)
    assert valid[0].tolist() == [True, True, True, False]


def test_caa_with_no_present_region_raises():
    with pytest.raises(CAAInputError, match="source parsing"):
        lowest_regions(torch.full((1, 3), float("inf")), k=2)


def test_caa_output_follows_the_clip_embeddings_and_ignores_padded_picks():
    projections = CAAProjections({SITE.name: WIDTH}, clip_embed_dim=6)
    fused = _randn(2, 10, WIDTH, seed=50)
    clip_all = _randn(2, 4, 6, seed=51)  # (B, R, E)
    indices = torch.tensor([[1, 3], [0, 2]])
    valid = torch.tensor([[True, True], [True, False]])
    picked = select_clip_embeddings(clip_all, indices)
    torch.testing.assert_close(picked[0, 1], clip_all[0, 3])
    untrained = caa_read(projections, SITE, fused, picked, valid, HEADS)
    assert torch.count_nonzero(untrained) == 0  # W^{V^clip} starts at zero
    with torch.no_grad():
        projections.to_v[SITE.name].weight.copy_(_randn(WIDTH, 6, seed=52))
    out = caa_read(projections, SITE, fused, picked, valid, HEADS)
    assert out.shape == (2, 10, WIDTH)
    changed = picked.clone()
    changed[0, 0] += 1.0
    assert not torch.allclose(caa_read(projections, SITE, fused, changed, valid, HEADS)[0], out[0])
    padded_changed = picked.clone()
    padded_changed[1, 1] += 1.0  # row 1's second pick is padding
    torch.testing.assert_close(caa_read(projections, SITE, fused, padded_changed, valid, HEADS), out)


def _label_map() -> np.ndarray:
    """8×8 LIP map: hair rows 0, face rows 1, upper clothes rows 2–4, pants rows 5–7 (cols 2–5)."""
    labels = np.zeros((8, 8), dtype=np.int64)
    labels[0, 2:6] = LIP.index("hair")
    labels[1, 2:6] = LIP.index("face")
    labels[2:5, 2:6] = LIP.index("upper_clothes")
    labels[5:8, 2:6] = LIP.index("pants")
    return labels


def test_region_boxes_and_token_masks_from_a_label_map():
    labels = _label_map()
    boxes = region_crop_boxes(labels, LIP)
    assert boxes == {"hair": (2, 0, 6, 1), "face": (2, 1, 6, 2), "upper": (2, 2, 6, 5), "lower": (2, 5, 6, 8)}
    masks = region_token_masks(labels, LIP, ["upper", "shoes"], grid=(8, 8))
    assert masks.shape == (2, 64, 1)
    assert masks[0].sum().item() == 12 and masks[1].sum().item() == 0


# --- parsing selection (§4.2) --------------------------------------------------------------------

def _pose(visible: list[int]) -> BodyPose:
    keypoints = np.zeros((18, 2), dtype=np.float32)
    confidence = np.zeros(18, dtype=np.float32)
    for index in visible:
        keypoints[index] = (4.0, float(index % 8))
        confidence[index] = 1.0
    return BodyPose(keypoints, confidence, 8, 8)


def test_selection_unites_the_source_masks_of_the_target_visible_categories():
    labels = _label_map()
    upper_body = _pose([0, 1, 2, 5, 8, 11])  # nose, neck, shoulders, hips: head + torso, no knees
    mask = selected_source_mask(labels, LIP, upper_body)
    expected = np.isin(labels, [LIP.index(n) for n in ("hair", "face", "upper_clothes")])
    np.testing.assert_array_equal(mask, expected)
    back_view = _pose([1, 2, 5, 8, 11, 9, 12])  # no nose/eyes/ears; knees: legs visible
    categories = target_categories(back_view)
    assert "face" not in categories and "pants" in categories
    back_mask = selected_source_mask(labels, LIP, back_view)
    np.testing.assert_array_equal(back_mask, np.isin(labels, [LIP.index("upper_clothes"), LIP.index("pants")]))
    atr_labels = convert_label_map(labels, LIP, ATR)
    np.testing.assert_array_equal(selected_source_mask(atr_labels, ATR, upper_body), mask)


def test_selection_with_no_visible_point_names_the_target_pose():
    with pytest.raises(TooFewKeypointsError, match="target pose"):
        selected_source_mask(_label_map(), LIP, _pose([]))


def test_mask_on_grid_is_an_area_resize():
    mask = np.zeros((8, 8), dtype=bool)
    mask[:, :4] = True
    mask[:2, 4:] = True
    tokens = mask_on_grid(mask, (2, 2))
    torch.testing.assert_close(tokens.flatten(), torch.tensor([1.0, 0.5, 1.0, 0.0]))


# --- pose encoder, config, spec ------------------------------------------------------------------

def test_pose_encoder_starts_at_zero_and_reaches_the_latent_grid():
    encoder = PoseEncoder(model_channels=8, widths=(4, 4, 4))
    skeleton = torch.rand(2, 3, 32, 24, generator=_generator(60))
    out = encoder(skeleton)
    assert out.shape == (2, 8, 4, 3)
    assert torch.count_nonzero(out) == 0
    with torch.no_grad():
        encoder.conv_out.weight.normal_(generator=_generator(61))
    assert torch.count_nonzero(encoder(skeleton)) > 0
    with pytest.raises(SkeletonImageError, match="30x32"):
        encoder(torch.rand(1, 3, 32, 30))


def test_config_defaults_round_trip_and_errors_name_the_field():
    config = TruePoseConfig()
    assert config.hpfa_sites == SITE_GROUPS["output"] and config.caa_sites == SITE_GROUPS["output"]
    assert (config.sigma, config.delta, config.k) == (0.3, 0.6, 2)
    assert TruePoseConfig.from_dict(config.to_dict()) == config
    with pytest.raises(TruePoseConfigError, match="'sigma'"):
        TruePoseConfig.from_dict({"sigma": "high"})
    with pytest.raises(TruePoseConfigError, match="caa_sites"):
        TruePoseConfig(hpfa_sites=("output_11",), caa_sites=("middle_0",))
    with pytest.raises(TruePoseConfigError, match="unknown field"):
        TruePoseConfig.from_dict({"kk": 2})


def _small_config() -> dict:
    return TruePoseConfig(hpfa_sites=("output_10", "output_11"), caa_sites=("output_11",),
                          clip_embed_dim=6, pose_encoder_widths=(4, 4, 4)).to_dict()


def test_spec_builds_with_distinct_prefixes():
    modules = TRUEPOSE.build(_small_config(), TINY_BASE)
    assert set(modules) == set(TRUEPOSE.prefixes) == {"hpfa", "caa", "pose_encoder"}
    assert len(set(TRUEPOSE.prefixes.values())) == 3
    assert modules["hpfa"].site_names == ("output_10", "output_11")
    assert modules["caa"].to_k["output_11"].weight.shape == (8, 6)
    other_prefixes = {p for spec in weight_systems.SYSTEMS if spec.name != TRUEPOSE.name for p in spec.prefixes.values()}
    assert not any(p.startswith(q) or q.startswith(p) for p in TRUEPOSE.prefixes.values() for q in other_prefixes)


def test_spec_exports_and_loads_back(tmp_path):
    path = str(tmp_path / "truepose.safetensors")
    export_untrained(path, TRUEPOSE, TINY_BASE, _small_config())
    with safe_open(path, framework="pt") as handle:
        assert handle.metadata()[META_SYSTEM] == "truepose"
        keys = set(handle.keys())
    assert any(k.startswith("truepose_pose.conv_out") for k in keys)
    assert weight_systems.system_named("truepose") is TRUEPOSE
    loaded = load_weight_file(path, expected_system="truepose", expected_base=TINY_BASE)
    assert isinstance(loaded.modules["pose_encoder"], nn.Module)
    assert torch.count_nonzero(loaded.modules["caa"].to_v["output_11"].weight) == 0
    assert loaded.config["hpfa_sites"] == ["output_10", "output_11"]
    with pytest.raises(WeightFileError, match="'truepose' weight file"):
        load_weight_file(path, expected_system="igr")


# --- CAA's region crops --------------------------------------------------------------------------

def test_source_regions_give_box_crops_of_present_regions_only():
    from atelier.models.labels import LIP_LABELS
    from atelier.models.truepose.region_crops import REGION_NAMES, scatter_embeddings, source_regions

    labels = np.zeros((48, 32), dtype=np.int64)
    labels[4:12, 12:20] = LIP_LABELS.index("face")
    labels[14:30, 8:24] = LIP_LABELS.index("upper_clothes")
    image = torch.zeros(48, 32, 3)
    image[4:12, 12:20] = torch.tensor([1.0, 0.0, 0.0])  # the face box is red
    regions = source_regions(image, labels, crop_size=16)
    assert regions.masks.shape == (len(REGION_NAMES), 48, 32)
    assert [name for name, present in zip(REGION_NAMES, regions.present.tolist()) if present] == ["face", "upper"]
    assert regions.crops.shape == (2, 16, 16, 3)
    face = regions.crops[0]
    assert float(face[..., 0].mean()) > 0.9 and float(face[..., 1:].max()) < 0.1, "the face crop is its bounding box"
    assert float(regions.masks[REGION_NAMES.index("upper")].sum()) == 16 * 16
    embeds = scatter_embeddings(regions.present, torch.ones(2, 5))
    assert embeds.shape == (len(REGION_NAMES), 5) and float(embeds.sum()) == 10.0
    assert float(embeds[REGION_NAMES.index("dress")].abs().sum()) == 0.0
    with pytest.raises(CAAInputError, match="only background"):
        source_regions(image, np.zeros((48, 32), dtype=np.int64), crop_size=16)
    with pytest.raises(CAAInputError, match="same size"):
        source_regions(image, labels[:40], crop_size=16)
