"""OutfitGAN losses: LSGAN, L1, CCM, and the perceptual term (on only with a VGG-16 weights file)."""

import logging

import pytest
import torch
from safetensors.torch import save_file

from atelier.models.outfitgan import CollocationClassifier, OutfitGANConfig, PerceptualWeightsError
from atelier.models.outfitgan.losses import (
    ccm_classification_loss,
    ccm_loss,
    l1_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from atelier.models.outfitgan.perceptual import VGG16_TAPS, build_perceptual_loss, vgg16_features


def test_lsgan_losses_are_least_squares_to_the_real_and_fake_targets():
    ones, zeros = [torch.ones(2, 1, 4, 4)], [torch.zeros(2, 1, 4, 4)]
    assert lsgan_discriminator_loss(ones, zeros) == 0.0
    assert lsgan_discriminator_loss(zeros, ones) == pytest.approx(1.0)
    assert lsgan_generator_loss(ones) == 0.0
    assert lsgan_generator_loss([torch.full((1, 1, 2, 2), 3.0), torch.zeros(1, 1, 1, 1)]) == pytest.approx((2.0 + 0.5) / 2)


def test_l1_is_the_mean_absolute_error():
    assert l1_loss(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.25)) == pytest.approx(0.25)


def test_ccm_loss_is_minus_log_compatibility_and_pretraining_is_bce():
    torch.manual_seed(0)
    ccm = CollocationClassifier(OutfitGANConfig.tiny()).requires_grad_(False)
    outfit = torch.rand(4, 4, 3, 32, 32)
    expected = -torch.log(ccm.score(outfit)).mean()
    assert ccm_loss(ccm, outfit) == pytest.approx(float(expected), rel=1e-4)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    probabilities = ccm.score(outfit)
    bce = -(labels * probabilities.log() + (1 - labels) * (1 - probabilities).log()).mean()
    assert ccm_classification_loss(ccm, outfit, labels) == pytest.approx(float(bce), rel=1e-4)


def test_ccm_pretraining_separates_a_learnable_rule():
    torch.manual_seed(0)
    ccm = CollocationClassifier(OutfitGANConfig.tiny())
    optimizer = torch.optim.Adam(ccm.parameters(), lr=3e-3)
    outfit = torch.rand(16, 4, 3, 32, 32)
    labels = (torch.arange(16) % 2).float()
    outfit[labels == 1, 3] = 0.0  # "compatible" outfits: dark shoes
    for _ in range(30):
        optimizer.zero_grad()
        ccm_classification_loss(ccm, outfit, labels).backward()
        optimizer.step()
    scores = ccm.score(outfit)
    assert scores[labels == 1].min() > scores[labels == 0].max()


def test_perceptual_term_is_off_without_a_file_and_says_so_once(caplog):
    with caplog.at_level(logging.INFO, logger="atelier.outfitgan"):
        assert build_perceptual_loss(None) is None
    assert [r.message for r in caplog.records].count(
        "perceptual loss is off: no VGG-16 weights file given (--perceptual-weights)") == 1


def _vgg_file(path, last_tap: str):
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in vgg16_features(VGG16_TAPS[last_tap]).state_dict().items()}
    save_file(state, str(path))


def test_perceptual_loss_from_a_user_file(tmp_path):
    _vgg_file(tmp_path / "vgg.safetensors", "relu2_2")
    loss = build_perceptual_loss(tmp_path / "vgg.safetensors", taps=("relu1_2", "relu2_2"))
    assert not any(p.requires_grad for p in loss.parameters())
    image = torch.rand(1, 3, 16, 16)
    assert loss(image, image) == 0.0
    generated = torch.rand(1, 3, 16, 16, requires_grad=True)
    value = loss(generated, image)
    value.backward()
    assert value > 0 and generated.grad.abs().sum() > 0


def test_perceptual_file_errors_name_the_file_and_tensor(tmp_path):
    with pytest.raises(PerceptualWeightsError, match="does not exist"):
        build_perceptual_loss(tmp_path / "missing.pth")
    _vgg_file(tmp_path / "short.safetensors", "relu1_2")
    with pytest.raises(PerceptualWeightsError, match=r"short.safetensors has no VGG-16 tensor 'features.5.weight'"):
        build_perceptual_loss(tmp_path / "short.safetensors", taps=("relu2_2",))
