"""OutfitGAN modules in pure torch: SAM math, generator / CCM / discriminator shapes, silhouettes, input fitting."""

import pytest
import torch

from atelier.models.outfitgan import (
    OUTFIT_ORDER,
    CollocationClassifier,
    DiscriminatorConfig,
    OutfitDiscriminators,
    OutfitGANConfig,
    OutfitGANConfigError,
    OutfitGenerator,
    OutfitInputError,
    SemanticAlignment,
    assemble_outfit,
    default_silhouette,
)
from atelier.models.outfitgan.inputs import fit_item_image, fit_mask, outfit_grid
from atelier.models.outfitgan.sam import alignment_attention, correlation_matrix, warp_features


def _masks(config: OutfitGANConfig, batch: int) -> dict[str, torch.Tensor]:
    return {s: default_silhouette(s, config.image_size)[None].expand(batch, -1, -1, -1) for s in config.target_slots}


def test_config_defaults_follow_the_paper_and_bad_fields_are_named():
    config = OutfitGANConfig()
    assert config.image_size == 256 and config.target_slots == ("bag", "lower", "shoes")
    assert OUTFIT_ORDER == ("upper", "bag", "lower", "shoes")
    assert OutfitGANConfig.from_dict(config.to_dict()) == config
    with pytest.raises(OutfitGANConfigError, match="image_size"):
        OutfitGANConfig(image_size=100, downsamples=3)
    with pytest.raises(OutfitGANConfigError, match="source_slot"):
        OutfitGANConfig(source_slot="hat")
    with pytest.raises(OutfitGANConfigError, match="colour"):
        OutfitGANConfig.from_dict({**config.to_dict(), "colour": 1})


def test_correlation_is_cosine_similarity_of_centred_features():
    torch.manual_seed(0)
    source, target = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 2, 3)
    correlation = correlation_matrix(source, target)
    assert correlation.shape == (2, 12, 6)
    assert correlation.abs().max() <= 1.0 + 1e-5
    centred_s = source.flatten(2) - source.flatten(2).mean(2, keepdim=True)
    centred_t = target.flatten(2) - target.flatten(2).mean(2, keepdim=True)
    expected = torch.nn.functional.cosine_similarity(centred_s[0, :, 7][:, None], centred_t[0, :, 4][:, None], dim=0)
    assert torch.allclose(correlation[0, 7, 4], expected[0], atol=1e-5)


def test_sam_attention_rows_sum_to_one_and_warp_is_a_convex_combination():
    torch.manual_seed(0)
    sam = SemanticAlignment(channels=6, temperature=0.1)
    source, target = torch.randn(2, 6, 4, 4), torch.randn(2, 6, 4, 4)
    warped, attention = sam(source, target)
    assert attention.shape == (2, 16, 16) and warped.shape == (2, 6, 4, 4)
    assert torch.allclose(attention.sum(dim=-1), torch.ones(2, 16), atol=1e-5)
    assert (attention >= 0).all()
    values = source.flatten(2)  # (B, C, U)
    assert (warped.flatten(2) <= values.amax(dim=2, keepdim=True) + 1e-5).all()
    assert (warped.flatten(2) >= values.amin(dim=2, keepdim=True) - 1e-5).all()
    manual = torch.einsum("bvu,bcu->bcv", attention, values)
    assert torch.allclose(warped.flatten(2), manual, atol=1e-5)


def test_sharp_sam_copies_the_best_matching_source_position():
    source = torch.eye(4).reshape(1, 4, 2, 2)  # position u carries one-hot channel u
    target = source.flip(-1)  # the same features, columns swapped
    attention = alignment_attention(correlation_matrix(source, target), temperature=1e-3)
    warped = warp_features(source, attention, (2, 2))
    assert torch.allclose(warped, target, atol=1e-4)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("use_sam", [True, False])
def test_generator_shapes_range_and_switches(shared, use_sam):
    torch.manual_seed(0)
    config = OutfitGANConfig.tiny(shared_generator=shared, use_sam=use_sam)
    generator = OutfitGenerator(config)
    source = torch.rand(2, 3, 32, 32)
    out = generator(source, _masks(config, 2))
    assert set(out) == {"bag", "lower", "shoes"}
    assert all(image.shape == (2, 3, 32, 32) and 0 <= image.min() and image.max() <= 1 for image in out.values())
    _, attention = generator.generate_item(source, _masks(config, 2)["bag"], "bag")
    assert (attention is not None) == use_sam
    if use_sam:
        assert attention.shape == (2, 16, 16)
    names = {name.split(".")[0] for name, _ in generator.named_parameters()}
    assert names == ({"shared"} if shared else {"items"})
    if shared:  # one generator, told the category by one-hot planes: categories give different items
        assert not torch.allclose(out["bag"], generator.generate_item(source, _masks(config, 2)["bag"], "shoes")[0])


