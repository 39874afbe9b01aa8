"""AnyDressing's validation grid: a few fixed training samples, one row each: the garments, the
person with the garments' regions greyed out, the model's img2img result from it (DDIM, the
dressing read at λ = 1), and the true person. Stage 0 rows: the true person and a sample drawn
from pure noise by the trained denoiser."""

from __future__ import annotations

import torch

from ...models.anydressing.config import DressingConfig
from ...models.anydressing.dressing_run import DressingRun
from ...models.diffusers_host import DiffusersReferenceHost
from ..validation_grid import Validate
from .components import BaseComponents
from .data import TILED_CATEGORY, collate, tiled
from .evaluate import denoise, grey_out
from .steps import DressingTrainables, encode_garments, reading_config

SAMPLING_STEPS = 10
NOISE_STRENGTH = 0.7


def validation_for(components: BaseComponents, dataset, count: int, config: DressingConfig | None,
                   trainables, seed: int = 0) -> Validate:
    """The grid rows of the first ``count`` samples of ``dataset``; ``trainables`` is the trained
    module (unwrapped): the dressing stage's DressingTrainables, or None for stage 0."""

    def validate(step: int) -> list[list[torch.Tensor]]:
        rows = []
        device = next(components.unet.parameters()).device
        for position in range(min(count, len(dataset))):
            sample = dataset[position]
            generator = torch.Generator().manual_seed(seed * 1_000_003 + position)
            if config is None:
                image = denoise(components, sample.person[None].to(device), 1.0, SAMPLING_STEPS, generator)
                rows.append([sample.person, image[0]])
                continue
            start = grey_out(sample.person, sample.garment_masks)[None].to(device)  # (1, 3, H, W)
            image = dressed(components, trainables, config, sample, start, generator)
            rows.append([*sample.garments, start[0], image[0], sample.person])
        return rows

    return validate


def dressed(components: BaseComponents, trainables: DressingTrainables, config: DressingConfig, sample,
            start: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Img2img of ``start`` (1, 3, H, W) reading ``sample``'s garments through Dressing-Attention."""
    device = start.device
    batch = collate([tiled(sample) if config.slots == (TILED_CATEGORY,) else sample]).to(device)
    with DiffusersReferenceHost(components.unet, reading_config(config, 1.0), trainables.projections) as host:
        bank = encode_garments(components, trainables, config, batch.garments, batch.categories)
        run = DressingRun(host.config, bank, trainables.projections)
        try:
            return denoise(components, start, NOISE_STRENGTH, SAMPLING_STEPS, generator,
                           lambda x, t, c: host.forward(run, x, t, c, cond_or_uncond=[0]).sample)
        finally:
            run.release()
