"""The standard training controls every trainer shares, as command-line options and one settings
dataclass: gradient accumulation, LR schedule with warm-up, max-grad-norm clipping, EMA of the
trained weights, trackers, validation grids, and the progress display.

Every default is the identity (accumulation 1, constant LR without warm-up, no clipping, no EMA, no
tracker, no validation), so a run without these flags trains exactly as before. This module imports
nothing heavy: ``--help`` stays fast. The machinery lives beside it: ``optimisation.py`` (accelerator,
LR schedule, clipping), ``ema.py``, ``progress.py``, ``validation_grid.py``; ``loop.run_steps`` and the
OutfitGAN loop use them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..models.errors import AtelierError

LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
TRACKERS = ("none", "tensorboard", "wandb", "all")


class ControlOptionError(AtelierError, ValueError):
    """A training-control option is out of range; the message names the flag."""


def add_control_options(parser: argparse.ArgumentParser) -> None:
    """The shared controls' flags (``ControlSettings.from_args`` reads them)."""
    group = parser.add_argument_group("training controls (defaults change nothing)")
    group.add_argument("--gradient-accumulation", type=int, default=1,
                       help="micro-batches per optimiser step (the global batch is batch size x this x processes; "
                            "default: 1)")
    group.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                       help="learning-rate schedule over the run's steps (diffusers' get_scheduler; default: constant)")
    group.add_argument("--lr-warmup-steps", type=int, default=0,
                       help="steps of linear warm-up from 0 to the learning rate (default: 0; with --lr-schedule "
                            "constant a warm-up turns it into constant_with_warmup)")
    group.add_argument("--max-grad-norm", type=float, default=0.0,
                       help="clip the gradients' global L2 norm to this before each step (default: 0, off)")
    group.add_argument("--ema-decay", type=float, default=0.0,
                       help="keep an exponential moving average of the trained weights with this decay (e.g. 0.999) "
                            "and export it instead of the raw weights (default: 0, off)")
    group.add_argument("--report-to", choices=TRACKERS, default="none",
                       help="experiment tracker through accelerate, logging to <out>/logs (tensorboard needs the "
                            "tensorboard package, wandb the wandb package; default: none)")
    group.add_argument("--validate-every", type=int, default=0,
                       help="steps between validation grids written to <out>/validation-<stage>/ (default: 0, only "
                            "when set; then also after the last step)")
    group.add_argument("--validation-samples", type=int, default=4,
                       help="fixed validation samples in each grid (default: 4)")
    group.add_argument("--no-progress-bar", action="store_true",
                       help="log lines (with steps/s and ETA) instead of a progress bar even on a terminal")


@dataclass(frozen=True)
class ControlSettings:
    """The shared controls of one run.

    Args:
        accumulation: micro-batches per optimiser step.
        lr_schedule: diffusers scheduler name; warmup_steps: its warm-up.
        max_grad_norm: clipping bound of the global gradient norm (0: off).
        ema_decay: EMA decay (0: off).
        report_to: accelerate tracker ("none" for none).
        validate_every: steps between validation grids (0: off); validation_samples: grid size.
        progress_bar: draw a tqdm bar when the output is a terminal.
    """

    accumulation: int = 1
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 0.0
    ema_decay: float = 0.0
    report_to: str = "none"
    validate_every: int = 0
    validation_samples: int = 4
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.accumulation < 1:
            raise ControlOptionError(f"--gradient-accumulation must be >= 1, got {self.accumulation}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ControlOptionError(f"--lr-schedule {self.lr_schedule!r} is unknown; choose one of {list(LR_SCHEDULES)}")
        if self.warmup_steps < 0:
            raise ControlOptionError(f"--lr-warmup-steps must be >= 0, got {self.warmup_steps}")
        if self.max_grad_norm < 0:
            raise ControlOptionError(f"--max-grad-norm must be >= 0 (0: off), got {self.max_grad_norm}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ControlOptionError(f"--ema-decay must lie in [0, 1) (0: off), got {self.ema_decay}")
        if self.report_to not in TRACKERS:
            raise ControlOptionError(f"--report-to {self.report_to!r} is unknown; choose one of {list(TRACKERS)}")
        if self.validate_every < 0 or self.validation_samples < 1:
            raise ControlOptionError("--validate-every must be >= 0 and --validation-samples >= 1")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ControlSettings":
        """The controls of parsed arguments; a namespace without these flags gets the defaults."""
        default = cls()
        return cls(
            accumulation=getattr(args, "gradient_accumulation", default.accumulation),
            lr_schedule=getattr(args, "lr_schedule", default.lr_schedule),
            warmup_steps=getattr(args, "lr_warmup_steps", default.warmup_steps),
            max_grad_norm=getattr(args, "max_grad_norm", default.max_grad_norm),
            ema_decay=getattr(args, "ema_decay", default.ema_decay),
            report_to=getattr(args, "report_to", default.report_to),
            validate_every=getattr(args, "validate_every", default.validate_every),
            validation_samples=getattr(args, "validation_samples", default.validation_samples),
            progress_bar=not getattr(args, "no_progress_bar", False),
        )

    @property
    def schedule_name(self) -> str:
        """The diffusers scheduler: plain ``constant`` with a warm-up becomes ``constant_with_warmup``."""
        if self.lr_schedule == "constant" and self.warmup_steps > 0:
            return "constant_with_warmup"
        return self.lr_schedule
