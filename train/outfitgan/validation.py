"""OutfitGAN's validation grid: a few fixed training outfits, one row each: the given item, the
generated items (from the ground-truth target masks), then the true items."""

from __future__ import annotations

import torch

from ...models.outfitgan.config import OUTFIT_ORDER
from ..validation_grid import Validate


def validation_for(generator: torch.nn.Module, dataset, count: int) -> Validate:
    """Rows of the first ``count`` outfits of ``dataset`` completed by ``generator`` (unwrapped)."""
    from .evaluate import complete  # here: evaluate reads the toy world's judge, loaded only to validate

    def validate(step: int) -> list[list[torch.Tensor]]:
        device = next(generator.parameters()).device
        samples = [dataset[i] for i in range(min(count, len(dataset)))]
        items = torch.stack([s["items"] for s in samples]).to(device)  # (B, N, 3, S, S)
        masks = torch.stack([s["masks"] for s in samples]).to(device)  # (B, N, 1, S, S)
        was_training = generator.training
        generator.eval()
        fakes = complete(generator, items, masks)
        generator.train(was_training)
        config = generator.config
        source = OUTFIT_ORDER.index(config.source_slot)
        truths = [OUTFIT_ORDER.index(slot) for slot in config.target_slots]
        return [[items[b, source], *[fakes[slot][b] for slot in config.target_slots], *[items[b, i] for i in truths]]
                for b in range(items.shape[0])]

    return validate
