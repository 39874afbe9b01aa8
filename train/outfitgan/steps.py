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


def ccm_training_step(ccm: nn.Module, batches: list[dict[str, torch.Tensor]], update, accelerator) -> float:
    """One CCM pre-training step on compatible (label 1) and incompatible (label 0) outfits, over one
    micro-batch or several (gradient accumulation); ``update`` is the CCM's ``loop.Optimisation``."""
    ccm.train()
    update.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for batch in batches:
        loss = ccm_classification_loss(ccm, batch["items"], batch["label"])
        accelerator.backward(loss / len(batches) if len(batches) > 1 else loss)
        total += float(loss.detach())
    update.step(accelerator)
    return total / len(batches)


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


def _mean(values: list[dict[str, float]]) -> dict[str, float]:
    return values[0] if len(values) == 1 else {name: sum(v[name] for v in values) / len(values) for name in values[0]}


def gan_training_step(models: OutfitGANModels, batches: list[dict[str, torch.Tensor]], updates: dict[str, object],
                      weights: LossWeights, accelerator) -> dict[str, float]:
    """One GAN step over one micro-batch or several (gradient accumulation): generate, update the
    discriminators, then the generator (CCM frozen). ``updates``: the ``loop.Optimisation`` of
    "generator" and "discriminator" (clipping, LR schedule, EMA)."""
    models.generator.train()
    models.discriminators.train()
    models.ccm.eval()
    parts = len(batches)
    splits = [split_batch(models.config, batch) for batch in batches]
    fakes = [models.generator(source, masks) for source, masks, _ in splits]

    models.discriminators.requires_grad_(True)
    updates["discriminator"].optimizer.zero_grad(set_to_none=True)
    d_losses = []
    for (source, masks, targets), fake in zip(splits, fakes):
        d_loss = discriminator_loss(models, source, masks, targets, fake)
        accelerator.backward(d_loss / parts if parts > 1 else d_loss)
        d_losses.append(float(d_loss.detach()))
    updates["discriminator"].step(accelerator)

    models.discriminators.requires_grad_(False)
    updates["generator"].optimizer.zero_grad(set_to_none=True)
    values = []
    for (source, masks, targets), fake, d_loss in zip(splits, fakes, d_losses):
        losses = generator_losses(models, source, masks, targets, fake, weights)
        accelerator.backward(losses["total"] / parts if parts > 1 else losses["total"])
        values.append({"discriminator": d_loss, **{name: float(value.detach()) for name, value in losses.items()}})
    updates["generator"].step(accelerator)
    models.discriminators.requires_grad_(True)
    return _mean(values)
