"""The engine side of the shared controls: the accelerator (precision, device, trackers), the LR
schedule with warm-up, and gradient clipping."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import is_tensorboard_available, is_wandb_available

from .controls import ControlOptionError, ControlSettings

LOG_FOLDER = "logs"


def tracker_names(report_to: str) -> list[str] | str | None:
    """accelerate's ``log_with`` for ``--report-to``; an uninstalled tracker is a ControlOptionError."""
    if report_to == "none":
        return None
    if report_to == "all":
        return "all"
    available = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}[report_to]()
    if not available:
        raise ControlOptionError(f"--report-to {report_to} needs the {report_to} package: pip install {report_to}")
    return [report_to]


def accelerator_for(args: argparse.Namespace, out: Path | str) -> Accelerator:
    """The run's Accelerator: ``--mixed-precision``, ``--cpu`` and ``--report-to`` (logs under ``out/logs``).
    Multi-process, DeepSpeed and FSDP come from ``accelerate launch`` and its config file."""
    settings = ControlSettings.from_args(args)
    return Accelerator(mixed_precision=getattr(args, "mixed_precision", "no"), cpu=getattr(args, "cpu", False),
                       log_with=tracker_names(settings.report_to), project_dir=str(Path(out) / LOG_FOLDER))


def lr_scheduler_for(optimizer: torch.optim.Optimizer, settings: ControlSettings, total_steps: int):
    """diffusers' ``get_scheduler`` over ``total_steps`` optimiser steps, stepped once per step by
    the loop (not prepared by accelerate, which would step it once per process). The default,
    constant without warm-up, multiplies the learning rate by 1 at every step."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(settings.schedule_name, optimizer, num_warmup_steps=settings.warmup_steps,
                         num_training_steps=max(total_steps, 1))


def clip_gradients(accelerator: Accelerator, parameters: list[torch.nn.Parameter], max_norm: float) -> float | None:
    """Scale the gradients so that their global L2 norm is at most ``max_norm`` (unscaling fp16 first);
    returns the norm before clipping, or None when ``max_norm`` is 0 (off)."""
    if max_norm <= 0:
        return None
    return float(accelerator.clip_grad_norm_(parameters, max_norm))


def trained_parameters(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    """The parameters ``optimizer`` updates."""
    return [p for group in optimizer.param_groups for p in group["params"]]
