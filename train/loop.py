"""What every diffusion trainer here shares: the entry point's logging and threads, per-step
randomness fixed by (seed, step), the optimisation loop with the shared controls (``controls.py``:
accumulation, LR schedule, clipping, EMA, progress, trackers, validation grids), its loss log and
checkpoints of the trained parameters (exact resume), the multi-process gradient mean, and writing a
diffusers UNet state dict.

Multi-process runs: every process draws the whole global batch's indices, noise and timesteps from
(seed, step) and keeps its own slice (``process_slice``), so that ranks see different samples and a
run on P processes with batch B per process follows the 1-process run with batch P·B (its losses
are means over the slices, its gradients the mean over processes)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import PartialState
from accelerate.utils import DistributedType
from safetensors.torch import save_file

from .checkpoints import TrainingState, resume_latest, save_checkpoint
from .command_line import OptionError
from .command_line import add_loop_options, start_cli  # noqa: F401  (re-exported: the trainers' shared options)
from .controls import ControlSettings
from .ema import ExponentialMovingAverage
from .optimisation import clip_gradients, lr_scheduler_for, trained_parameters
from .progress import Progress
from .validation_grid import Validate, validate_and_write

logger = logging.getLogger("atelier.train")

# One step's losses by name, and the tensor to back-propagate.
StepLosses = Callable[[int], tuple[dict[str, torch.Tensor], torch.Tensor]]


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of step ``step``'s noise and timesteps (fixed by (seed, step): exact resume)."""
    value = int(np.random.default_rng((seed, step, 7)).integers(0, 2**62))
    return torch.Generator().manual_seed(value)


def process_slice(rows: int) -> tuple[int, int, slice]:
    """(processes P, this process's index, its slice of the P·``rows`` rows of a global batch)."""
    state = PartialState()
    count, index = state.num_processes, state.process_index
    return count, index, slice(index * rows, (index + 1) * rows)


