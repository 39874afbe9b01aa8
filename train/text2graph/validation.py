"""Text2Graph's validation grid: a few fixed training samples, one row each: the true image and the
model's sample for its prompt (DDIM with classifier-free guidance, in latent or pixel space)."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from ..datasets import sample as keys
from ..validation_grid import Validate
from .data import TRIPLES
from .models import Components
from .text_encoding import encode_batch

SAMPLING_STEPS = 20
GUIDANCE = 3.0


@torch.no_grad()
def sample_images(components: Components, captions: list[str], triples: list, mode: str, size: int, seed: int) -> torch.Tensor:
    """Images (B, 3, H, W) in [0, 1] for the prompts, DDIM with CFG from a seeded start."""
    unet = components.unet
    device = next(unet.parameters()).device
    scheduler = DDIMScheduler.from_config(components.scheduler.config)
    scheduler.set_timesteps(SAMPLING_STEPS)
    cond = encode_batch(components.tokenizer, components.text_encoder, captions, triples, mode)  # (B, 77·k, C)
    uncond = encode_batch(components.tokenizer, components.text_encoder, [""] * len(captions), [[]] * len(captions), mode)
    side = size if components.vae is None else size // 8
    shape = (len(captions), unet.config.in_channels, side, side)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)  # (B, C, h, w)
    for t in scheduler.timesteps:
        eps_cond = unet(x, t, encoder_hidden_states=cond).sample
        eps_uncond = unet(x, t, encoder_hidden_states=uncond).sample
        x = scheduler.step(eps_uncond + GUIDANCE * (eps_cond - eps_uncond), t, x).prev_sample
    if components.vae is not None:
        x = components.vae.decode(x / components.latent_scale).sample  # (B, 3, H, W) in [-1, 1]
    return ((x.clamp(-1, 1) + 1) / 2).float()


def validation_for(components: Components, dataset, count: int, mode: str, size: int, seed: int = 0) -> Validate:
    """Rows of the first ``count`` samples of ``dataset`` (their prompts and true images)."""

    def validate(step: int) -> list[list[torch.Tensor]]:
        samples = [dataset[i] for i in range(min(count, len(dataset)))]
        images = sample_images(components, [s[keys.CAPTION] for s in samples], [s[TRIPLES] for s in samples],
                               mode, size, seed)
        return [[sample[keys.IMAGE], image] for sample, image in zip(samples, images)]

    return validate
