"""TruePose's validation grid: a few fixed training pairs, one row each: the source picture, the
target skeleton, the model's re-posed sample (DDIM with CFG, the evaluation's sampler), and the
true target. Stage base: an unconditional sample instead of the re-posed one."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ..anydressing.components import BaseComponents
from ..validation_grid import Validate
from .data import collate
from ...models.truepose.config import PAPER_GUIDANCE

SAMPLING_STEPS = 10


def validation_for(components: BaseComponents, dataset, count: int, variant: str, config, trainables, encoder,
                   seed: int = 0) -> Validate:
    """Rows of the first ``count`` pairs of ``dataset``; ``trainables`` is the trained
    TruePoseTrainables (unwrapped), ``config`` None for stage base."""
    from .evaluate import TrainedTruePose, repose  # here: evaluate reads the file names of cli, which imports this


    def validate(step: int) -> list[list[torch.Tensor]]:
        device = next(components.unet.parameters()).device
        batch = collate([dataset[i] for i in range(min(count, len(dataset)))]).to(device)
        shape = components.vae.encode(batch.targets).shape  # (B, 4, h, w)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)
        if config is None:
            trained = TrainedTruePose(variant, None, SimpleNamespace(unet=components.unet))
            images = repose(components, trained, batch, None, noise, PAPER_GUIDANCE, SAMPLING_STEPS, condition=False)
        else:
            trained = TrainedTruePose(variant, config, trainables)
            images = repose(components, trained, batch, encoder, noise, PAPER_GUIDANCE, SAMPLING_STEPS)
        return [[source, skeleton, image, target]
                for source, skeleton, image, target in zip(batch.sources, batch.skeletons, images, batch.targets)]

    return validate
