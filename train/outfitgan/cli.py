"""``python -m atelier.train.outfitgan``: CCM pre-training, then GAN training, then the Atelier weight file.

Example (toy world, CPU minutes)::

    python -m atelier.train.outfitgan --data toyworld --size 64 --ccm-steps 300 --steps 600 \\
        --out out/outfitgan.safetensors
"""

from __future__ import annotations

import argparse
import logging
import time
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
from ..checkpoints import resume_latest, save_checkpoint
from .data import DATA_SOURCES, batch_for_step, outfit_dataset
from .steps import OutfitGANModels, build_models, ccm_training_step, gan_training_step

logger = logging.getLogger("atelier.train.outfitgan")

CCM_PHASE_SEED = 1
GAN_PHASE_SEED = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; cross-field checks raise ValueError naming the flag."""
    p = argparse.ArgumentParser(prog="python -m atelier.train.outfitgan", description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=DATA_SOURCES, default="toyworld", help="training data source")
    p.add_argument("--data-root", default=None, help="polyvore_outfits folder (polyvore) or Fashion-MNIST IDX folder")
    p.add_argument("--outfits", type=int, default=2000, help="toy-world / Fashion-MNIST outfits to draw (indices 0..N-1)")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world / Fashion-MNIST outfit seed")
    p.add_argument("--size", type=int, default=256, help="item image side (paper: 256)")
    p.add_argument("--base-channels", type=int, default=32, help="generator width")
    p.add_argument("--downsamples", type=int, default=3, help="encoder downsamplings (SAM grid = size / 2**d)")
    p.add_argument("--residual-blocks", type=int, default=2, help="residual blocks after the SAM")
    p.add_argument("--no-sam", action="store_true", help="ablation: concatenate features instead of the SAM warp")
    p.add_argument("--sam-temperature", type=float, default=0.01, help="tau of the SAM softmax")
    p.add_argument("--shared-generator", action="store_true", help="one category-conditioned generator instead of N-1")
    p.add_argument("--source-slot", default="upper", help="the given item's category")
    p.add_argument("--ccm-channels", type=int, default=16, help="CCM item-encoder width")
    p.add_argument("--ccm-image-size", type=int, default=64, help="CCM reads items at this side")
    p.add_argument("--disc-channels", type=int, default=32, help="discriminator width")
    p.add_argument("--disc-layers", type=int, default=3, help="stride-2 layers per PatchGAN")
    p.add_argument("--disc-scales", type=int, default=2, help="discriminator scales")
    p.add_argument("--ccm-steps", type=int, default=500, help="CCM pre-training steps")
    p.add_argument("--ccm-from", default=None, help="start the CCM from the CCM of this OutfitGAN weight file "
                   "(e.g. to reuse one pre-trained CCM across ablations; set --ccm-steps 0 to skip pre-training)")
    p.add_argument("--steps", type=int, default=1000, help="GAN training steps")
    p.add_argument("--batch-size", type=int, default=8, help="outfits per step")
    p.add_argument("--lr", type=float, default=2e-4, help="generator and discriminator learning rate (Adam, betas 0.5/0.999)")
    p.add_argument("--ccm-lr", type=float, default=1e-3, help="CCM pre-training learning rate")
    p.add_argument("--ccm-batch-size", type=int, default=None, help="outfits per CCM pre-training step (default: --batch-size)")
    p.add_argument("--lambda-adv", type=float, default=1.0, help="weight of the LSGAN generator loss")
    p.add_argument("--lambda-l1", type=float, default=10.0, help="weight of the L1 loss")
    p.add_argument("--lambda-perceptual", type=float, default=10.0, help="weight of the perceptual loss")
    p.add_argument("--lambda-ccm", type=float, default=1.0, help="weight of the CCM compatibility loss")
    p.add_argument("--perceptual-weights", default=None, help="VGG-16 weights file (torchvision layout); without it the term is off")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (default: <out>.checkpoints)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (0: only at the end)")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--log-every", type=int, default=50, help="steps between loss logs")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    p.add_argument("--out", required=True, help="the Atelier weight file to write (.safetensors)")
    args = p.parse_args(argv)
    if args.steps < 0 or args.ccm_steps < 0:
        raise ValueError("--steps and --ccm-steps must be >= 0")
    if args.batch_size < 1 or (args.ccm_batch_size is not None and args.ccm_batch_size < 1):
        raise ValueError("--batch-size and --ccm-batch-size must be >= 1")
    if args.keep_checkpoints < 1:
        raise ValueError("--keep-checkpoints must be >= 1")
    if args.data == "polyvore" and args.data_root is None:
        raise ValueError("--data polyvore needs --data-root")
    return args


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
        models.ccm.load_state_dict(load_weight_file(args.ccm_from, expected_system=OUTFITGAN.name).modules["ccm"].state_dict())
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


def train(args: argparse.Namespace) -> Path:
    """Run both phases (resuming when asked) and export; returns the weight file's path."""
    accelerator = Accelerator(cpu=args.cpu)
    models, optimizers = prepare(args, accelerator)
    checkpoint_root = Path(args.checkpoint_dir or f"{args.out}.checkpoints")
    step = resume_latest(accelerator, checkpoint_root) if args.resume else 0
    total = args.ccm_steps + args.steps
    size = models.config.image_size
    ccm_data = outfit_dataset(args.data, size, root=args.data_root, count=args.outfits, seed=args.world_seed, for_ccm=True) if args.ccm_steps else None
    gan_data = outfit_dataset(args.data, size, root=args.data_root, count=args.outfits, seed=args.world_seed) if args.steps else None
    weights = loss_weights(args)
    started, first = time.perf_counter(), step
    while step < total:
        in_ccm = step < args.ccm_steps
        if in_ccm:
            batch = batch_for_step(ccm_data, step, args.ccm_batch_size or args.batch_size, args.seed + CCM_PHASE_SEED, accelerator.process_index)
            losses = {"ccm": ccm_training_step(models.ccm, _to_device(batch, accelerator.device), optimizers["ccm"], accelerator)}
        else:
            models.ccm.requires_grad_(False)
            batch = batch_for_step(gan_data, step - args.ccm_steps, args.batch_size, args.seed + GAN_PHASE_SEED, accelerator.process_index)
            losses = gan_training_step(models, _to_device(batch, accelerator.device), optimizers, weights, accelerator)
        step += 1
        if step % args.log_every == 0 or step == total:
            rate = (step - first) / max(time.perf_counter() - started, 1e-9)
            logger.info("step %d/%d (%s) %s  %.2f steps/s", step, total, "ccm" if in_ccm else "gan",
                        " ".join(f"{k}={v:.4f}" for k, v in losses.items()), rate)
        if step == total or (args.checkpoint_every and step % args.checkpoint_every == 0):
            save_checkpoint(accelerator, checkpoint_root, step, args.keep_checkpoints)
    models.ccm.requires_grad_(False)
    export(accelerator, models, args.out)
    return Path(args.out)


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, train, print the weight file's path."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    path = train(parse_args(argv))
    print(path)