def test_generator_names_wrong_inputs():
    config = OutfitGANConfig.tiny()
    generator = OutfitGenerator(config)
    with pytest.raises(OutfitInputError, match=r"source item must be \(B, 3, 32, 32\); got \(1, 3, 64, 64\)"):
        generator(torch.rand(1, 3, 64, 64), _masks(config, 1))
    masks = _masks(config, 1)
    del masks["shoes"]
    with pytest.raises(OutfitInputError, match="no target mask for 'shoes'"):
        generator(torch.rand(1, 3, 32, 32), masks)
    with pytest.raises(OutfitInputError, match="'upper' is not a generated category"):
        generator.generate_item(torch.rand(1, 3, 32, 32), masks["bag"], "upper")


def test_ccm_scores_each_outfit_and_reads_the_order():
    torch.manual_seed(0)
    config = OutfitGANConfig.tiny()
    ccm = CollocationClassifier(config)
    outfit = torch.rand(3, 4, 3, 48, 48)  # any item size: resized to ccm_image_size
    scores = ccm.score(outfit)
    assert scores.shape == (3,) and ((scores > 0) & (scores < 1)).all()
    reordered = ccm.score(outfit.flip(1))
    assert not torch.allclose(scores, reordered), "a sequence model: item order changes the score"
    assert torch.allclose(ccm.score(outfit[1:2]), scores[1:2], atol=1e-6), "outfits are scored independently"
    with pytest.raises(OutfitInputError, match=r"\(B, 4, 3, H, W\)"):
        ccm(torch.rand(3, 3, 3, 32, 32))
    items = {slot: torch.rand(2, 3, 32, 32) for slot in OUTFIT_ORDER}
    assert torch.equal(assemble_outfit(items)[:, 2], items["lower"])
    with pytest.raises(OutfitInputError, match="lacks item"):
        assemble_outfit({"upper": items["upper"]})


def test_multi_scale_discriminators_one_per_target_item():
    discriminators = OutfitDiscriminators(("bag", "lower", "shoes"), DiscriminatorConfig(channels=8, layers=2, scales=3))
    outputs = discriminators("lower", torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32), torch.rand(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outputs] == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 2, 2)]
    assert set(discriminators.items) == {"bag", "lower", "shoes"}


@pytest.mark.parametrize("slot", OUTFIT_ORDER)
def test_default_silhouettes_cover_part_of_the_frame(slot):
    mask = default_silhouette(slot, 64)
    assert mask.shape == (1, 64, 64) and set(mask.unique().tolist()) == {0.0, 1.0}
    assert 0.03 < mask.mean() < 0.6
    with pytest.raises(OutfitInputError, match="hat"):
        default_silhouette("hat", 64)


def test_resize_policy_pads_with_white_and_keeps_aspect():
    image = torch.zeros(2, 20, 40, 3)  # black, twice as wide as high
    fitted = fit_item_image(image, 32, "source")
    assert fitted.shape == (2, 3, 32, 32)
    assert torch.allclose(fitted[:, :, :6], torch.ones_like(fitted[:, :, :6]))  # white band on top
    assert fitted[:, :, 12:20].max() < 0.01  # the picture in the middle
    with pytest.raises(OutfitInputError, match="'source' must be an IMAGE"):
        fit_item_image(torch.zeros(20, 40, 3), 32, "source")


def test_masks_broadcast_binarise_and_name_the_input():
    mask = torch.zeros(50, 50)
    mask[10:40, 10:40] = 1.0
    fitted = fit_mask(mask, 32, 3, "bag_mask")
    assert fitted.shape == (3, 1, 32, 32) and set(fitted.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(OutfitInputError, match="'bag_mask' holds 2 masks for 3 source items"):
        fit_mask(mask[None].repeat(2, 1, 1), 32, 3, "bag_mask")
    with pytest.raises(OutfitInputError, match="'shoes_mask' is empty"):
        fit_mask(torch.zeros(50, 50), 32, 1, "shoes_mask")


def test_grid_lays_items_out_in_outfit_order():
    outfit = {slot: torch.full((2, 3, 8, 8), float(i) / 4) for i, slot in enumerate(OUTFIT_ORDER)}
    grid = outfit_grid(outfit)
    assert grid.shape == (2, 8, 32, 3)
    assert [float(grid[0, 0, 8 * i, 0]) for i in range(4)] == [0.0, 0.25, 0.5, 0.75]
