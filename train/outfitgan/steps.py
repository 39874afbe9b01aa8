"""Building the OutfitGAN models and one training step of each phase (CCM pre-training, GAN)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...models.outfitgan.ccm import CollocationClassifier, assemble_outfit
from ...models.outfitgan.config import OUTFIT_ORDER, OutfitGANConfig
from ...models.outfitgan.discriminator import DiscriminatorConfig, OutfitDiscriminators
from ...models.outfitgan.generator import OutfitGenerator
from ...models.outfitgan.losses import (
    LossWeights,
    ccm_classification_loss,
    ccm_loss,
    l1_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from ...models.outfitgan.perceptual import VGGPerceptualLoss


@dataclass
class OutfitGANModels:
    """Everything trained or used as a loss: generator, per-item discriminators, CCM, perceptual loss."""

    config: OutfitGANConfig
    generator: nn.Module
    discriminators: nn.Module
    ccm: nn.Module
    perceptual: VGGPerceptualLoss | None = None


def build_models(config: OutfitGANConfig, discriminator: DiscriminatorConfig,
                 perceptual: VGGPerceptualLoss | None = None) -> OutfitGANModels:
    """Fresh, initialised models for ``config`` (seed torch before calling for reproducibility)."""
    return OutfitGANModels(
        config=config,
        generator=OutfitGenerator(config),
        discriminators=OutfitDiscriminators(config.target_slots, discriminator),
        ccm=CollocationClassifier(config),
        perceptual=perceptual,
    )


def split_batch(config: OutfitGANConfig, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(source item (B, 3, S, S), target masks by slot (B, 1, S, S), ground-truth items by slot)."""
    items, masks = batch["items"], batch["masks"]  # (B, N, 3, S, S), (B, N, 1, S, S)
    source = items[:, OUTFIT_ORDER.index(config.source_slot)]
    targets = {slot: items[:, OUTFIT_ORDER.index(slot)] for slot in config.target_slots}
    target_masks = {slot: masks[:, OUTFIT_ORDER.index(slot)] for slot in config.target_slots}
    return source, target_masks, targets


def ccm_training_step(ccm: nn.Module, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, accelerator) -> float:
    """One CCM pre-training step on compatible (label 1) and incompatible (label 0) outfits."""
    ccm.train()
    loss = ccm_classification_loss(ccm, batch["items"], batch["label"])
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    optimizer.step()
    return float(loss.detach())


def discriminator_loss(models: OutfitGANModels, source, masks, targets, fakes) -> torch.Tensor:
    """LSGAN discriminator loss, averaged over the target items."""
    terms = [
        lsgan_discriminator_loss(
            models.discriminators(slot, source, masks[slot], targets[slot]),
            models.discriminators(slot, source, masks[slot], fakes[slot].detach()),
        )
        for slot in fakes
    ]
    return torch.stack(terms).mean()


def generator_losses(models: OutfitGANModels, source, masks, targets, fakes, weights: LossWeights) -> dict[str, torch.Tensor]:
    """Each generator loss term (adversarial, l1, perceptual, ccm) and their weighted sum ("total")."""
    slots = list(fakes)
    losses = {
        "adversarial": torch.stack([lsgan_generator_loss(models.discriminators(s, source, masks[s], fakes[s])) for s in slots]).mean(),
        "l1": torch.stack([l1_loss(fakes[s], targets[s]) for s in slots]).mean(),
    }
    if models.perceptual is not None and weights.perceptual > 0.0:
        losses["perceptual"] = torch.stack([models.perceptual(fakes[s], targets[s]) for s in slots]).mean()
    if weights.ccm > 0.0:
        outfit = assemble_outfit({models.config.source_slot: source, **fakes})  # (B, N, 3, S, S)
        losses["ccm"] = ccm_loss(models.ccm, outfit)
    losses["total"] = sum(getattr(weights, name) * value for name, value in losses.items())
    return losses


def gan_training_step(models: OutfitGANModels, batch: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer],
                      weights: LossWeights, accelerator) -> dict[str, float]:
    """One GAN step: generate, update the discriminators, then the generator (CCM frozen)."""
    models.generator.train()
    models.discriminators.train()
    models.ccm.eval()
    source, masks, targets = split_batch(models.config, batch)
    fakes = models.generator(source, masks)

    models.discriminators.requires_grad_(True)
    d_loss = discriminator_loss(models, source, masks, targets, fakes)
    optimizers["discriminator"].zero_grad(set_to_none=True)
    accelerator.backward(d_loss)
    optimizers["discriminator"].step()

    models.discriminators.requires_grad_(False)
    losses = generator_losses(models, source, masks, targets, fakes, weights)
    optimizers["generator"].zero_grad(set_to_none=True)
    accelerator.backward(losses["total"])
    optimizers["generator"].step()
    models.discriminators.requires_grad_(True)
    return {"discriminator": float(d_loss.detach()), **{name: float(value.detach()) for name, value in losses.items()}}