def global_randn_like(tensor: torch.Tensor) -> torch.Tensor:
    """Standard normal noise like ``tensor`` from the global RNG. One process: ``torch.randn_like``,
    the draw such trainers always made. Several: drawn contiguous for the whole global batch, this
    process's rows kept. (randn_like fills memory in order, and a CPU convolution returns channels-last
    latents for a batch of 2 but contiguous ones for 1, so on the CPU a latent-space run on P processes
    draws other noise than one process with the P-fold batch; on a GPU both layouts are contiguous.)"""
    count, _, rows = process_slice(tensor.shape[0])
    if count == 1:
        return torch.randn_like(tensor)
    draw = torch.randn((count * tensor.shape[0], *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    return draw[rows]


def noise_and_timesteps(latents: torch.Tensor, scheduler, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """ε (like ``latents``) and t (B,) drawn on the CPU for the whole global batch (P·B rows), this
    process's rows kept, moved to the latents' device. One process: the plain draw of B rows."""
    count, _, rows = process_slice(latents.shape[0])
    noise = torch.randn((count * latents.shape[0], *latents.shape[1:]), generator=generator)[rows].to(latents)
    steps = int(scheduler.config.num_train_timesteps)
    timesteps = torch.randint(0, steps, (count * latents.shape[0],), generator=generator)[rows].to(latents.device)
    return noise, timesteps


def average_gradients(accelerator: Accelerator, prepared: torch.nn.Module) -> None:
    """Mean of the gradients over processes. Stages that call the unwrapped modules (not the DDP
    wrapper's forward) are not synchronised by DDP; a single process does nothing. Which parameters
    hold a gradient is the same on every process (condition drops are drawn per global batch), so the
    collectives match and a parameter without gradient stays untouched, as in one process."""
    average_parameter_gradients(accelerator, list(prepared.parameters()))


def average_parameter_gradients(accelerator: Accelerator, parameters: list[torch.nn.Parameter]) -> None:
    """``average_gradients`` over a parameter list (e.g. one optimizer's)."""
    if accelerator.num_processes == 1:
        return
    for parameter in parameters:
        if parameter.grad is not None:
            parameter.grad = accelerator.reduce(parameter.grad, reduction="mean")


def save_diffusers_unet(unet: torch.nn.Module, path: Path, stage: str) -> None:
    """A diffusers UNet state dict as safetensors (what the core UNETLoader and ``--init-unet`` read)."""
    state = {key: value.detach().cpu().contiguous() for key, value in unet.state_dict().items()}
    save_file(state, str(path), metadata={"atelier.stage": stage, "format": "diffusers_unet"})


BASE_FLAGS = ("base", "pretrained", "init_unet", "resume_from", "init_ip_adapter", "image_encoder", "ccm_from")


def base_files_of(args: argparse.Namespace) -> dict[str, str | None]:
    """The flags naming what a run stands on (``--base``, ``--init-unet``, ...), as checkpoints record them."""
    return {"--" + name.replace("_", "-"): getattr(args, name) for name in BASE_FLAGS
            if hasattr(args, name) and not isinstance(getattr(args, name), bool)}


def hyperparameters_of(args: argparse.Namespace) -> dict[str, object]:
    """The scalar options of a run, for the trackers' run configuration."""
    return {key: value for key, value in vars(args).items() if isinstance(value, (int, float, str, bool))}


@dataclass(frozen=True)
class LoopSettings:
    """How long to train, how often to log and checkpoint, the shared controls, and what the run
    stands on (the CLIs' options of the same names)."""

    steps: int
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int
    resume: bool
    controls: ControlSettings = field(default_factory=ControlSettings)
    base_files: dict[str, str | None] = field(default_factory=dict)
    hyperparameters: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args) -> "LoopSettings":
        """The loop options of a trainer's parsed arguments (same names in every CLI)."""
        return cls(args.steps, args.log_every, args.checkpoint_every, args.keep_checkpoints, args.resume,
                   ControlSettings.from_args(args), base_files_of(args), hyperparameters_of(args))


def log_losses(step: int, losses: dict[str, object], log_file: Path) -> None:
    """Append one line ``{"step": step, **losses}`` to the JSON-lines loss log."""
    with log_file.open("a") as handle:
        handle.write(json.dumps({"step": step, **losses}) + "\n")


def mean_losses(micro: list[dict[str, float]]) -> dict[str, float]:
    """Per-name mean over the micro-batches of one step (one micro-batch: its values unchanged)."""
    if len(micro) == 1:
        return micro[0]
    return {name: sum(values[name] for values in micro) / len(micro) for name in micro[0]}


@dataclass
class Optimisation:
    """One optimiser with what steps alongside it: the LR schedule, the EMA, the clipping bound."""

    optimizer: torch.optim.Optimizer
    scheduler: object
    ema: ExponentialMovingAverage | None
    max_grad_norm: float
    average: bool = False

    @classmethod
    def build(cls, optimizer: torch.optim.Optimizer, controls: ControlSettings, total_steps: int,
              average: bool = False) -> "Optimisation":
        """The schedule over ``total_steps`` and, when ``controls.ema_decay`` > 0, the EMA of the
        optimizer's parameters; ``average``: mean the gradients over processes by hand before a step."""
        ema = ExponentialMovingAverage(trained_parameters(optimizer), controls.ema_decay) if controls.ema_decay > 0 else None
        return cls(optimizer, lr_scheduler_for(optimizer, controls, total_steps), ema, controls.max_grad_norm, average)

    def step(self, accelerator: Accelerator) -> float | None:
        """(Mean the gradients over processes,) clip, step the optimizer and the schedule, clear the
        gradients, update the EMA; returns the gradient norm before clipping (None without clipping)."""
        if self.average:
            average_parameter_gradients(accelerator, trained_parameters(self.optimizer))
        norm = clip_gradients(accelerator, trained_parameters(self.optimizer), self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        if self.ema is not None:
            self.ema.update()
        return norm


def start_trackers(accelerator: Accelerator, settings: LoopSettings, name: str) -> bool:
    """``accelerator.init_trackers`` when ``--report-to`` names one; returns whether trackers run."""
    if settings.controls.report_to == "none":
        return False
    accelerator.init_trackers(name, config=settings.hyperparameters)
    return True


def run_steps(accelerator: Accelerator, prepared: torch.nn.Module, optimizer: torch.optim.Optimizer, out: Path,
              stage: str, settings: LoopSettings, step_losses: StepLosses, average: bool,
              validate: Validate | None = None, extras: dict[str, object] | None = None) -> list[dict[str, float]]:
    """Train ``prepared`` until ``settings.steps``: ``settings.controls.accumulation`` micro-batches
    per optimiser step, micro-batch m of step s having losses ``step_losses(s·accumulation + m)``
    (one micro-batch: ``step_losses(s)``); ``losses-<stage>.jsonl`` in ``out``; checkpoints of the
    trained parameters under ``checkpoints-<stage>`` (resumed from the newest with
    ``settings.resume``); validation grids of ``validate`` under ``validation-<stage>``. ``average``:
    mean the gradients over processes by hand (stages that bypass the DDP wrapper's forward). With
    an EMA, the trained parameters hold the EMA weights on return (what the trainers export).
    ``extras``: more checkpointed state by name (``state_dict`` / ``load_state_dict``, e.g. a
    ``BatchStream``). Returns the per-step losses of this call (means over the micro-batches)."""
    controls = settings.controls
    if validate is not None and controls.validate_every and accelerator.distributed_type == DistributedType.FSDP:
        raise OptionError("--validate-every samples on the main process alone, which FSDP's sharded parameters "
                          "do not allow; drop it under FSDP")
    optimisation = Optimisation.build(optimizer, controls, settings.steps)
    saved = {**(extras or {}), **({"ema": optimisation.ema} if optimisation.ema is not None else {})}
    state = TrainingState({"trained": prepared}, {"optimizer": optimizer}, {"lr": optimisation.scheduler}, saved,
                          settings.base_files)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_root = out / f"checkpoints-{stage}"
    step = resume_latest(accelerator, checkpoint_root, state, settings.steps) if settings.resume else 0
    log_file = out / f"losses-{stage}.jsonl"
    tracking = start_trackers(accelerator, settings, f"atelier-{stage}")
    progress = Progress(step, settings.steps, stage, controls.progress_bar, accelerator.is_main_process)
    history: list[dict[str, float]] = []
    accumulation = controls.accumulation
    while step < settings.steps:
        micro: list[dict[str, float]] = []
        for index in range(accumulation):
            last = index == accumulation - 1
            skip_sync = accelerator.no_sync(prepared) if not last and not average and accelerator.num_processes > 1 \
                else nullcontext()
            with skip_sync:
                with accelerator.autocast():
                    losses, total = step_losses(step * accumulation + index if accumulation > 1 else step)
                accelerator.backward(total / accumulation if accumulation > 1 else total)
            micro.append({name: float(accelerator.reduce(value.detach(), reduction="mean"))
                          for name, value in losses.items()})  # the global batch's mean over processes
        if average:
            average_gradients(accelerator, prepared)
        norm = optimisation.step(accelerator)
        step += 1
        values = mean_losses(micro)
        history.append(values)
        logged = step % settings.log_every == 0 or step == settings.steps
        if logged and accelerator.is_main_process:
            log_losses(step, values, log_file)
        progress.update(step, values, logged)
        if tracking:
            extra = {"lr": optimisation.scheduler.get_last_lr()[0], **({"grad_norm": norm} if norm is not None else {})}
            accelerator.log({**values, **extra}, step=step)
        if validate is not None and controls.validate_every and (step % controls.validate_every == 0 or step == settings.steps):
            validate_and_write(validate, step, out / f"validation-{stage}", accelerator, optimisation.ema)
        if step == settings.steps or (settings.checkpoint_every and step % settings.checkpoint_every == 0):
            save_checkpoint(accelerator, checkpoint_root, step, settings.keep_checkpoints, state)
    progress.close()
    if optimisation.ema is not None:
        optimisation.ema.copy_to_parameters()
    if tracking:
        accelerator.end_training()
    return history
