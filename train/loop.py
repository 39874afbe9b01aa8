"""What every diffusion trainer here shares: the entry point's logging and threads, per-step
randomness fixed by (seed, step), the optimisation loop with its loss log and checkpoints (exact
resume), the multi-process gradient mean, and writing a diffusers UNet state dict."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import save_file

from .checkpoints import resume_latest, save_checkpoint

logger = logging.getLogger("atelier.train")

# One step's losses by name, and the tensor to back-propagate.
StepLosses = Callable[[int], tuple[dict[str, torch.Tensor], torch.Tensor]]


def add_loop_options(parser: argparse.ArgumentParser, *, lr: float, lr_help: str, batch_help: str) -> None:
    """The options every diffusion trainer shares (steps, batch, optimiser, precision, threads, seed,
    checkpoints, resume, log, output); ``LoopSettings.from_args`` and ``start_cli`` read them."""
    parser.add_argument("--steps", type=int, default=1000, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=4, help=batch_help)
    parser.add_argument("--lr", type=float, default=lr, help=lr_help)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no", help="passed to accelerate")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice); 1 is much faster on a busy, shared CPU")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (0: only at the end)")
    parser.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of this stage in --out")
    parser.add_argument("--log-every", type=int, default=50, help="steps between loss log lines")
    parser.add_argument("--out", required=True, help="output folder")


def start_cli(args) -> None:
    """What every train / evaluate entry point does first: INFO logging and ``--threads``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of step ``step``'s noise and timesteps (fixed by (seed, step): exact resume)."""
    value = int(np.random.default_rng((seed, step, 7)).integers(0, 2**62))
    return torch.Generator().manual_seed(value)


def noise_and_timesteps(latents: torch.Tensor, scheduler, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """ε (like ``latents``) and t (B,) drawn on the CPU, moved to the latents' device."""
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    steps = int(scheduler.config.num_train_timesteps)
    timesteps = torch.randint(0, steps, (latents.shape[0],), generator=generator).to(latents.device)
    return noise, timesteps


def average_gradients(accelerator: Accelerator, prepared: torch.nn.Module) -> None:
    """Mean of the gradients over processes. Stages that call the unwrapped modules (not the DDP
    wrapper's forward) are not synchronised by DDP; a single process does nothing."""
    if accelerator.num_processes == 1:
        return
    for parameter in prepared.parameters():
        if parameter.grad is not None:
            parameter.grad = accelerator.reduce(parameter.grad, reduction="mean")


def save_diffusers_unet(unet: torch.nn.Module, path: Path, stage: str) -> None:
    """A diffusers UNet state dict as safetensors (what the core UNETLoader and ``--init-unet`` read)."""
    state = {key: value.detach().cpu().contiguous() for key, value in unet.state_dict().items()}
    save_file(state, str(path), metadata={"atelier.stage": stage, "format": "diffusers_unet"})


@dataclass(frozen=True)
class LoopSettings:
    """How long to train and how often to log and checkpoint (the CLIs' options of the same names)."""

    steps: int
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int
    resume: bool

    @classmethod
    def from_args(cls, args) -> "LoopSettings":
        """The loop options of a trainer's parsed arguments (same names in every CLI)."""
        return cls(args.steps, args.log_every, args.checkpoint_every, args.keep_checkpoints, args.resume)


def _log(step: int, total: int, losses: dict[str, float], rate: float, log_file: Path) -> None:
    logger.info("step %d/%d %s  %.2f steps/s", step, total, " ".join(f"{k}={v:.4f}" for k, v in losses.items()), rate)
    with log_file.open("a") as handle:
        handle.write(json.dumps({"step": step, **losses}) + "\n")


def run_steps(accelerator: Accelerator, prepared: torch.nn.Module, optimizer: torch.optim.Optimizer, out: Path,
              stage: str, settings: LoopSettings, step_losses: StepLosses, average: bool) -> list[dict[str, float]]:
    """Train ``prepared`` until ``settings.steps``: losses of each step from ``step_losses(step)``,
    ``losses-<stage>.jsonl`` in ``out``, checkpoints under ``checkpoints-<stage>`` (and resume from
    the newest one with ``settings.resume``). ``average``: mean the gradients over processes by hand.
    Returns the per-step losses of this call."""
    checkpoint_root = out / f"checkpoints-{stage}"
    step = resume_latest(accelerator, checkpoint_root) if settings.resume else 0
    log_file = out / f"losses-{stage}.jsonl"
    history: list[dict[str, float]] = []
    started, first = time.perf_counter(), step
    while step < settings.steps:
        with accelerator.autocast():
            losses, total = step_losses(step)
        accelerator.backward(total)
        if average:
            average_gradients(accelerator, prepared)
        optimizer.step()
        optimizer.zero_grad()
        step += 1
        values = {name: float(value.detach()) for name, value in losses.items()}
        history.append(values)
        if step % settings.log_every == 0 or step == settings.steps:
            rate = (step - first) / max(time.perf_counter() - started, 1e-9)
            _log(step, settings.steps, values, rate, log_file)
        if step == settings.steps or (settings.checkpoint_every and step % settings.checkpoint_every == 0):
            save_checkpoint(accelerator, checkpoint_root, step, settings.keep_checkpoints)
    return history
