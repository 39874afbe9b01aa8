"""IGR's validation grid: a few fixed training pairs, one row each: the person, the garment mask,
the flat garment the model restores from them (DDIM with CFG, the evaluation's sampler), and the
true flat garment. Stage base: the category prompt's sample instead of the restoration."""

from __future__ import annotations

import torch

from ..anydressing.components import BaseComponents
from ..validation_grid import Validate
from .data import collate
from ...models.igr.config import PAPER_GUIDANCE

SAMPLING_STEPS = 10


def validation_for(components: BaseComponents, dataset, positions, count: int, config, trainables, encoder,
                   seed: int = 0) -> Validate:
    """Rows of the first ``count`` of ``positions``; ``trainables`` is the trained IGRTrainables
    (unwrapped), ``config`` None for stage base."""
    from .evaluate import restore  # here: evaluate reads cli's options, and cli imports this


    def validate(step: int) -> list[list[torch.Tensor]]:
        device = next(components.unet.parameters()).device
        batch = collate([dataset[positions[i]] for i in range(min(count, len(positions)))]).to(device)
        shape = components.vae.encode(batch.garments).shape  # (B, 4, hc, wc)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)
        igr = None if config is None else (config, trainables)
        restored = restore(components, batch, igr, encoder, PAPER_GUIDANCE, SAMPLING_STEPS, noise)
        masks = batch.masks.float()[:, None].expand(-1, 3, -1, -1)  # (B, H, W) -> (B, 3, H, W)
        return [[person, mask, image, truth]
                for person, mask, image, truth in zip(batch.persons, masks, restored, batch.garments)]

    return validate
