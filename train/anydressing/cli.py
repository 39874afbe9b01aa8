"""The training half of ``python -m atelier.train.anydressing``, run once ``options.py`` has parsed the
options (its docstring is the command's ``--help``: what it does, the files it writes, examples)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from ...models.anydressing.config import DressingConfig
from ...models.anydressing.spec import ANYDRESSING
from ...models.outfitgan.perceptual import build_perceptual_loss
from ...models.sites import SITE_GROUPS
from ...models.weights import save_weight_file
from ..loop import (
    LoopSettings,
    run_steps,
    save_diffusers_unet,
    start_cli,
    step_generator,
)
from .components import BaseComponents, load_base
from ..optimisation import accelerator_for
from .data import TILED_CATEGORY, batch_for_step, build_dataset
from ..command_line import run_cli
from .options import TrainingOptionError, check_args, parse_args  # noqa: F401  (light: parsed before torch loads)
from .validation import validation_for
from .steps import (
    LossWeights,
    base_losses,
    build_trainables,
    dressing_losses,
)

logger = logging.getLogger("atelier.train.anydressing")

WEIGHT_FILE = "anydressing.safetensors"
GARMENTS_UNET_FILE = "anydressing_garmentsnet_unet.safetensors"
BASE_UNET_FILE = "base_unet.safetensors"


def dressing_config(args: argparse.Namespace) -> DressingConfig:
    """The DressingConfig of the flags; the tiled 'Base' ablation has the single slot TILED_CATEGORY."""
    slots = (TILED_CATEGORY,) if args.reference == "tiled" else tuple(s for s in args.slots.split(",") if s)
    return DressingConfig(slots=slots, rank=args.rank, alpha=args.alpha, sites=SITE_GROUPS[args.sites])


@dataclass
class TrainResult:
    """What a run produced: written files, per-step losses, and the trained modules (unwrapped)."""

    outputs: list[Path]
    losses: list[dict[str, float]] = field(default_factory=list)
    modules: dict[str, torch.nn.Module] = field(default_factory=dict)


def cross_view_step(seed: int, step: int, fraction: float, self_fraction: float = 0.0) -> str | None:
    """The reference base step ``step`` reads: None, ``"other"`` (the other pose) or ``"self"``
    (the shifted picture); drawn from (seed, step), so a resumed run reads what it would have."""
    draws = np.random.default_rng((seed, step, 13)).random(2)
    if fraction <= 0 or draws[0] >= fraction:
        return None
    return "self" if draws[1] < self_fraction else "other"


def _captions(args: argparse.Namespace, captions: list[str]) -> list[str]:
    return captions if args.prompt == "caption" else [""] * len(captions)


def train(args: argparse.Namespace) -> TrainResult:
    """Run the asked stage (resuming when asked) and export; returns the files and losses."""
    accelerator = accelerator_for(args, args.out)
    set_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    components = load_base(args.base, args.seed, args.init_unet, args.vae_factor).to(accelerator.device)
    categories = tuple(c for c in args.garments.split(",") if c)
    dataset = build_dataset(args.data, args.size, args.data_root, args.people, args.world_seed, categories,
                            other_view=args.cross_view > 0)
    groups = dataset.groups
    if args.stage == "base":
        trained = components.unet.requires_grad_(True).train()
        config = None
        perceptual = None
    else:
        components.unet.requires_grad_(False).eval()
        config = dressing_config(args)
        trained = build_trainables(config, components, args.garments_net == "full").to(accelerator.device)
        weights = LossWeights(igl=args.igl_weight, gtl=args.gtl_weight, eta=args.eta, strength=args.train_strength)
        perceptual = build_perceptual_loss(args.perceptual_weights) if args.gtl_weight > 0 else None
        if perceptual is not None:
            perceptual = perceptual.to(accelerator.device)
    optimizer = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad], lr=args.lr)
    prepared, optimizer = accelerator.prepare(trained, optimizer)

    def step_losses(step: int):
        batch = batch_for_step(dataset, groups, step, args.batch_size, args.seed, tile=args.reference == "tiled",
                               process=accelerator.process_index, processes=accelerator.num_processes).to(accelerator.device)
        generator = step_generator(args.seed, step)
        captions = _captions(args, batch.captions)
        if args.stage == "base":
            cross_view = cross_view_step(args.seed, step, args.cross_view, args.cross_view_self)
            unet = accelerator.unwrap_model(prepared) if cross_view else prepared
            losses = base_losses(components, unet, batch, generator, captions, cross_view)
            return losses, losses["ldm"]
        losses = dressing_losses(components, accelerator.unwrap_model(prepared), config, batch, generator,
                                 weights, captions, perceptual)
        return losses, losses["total"]

    validate = validation_for(components, dataset, args.validation_samples, config,
                              None if config is None else accelerator.unwrap_model(prepared), args.seed)
    history = run_steps(accelerator, prepared, optimizer, out, args.stage, LoopSettings.from_args(args), step_losses,
                        average=args.stage == "dressing" or args.cross_view > 0, validate=validate)
    module = accelerator.unwrap_model(prepared)
    outputs = export(accelerator, args, components, config, module)
    return TrainResult(outputs, history, {"trained": module})


def export(accelerator: Accelerator, args: argparse.Namespace, components: BaseComponents,
           config: DressingConfig | None, module: torch.nn.Module) -> list[Path]:
    """Stage 0: ``base_unet.safetensors`` (diffusers UNet state dict). Dressing: the Atelier weight
    file, plus GarmentsNet's UNet (diffusers format, for the core UNETLoader) in full mode."""
    out = Path(args.out)
    paths: list[Path] = []
    if accelerator.is_main_process:
        if config is None:
            paths.append(out / BASE_UNET_FILE)
            save_diffusers_unet(module, paths[-1], "base")
        else:
            paths.append(out / WEIGHT_FILE)
            save_weight_file(str(paths[-1]), ANYDRESSING, components.base_model, config.to_dict(),
                             {"garment_lora": module.garment_lora, "projections": module.projections})
            if module.garments_unet is not None:
                paths.append(out / GARMENTS_UNET_FILE)
                save_diffusers_unet(module.garments_unet, paths[-1], "garmentsnet")
    accelerator.wait_for_everyone()
    return paths


def run(args: argparse.Namespace) -> None:
    """Train with parsed options and print the written files."""
    start_cli(args)
    for path in train(args).outputs:
        print(path)


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, train, print the written files; a user error is one line."""
    run_cli(parse_args, run, argv)
