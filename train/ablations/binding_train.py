"""Train a toy denoiser on binding-world pictures under one prompt encoding, and sample it as the
paper samples SD (DDIM with classifier-free guidance against the empty prompt the condition dropout
trained).

The text encoder is FIXED (random weights from one seed, frozen, shared by every variant), so the
variants differ only in the context tokens a prompt becomes; everything the model learns about
binding is learned by the denoiser (its cross-attention reads the context). Every variant of a seed
draws the same pictures, timesteps, noise and dropout at every step (the draws are a function of
seed and step only), which also makes a resumed run draw what the interrupted one would have.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from ...models.errors import AtelierError
from ..text2graph.prompts import prompt_texts
from ..text2graph.text_encoding import encode_batch
from ..text2graph.tiny import CLIP_MAX_TOKENS
from .binding_world import BindingSample

logger = logging.getLogger("atelier.train.ablations")

CHECKPOINT_FILE = "checkpoint.pt"
STEP_SEED_STRIDE = 1_000_003

# variant -> how a sample's prompt is written for the text encoder: (texts, triples, encode_batch mode)
ENCODINGS = {
    "plain": "plain",
    "linearised": "linearized",
    "bound": "bound",
    "oracle-slots": "plain",
}
ORACLE = "oracle-slots"


class BindingCheckpointError(AtelierError, ValueError):
    """A run folder holds a checkpoint of another training setting; the message names the folder."""


def prompt_of(variant: str, sample: BindingSample) -> tuple[str, list]:
    """(caption, triples) handed to ``encode_batch`` for ``variant``. The oracle's "caption" is the
    two colour words in a fixed slot order (bodice, skirt): the answer in a fixed place."""
    if variant == ORACLE:
        return f"{sample.body} {sample.part}", []
    return sample.caption, sample.triples


def window_tokens(variant: str, samples: Sequence[BindingSample], tokenizer: CLIPTokenizer) -> int:
    """Tokens of the longest window any of ``samples`` needs under ``variant`` (start and end
    tokens included): the part of each 77-token window that is not padding after the end token."""
    mode = ENCODINGS[variant]
    return max(len(tokenizer(text, add_special_tokens=False, verbose=False).input_ids) + 2
               for sample in samples for text in prompt_texts(*prompt_of(variant, sample), mode))


@torch.no_grad()
def encode_prompts(variant: str, samples: Sequence[BindingSample], tokenizer: CLIPTokenizer,
                   text_encoder: CLIPTextModel, keep: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Contexts (N, T, C) of the samples' prompts and the empty prompt's (1, T, C) at the same length
    (bound: one 77-token window per entity, the empty prompt repeated as many times). ``keep``: the
    first ``keep`` tokens of every window only (``window_tokens``), so the denoiser reads the
    prompt's own tokens instead of 77 − ``keep`` pads after them; None keeps whole windows."""
    mode = ENCODINGS[variant]
    prompts = [prompt_of(variant, sample) for sample in samples]
    contexts = encode_batch(tokenizer, text_encoder, [c for c, _ in prompts], [t for _, t in prompts], mode)  # (N, T, C)
    empty = encode_batch(tokenizer, text_encoder, [""], [[]], mode)  # (1, 77, C)
    windows = contexts.shape[1] // CLIP_MAX_TOKENS
    empty = empty.repeat(1, windows, 1)  # (1, T, C)
    if keep is None:
        return contexts, empty
    width = contexts.shape[-1]
    contexts = contexts.view(len(samples), windows, CLIP_MAX_TOKENS, width)[:, :, :keep]  # (N, k, keep, C)
    empty = empty.view(1, windows, CLIP_MAX_TOKENS, width)[:, :, :keep]  # (1, k, keep, C)
    return contexts.reshape(len(samples), windows * keep, width), empty.reshape(1, windows * keep, width)


@dataclass(frozen=True)
class BindingTrainConfig:
    """One variant × seed training run.

    Args:
        steps: optimiser steps.
        batch_size: pictures per step.
        lr: AdamW learning rate.
        condition_dropout: share of samples trained with the empty prompt (for guidance).
        checkpoint_every: steps between resumable checkpoints.
    """

    steps: int = 250
    batch_size: int = 16
    lr: float = 3e-4
    condition_dropout: float = 0.1
    checkpoint_every: int = 100


