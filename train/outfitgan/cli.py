"""The training half of ``python -m atelier.train.outfitgan``, run once ``options.py`` has parsed the
options (its docstring is the command's ``--help``: what it does, the files it writes, examples)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from ...models.outfitgan.config import OutfitGANConfig
from ...models.outfitgan.discriminator import DiscriminatorConfig
from ...models.outfitgan.losses import LossWeights
from ...models.outfitgan.perceptual import build_perceptual_loss
from ...models.outfitgan.spec import OUTFITGAN, outfitgan_base
from ...models.weights import load_weight_file, save_weight_file
from ..checkpoints import TrainingState, resume_latest, save_checkpoint
from ..command_line import run_cli, start_cli
from ..controls import ControlSettings
from ..loop import LoopSettings, Optimisation, base_files_of, log_losses, start_trackers
from ..optimisation import accelerator_for
from ..progress import Progress
from ..validation_grid import validate_and_write
from .data import batch_for_step, outfit_dataset
from .options import CHECKPOINT_FOLDER, TrainingOptionError, parse_args  # noqa: F401  (light: parsed before torch loads)
from .steps import OutfitGANModels, build_models, ccm_training_step, gan_training_step
from .validation import validation_for

logger = logging.getLogger("atelier.train.outfitgan")

CCM_PHASE_SEED = 1
GAN_PHASE_SEED = 2


def model_config(args: argparse.Namespace) -> OutfitGANConfig:
    """The OutfitGANConfig the flags describe."""
    return OutfitGANConfig(
        image_size=args.size, source_slot=args.source_slot, base_channels=args.base_channels,
        downsamples=args.downsamples, residual_blocks=args.residual_blocks, use_sam=not args.no_sam,
        sam_temperature=args.sam_temperature, shared_generator=args.shared_generator,
        ccm_channels=args.ccm_channels, ccm_image_size=args.ccm_image_size,
    )


def loss_weights(args: argparse.Namespace) -> LossWeights:
    """The λ of each loss term."""
    return LossWeights(adversarial=args.lambda_adv, l1=args.lambda_l1, perceptual=args.lambda_perceptual, ccm=args.lambda_ccm)


def prepare(args: argparse.Namespace, accelerator: Accelerator) -> tuple[OutfitGANModels, dict[str, torch.optim.Optimizer]]:
    """Seeded models and Adam optimizers, passed through ``accelerator.prepare``."""
    set_seed(args.seed)
    models = build_models(
        model_config(args),
        DiscriminatorConfig(channels=args.disc_channels, layers=args.disc_layers, scales=args.disc_scales),
        build_perceptual_loss(args.perceptual_weights),
    )
    if args.ccm_from is not None:
        models.ccm.load_state_dict(load_weight_file(args.ccm_from, expected_system=OUTFITGAN.name, needed_by="--ccm-from").modules["ccm"].state_dict())
        logger.info("CCM initialised from %s", args.ccm_from)
    optimizers = {
        "generator": torch.optim.Adam(models.generator.parameters(), lr=args.lr, betas=(0.5, 0.999)),
        "discriminator": torch.optim.Adam(models.discriminators.parameters(), lr=args.lr, betas=(0.5, 0.999)),
        "ccm": torch.optim.Adam(models.ccm.parameters(), lr=args.ccm_lr),
    }
    generator, discriminators, ccm, opt_g, opt_d, opt_c = accelerator.prepare(
        models.generator, models.discriminators, models.ccm,
        optimizers["generator"], optimizers["discriminator"], optimizers["ccm"],
    )
    if models.perceptual is not None:
        models.perceptual = models.perceptual.to(accelerator.device)
    models = replace(models, generator=generator, discriminators=discriminators, ccm=ccm)
    return models, {"generator": opt_g, "discriminator": opt_d, "ccm": opt_c}


def export(accelerator: Accelerator, models: OutfitGANModels, path: str) -> None:
    """Write the Atelier weight file (generator + CCM) through ``models.weights`` (main process only)."""
    if accelerator.is_main_process:
        modules = {"generator": accelerator.unwrap_model(models.generator), "ccm": accelerator.unwrap_model(models.ccm)}
        save_weight_file(path, OUTFITGAN, outfitgan_base(models.config), models.config.to_dict(), modules)
    accelerator.wait_for_everyone()


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


def _phase_batches(dataset, step: int, batch_size: int, seed: int, accumulation: int, accelerator) -> list[dict[str, torch.Tensor]]:
    """The micro-batches of phase step ``step`` (one without accumulation: the step's own batch)."""
    draws = [step] if accumulation == 1 else [step * accumulation + k for k in range(accumulation)]
    return [_to_device(batch_for_step(dataset, draw, batch_size, seed, accelerator.process_index,
                                      accelerator.num_processes), accelerator.device) for draw in draws]


def train(args: argparse.Namespace) -> Path:
    """Run both phases (resuming when asked) and export; returns the weight file's path. The modules
    run unwrapped (D is called with its gradients switched off for the generator's loss, which DDP's
    wrapper does not allow), with each optimizer's gradients averaged over processes by hand."""
    accelerator = accelerator_for(args, args.out)
    models, optimizers = prepare(args, accelerator)
    models = replace(models, generator=accelerator.unwrap_model(models.generator),
                     discriminators=accelerator.unwrap_model(models.discriminators), ccm=accelerator.unwrap_model(models.ccm))
    controls = ControlSettings.from_args(args)
    plain = replace(controls, ema_decay=0.0)
    updates = {"ccm": Optimisation.build(optimizers["ccm"], plain, args.ccm_steps, average=True),
               "discriminator": Optimisation.build(optimizers["discriminator"], plain, args.steps, average=True),
               "generator": Optimisation.build(optimizers["generator"], controls, args.steps, average=True)}
    state = TrainingState({"generator": models.generator, "discriminators": models.discriminators, "ccm": models.ccm},
                          optimizers, {name: update.scheduler for name, update in updates.items()},
                          {"ema": updates["generator"].ema} if updates["generator"].ema is not None else {},
                          base_files_of(args))
    checkpoint_root = Path(args.checkpoint_dir or Path(args.out) / CHECKPOINT_FOLDER)
    total = args.ccm_steps + args.steps
    step = resume_latest(accelerator, checkpoint_root, state, total) if args.resume else 0
    size = models.config.image_size
    logger.info("%s data, %d outfits at %d px: %d CCM pre-training steps, then %d GAN steps (batch %d); from step %d",
                args.data, args.outfits, size, args.ccm_steps, args.steps, args.batch_size, step)
    ccm_data = outfit_dataset(args.data, size, root=args.data_root, count=args.outfits, seed=args.world_seed, for_ccm=True) if args.ccm_steps else None
    gan_data = outfit_dataset(args.data, size, root=args.data_root, count=args.outfits, seed=args.world_seed) if args.steps else None
    weights = loss_weights(args)
    validate = validation_for(models.generator, gan_data, controls.validation_samples) if gan_data is not None else None
    tracking = start_trackers(accelerator, LoopSettings.from_args(args), "atelier-outfitgan")
    progress = Progress(step, total, "outfitgan", controls.progress_bar, accelerator.is_main_process)
    log_file = Path(args.out) / "losses-outfitgan.jsonl"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    while step < total:
        in_ccm = step < args.ccm_steps
        if in_ccm:
            batches = _phase_batches(ccm_data, step, args.ccm_batch_size or args.batch_size, args.seed + CCM_PHASE_SEED,
                                     controls.accumulation, accelerator)
            losses = {"ccm": ccm_training_step(models.ccm, batches, updates["ccm"], accelerator)}
        else:
            models.ccm.requires_grad_(False)
            batches = _phase_batches(gan_data, step - args.ccm_steps, args.batch_size, args.seed + GAN_PHASE_SEED,
                                     controls.accumulation, accelerator)
            losses = gan_training_step(models, batches, updates, weights, accelerator)
        step += 1
        logged = step % args.log_every == 0 or step == total
        if logged and accelerator.is_main_process:
            log_losses(step, {"phase": "ccm" if in_ccm else "gan", **losses}, log_file)
        progress.update(step, losses, logged)
        if tracking:
            accelerator.log({f"{'ccm' if in_ccm else 'gan'}/{name}": value for name, value in losses.items()}, step=step)
        gan_step = step - args.ccm_steps
        if (validate is not None and not in_ccm and controls.validate_every
                and (gan_step % controls.validate_every == 0 or step == total)):
            validate_and_write(validate, step, Path(args.out) / "validation-outfitgan", accelerator, updates["generator"].ema)
        if step == total or (args.checkpoint_every and step % args.checkpoint_every == 0):
            save_checkpoint(accelerator, checkpoint_root, step, args.keep_checkpoints, state)
    progress.close()
    if updates["generator"].ema is not None:
        updates["generator"].ema.copy_to_parameters()
    if tracking:
        accelerator.end_training()
    models.ccm.requires_grad_(False)
    path = Path(args.out) / args.weight_name
    path.parent.mkdir(parents=True, exist_ok=True)
    export(accelerator, models, str(path))
    return path


def run(args: argparse.Namespace) -> None:
    """Train with parsed options and print the weight file's path."""
    start_cli(args)
    print(train(args))


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, train, print the weight file's path; a user error is one line."""
    run_cli(parse_args, run, argv)
