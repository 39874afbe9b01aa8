"""OutfitGAN's training losses (arXiv 2502.06827): LSGAN adversarial, L1, perceptual (VGG, optional)
and the CCM compatibility loss, combined with weights λ given as options."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .ccm import CollocationClassifier


@dataclass(frozen=True)
class LossWeights:
    """λ of each generator loss term (0 switches a term off).

    Args:
        adversarial: λ_adv of the LSGAN generator loss.
        l1: λ_1 of |G(O_k, m_i) − O_i|.
        perceptual: λ_p of the VGG feature loss (ignored without a backbone file).
        ccm: λ_ccm of the collocation-classification loss.
    """

    adversarial: float = 1.0
    l1: float = 10.0
    perceptual: float = 10.0
    ccm: float = 1.0


def lsgan_discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """½ E[(D(x) − 1)²] + ½ E[D(G(z))²], averaged over the discriminator's scales."""
    terms = [0.5 * ((r - 1.0) ** 2).mean() + 0.5 * (f ** 2).mean() for r, f in zip(real, fake, strict=True)]
    return torch.stack(terms).mean()


def lsgan_generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """½ E[(D(G(z)) − 1)²], averaged over scales."""
    return torch.stack([0.5 * ((f - 1.0) ** 2).mean() for f in fake]).mean()


def l1_loss(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between generated and ground-truth items."""
    return (generated - target).abs().mean()


def ccm_loss(ccm: CollocationClassifier, outfit: torch.Tensor) -> torch.Tensor:
    """L_ccm = −log p_ccm(compatible | outfit with the generated items): BCE of the logit against 1."""
    logits = ccm(outfit)
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def ccm_classification_loss(ccm: CollocationClassifier, outfit: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pre-training loss of the CCM: BCE of its logits against compatible (1) / incompatible (0)."""
    return F.binary_cross_entropy_with_logits(ccm(outfit), labels.to(outfit.dtype))