def _step_draws(seed: int, step: int, count: int, batch: int, timesteps: int, shape: tuple[int, ...],
                dropout: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed * STEP_SEED_STRIDE + step)
    index = torch.randint(0, count, (batch,), generator=generator)  # (B,)
    t = torch.randint(0, timesteps, (batch,), generator=generator)  # (B,)
    noise = torch.randn((batch, *shape), generator=generator)  # (B, 4, h, w)
    dropped = torch.rand(batch, generator=generator) < dropout  # (B,)
    return index, t, noise, dropped


def train_denoiser(unet: UNet2DConditionModel, latents: torch.Tensor, contexts: torch.Tensor, empty: torch.Tensor,
                   scheduler: DDPMScheduler, config: BindingTrainConfig, seed: int, folder: Path,
                   identity: dict | None = None) -> list[float]:
    """ε-prediction MSE on ``latents`` (N, 4, h, w) with ``contexts`` (N, T, C); the empty prompt
    ``empty`` (1, T, C) replaces a sample's context with probability ``condition_dropout``. Resumes
    from ``folder``/checkpoint.pt, which must have been made with the same settings and ``identity``
    (what else made the run: variant, base, world); returns the loss of every step."""
    folder.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr)
    losses: list[float] = []
    path = folder / CHECKPOINT_FILE
    setting = json.loads(json.dumps({"batch_size": config.batch_size, "lr": config.lr, "seed": seed,
                                     "condition_dropout": config.condition_dropout, "pictures": len(latents),
                                     **(identity or {})}))
    if path.is_file():
        state = torch.load(path, weights_only=True)
        if state["setting"] != setting or len(state["losses"]) > config.steps:
            raise BindingCheckpointError(
                f"{folder} holds a checkpoint of {len(state['losses'])} steps with {state['setting']}; this run asks for "
                f"{config.steps} steps with {setting}: pass another --out or the same options")
        unet.load_state_dict(state["unet"])
        optimizer.load_state_dict(state["optimizer"])
        losses = list(state["losses"])
        logger.info("resumed %s at step %d", folder, len(losses))
    alphas = scheduler.alphas_cumprod
    unet.train()
    for step in range(len(losses), config.steps):
        index, t, noise, dropped = _step_draws(seed, step, len(latents), config.batch_size,
                                               len(alphas), tuple(latents.shape[1:]), config.condition_dropout)
        clean = latents[index]  # (B, 4, h, w)
        a = alphas[t].view(-1, 1, 1, 1)  # (B, 1, 1, 1)
        noisy = a.sqrt() * clean + (1 - a).sqrt() * noise  # (B, 4, h, w)
        context = torch.where(dropped.view(-1, 1, 1), empty, contexts[index])  # (B, T, C)
        loss = F.mse_loss(unet(noisy, t, encoder_hidden_states=context).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            torch.save({"unet": unet.state_dict(), "optimizer": optimizer.state_dict(), "losses": losses,
                        "setting": setting}, path)
            logger.info("%s: step %d, mean loss of the last %d %.4f", folder.name, step + 1,
                        config.checkpoint_every, sum(losses[-config.checkpoint_every:]) / len(losses[-config.checkpoint_every:]))
    unet.eval()
    return losses


@torch.no_grad()
def sample_latents(unet: UNet2DConditionModel, contexts: torch.Tensor, empty: torch.Tensor, scheduler: DDPMScheduler,
                   shape: tuple[int, ...], steps: int, guidance: float | None, seed: int, batch: int) -> torch.Tensor:
    """DDIM from pure noise for every context (N, T, C) -> latents (N, *shape). ``guidance`` ω:
    ε = ε(∅) + ω (ε(c) − ε(∅)) with ``empty`` (1, T, C) as ∅; None samples the empty prompt
    alone (the unconditional model). The noise is a function of ``seed`` only, so every variant
    starts from the same noise."""
    ddim = DDIMScheduler.from_config(scheduler.config)
    ddim.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    x_all = torch.randn((len(contexts), *shape), generator=generator)  # (N, 4, h, w)
    out = []
    for start in range(0, len(contexts), batch):
        x = x_all[start:start + batch]  # (b, 4, h, w)
        cond = contexts[start:start + batch]  # (b, T, C)
        none = empty.expand(len(x), -1, -1)  # (b, T, C)
        for t in ddim.timesteps:
            if guidance is None:
                eps = unet(x, t, encoder_hidden_states=none).sample
            else:
                both = unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([cond, none])).sample  # (2b, 4, h, w)
                eps_cond, eps_none = both.chunk(2)
                eps = eps_none + guidance * (eps_cond - eps_none)
            x = ddim.step(eps, t, x).prev_sample
        out.append(x)
    return torch.cat(out)  # (N, 4, h, w)
