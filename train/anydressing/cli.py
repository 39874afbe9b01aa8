"""``python -m atelier.train.anydressing``: stage 0 (a tiny denoiser that draws toy people) or the
dressing stage (GFE LoRA + Dressing-Attention W'k, W'v against the frozen denoiser), checkpoints,
exact resume, and the Atelier weight file.

Example (toy world, CPU minutes)::

    python -m atelier.train.anydressing --stage base --data toyworld --size 128 --steps 400 --out out/ad
    python -m atelier.train.anydressing --data toyworld --size 128 --init-unet out/ad/base_unet.safetensors \\
        --garments upper,lower --steps 300 --out out/ad
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from ...models.anydressing.config import DEFAULT_SLOTS, PAPER_ETA, DressingConfig
from ...models.anydressing.spec import ANYDRESSING
from ...models.outfitgan.perceptual import build_perceptual_loss
from ...models.sites import SITE_GROUPS
from ...models.weights import save_weight_file
from ..loop import (
    LoopSettings,
    add_loop_options,
    run_steps,
    save_diffusers_unet,
    start_cli,
    step_generator,
)
from ..substrate import vae_factor_for
from .components import BaseComponents, load_base
from .data import DATA_SOURCES, TILED_CATEGORY, batch_for_step, build_dataset
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


class TrainingOptionError(ValueError):
    """A command-line option is out of range or does not fit the others; the message names the flag."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; cross-field checks raise TrainingOptionError naming the flag."""
    p = argparse.ArgumentParser(prog="python -m atelier.train.anydressing", description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=("base", "dressing"), default="dressing",
                   help="base: train the whole tiny denoiser on people (stage 0); dressing: AnyDressing")
    p.add_argument("--data", choices=DATA_SOURCES, default="toyworld", help="training data")
    p.add_argument("--data-root", default=None, help="DressCode folder (upper_body/, lower_body/, dresses/)")
    p.add_argument("--people", type=int, default=1000, help="toy-world people 0..N-1 to train on")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (SD1.5: 512)")
    p.add_argument("--garments", default="upper,lower,dress",
                   help="toy world: garment categories a sample uses (those it wears among them, in this order)")
    p.add_argument("--prompt", choices=("caption", "empty"), default="caption",
                   help="text prompt: the sample's caption, or the empty prompt for every sample")
    p.add_argument("--cross-view", type=float, default=0.0,
                   help="--stage base, toy world: fraction of steps whose denoiser also reads the same people in "
                        "another pose through its self-attention (see train/substrate.py)")
    p.add_argument("--cross-view-self", type=float, default=0.0,
                   help="fraction of the --cross-view steps whose reference is the picture itself, shifted by a "
                        "random offset, instead of the other pose")
    p.add_argument("--base", default="tiny",
                   help="toy substrate 'tiny' or 'toy32' (tiny SD1.5-layout UNet + pixel VAE) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="diffusers-format UNet weights to start from (stage 0's base_unet.safetensors)")
    p.add_argument("--vae-factor", type=int, default=None, help="toy --base: the pixel VAE's down-sampling factor "
                   "(default: the substrate's, tiny 8, toy32 4)")
    p.add_argument("--garments-net", choices=("lora", "full"), default="lora",
                   help="lora: GarmentsNet = frozen base UNet + GFE LoRA; full: also train a copy of the UNet")
    p.add_argument("--reference", choices=("per-garment", "tiled"), default="per-garment",
                   help="per-garment: one GarmentsNet row per garment, slot by category (GFE); tiled: the "
                        "paper's 'Base' ablation, all garments side by side in one reference image, one slot")
    p.add_argument("--slots", default=",".join(DEFAULT_SLOTS), help="garment categories with a LoRA slot")
    p.add_argument("--rank", type=int, default=8, help="GFE LoRA rank r")
    p.add_argument("--alpha", type=float, default=8.0, help="GFE LoRA alpha")
    p.add_argument("--sites", choices=tuple(SITE_GROUPS), default="all", help="Dressing-Attention / GFE sites")
    p.add_argument("--igl-weight", type=float, default=0.01, help="λ1 of L_loc (IGL, eq. 9); paper 0.01")
    p.add_argument("--gtl-weight", type=float, default=0.001, help="λ2 of L_texture (GTL, eq. 11); paper 0.001")
    p.add_argument("--eta", type=int, default=PAPER_ETA, help="η: GTL runs on timesteps t <= η; paper 350")
    p.add_argument("--train-strength", type=float, default=1.0, help="λ of Dressing-Attention (eq. 6) while training")
    p.add_argument("--perceptual-weights", default=None, help="VGG-16 weights (torchvision layout) for GTL's perceptual "
                   "term; without it only the high-frequency term runs")
    add_loop_options(p, lr=1e-4, lr_help="AdamW learning rate", batch_help="samples per step")
    args = p.parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks."""
    if args.steps < 0:
        raise TrainingOptionError(f"--steps must be >= 0, got {args.steps}")
    if args.batch_size < 1:
        raise TrainingOptionError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.keep_checkpoints < 1:
        raise TrainingOptionError(f"--keep-checkpoints must be >= 1, got {args.keep_checkpoints}")
    factor = vae_factor_for(args.base, args.vae_factor)
    if args.size % factor:
        raise TrainingOptionError(f"--size {args.size} must be a multiple of the VAE factor {factor} (--vae-factor)")
    if args.threads is not None and args.threads < 1:
        raise TrainingOptionError(f"--threads must be >= 1, got {args.threads}")
    if args.igl_weight < 0 or args.gtl_weight < 0:
        raise TrainingOptionError("--igl-weight and --gtl-weight must be >= 0")
    for flag, value in (("--cross-view", args.cross_view), ("--cross-view-self", args.cross_view_self)):
        if not 0.0 <= value <= 1.0:
            raise TrainingOptionError(f"{flag} must lie in [0, 1], got {value}")
    if args.cross_view > 0 and (args.stage != "base" or args.data != "toyworld"):
        raise TrainingOptionError("--cross-view needs --stage base and --data toyworld")
    if args.data == "dresscode" and args.data_root is None:
        raise TrainingOptionError("--data dresscode needs --data-root")


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
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu)
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
                               process=accelerator.process_index).to(accelerator.device)
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

    history = run_steps(accelerator, prepared, optimizer, out, args.stage, LoopSettings.from_args(args), step_losses,
                        average=args.stage == "dressing" or args.cross_view > 0)
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, train, print the written files."""
    args = parse_args(argv)
    start_cli(args)
    for path in train(args).outputs:
        print(path)
