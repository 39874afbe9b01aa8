"""``python -m atelier.train.outfitgan``: CCM pre-training, then GAN training, then the Atelier weight file.

Example (toy world, CPU minutes)::

    python -m atelier.train.outfitgan --data toyworld --size 64 --ccm-steps 300 --steps 600 --threads 1 --out out

writes out/outfitgan.safetensors (for Load OutfitGAN) and out/checkpoints/.
"""

from __future__ import annotations

import argparse

from ..controls import add_control_options
from ..command_line import (
    OptionError,
    add_checkpoint_options,
    add_out_option,
    add_seed_option,
    add_threads_option,
    make_parser,
)

DATA_SOURCES: tuple[str, ...] = ("toyworld", "polyvore", "fashion-mnist")
WEIGHT_FILE = "outfitgan.safetensors"
CHECKPOINT_FOLDER = "checkpoints"


class TrainingOptionError(OptionError):
    """A command-line option is out of range or does not fit the others; the message names the flag."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; cross-field checks raise TrainingOptionError naming the flag."""
    p = make_parser("python -m atelier.train.outfitgan", __doc__)
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
    add_seed_option(p, "training seed")
    add_threads_option(p)
    p.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (default: OUT/checkpoints)")
    add_checkpoint_options(p)
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    add_out_option(p, "the Atelier weight file (--weight-name) and checkpoints/")
    p.add_argument("--weight-name", default=WEIGHT_FILE, help="file name of the Atelier weight file written into --out")
    add_control_options(p)
    args = p.parse_args(argv)
    if args.steps < 0 or args.ccm_steps < 0:
        raise TrainingOptionError("--steps and --ccm-steps must be >= 0")
    if args.batch_size < 1 or (args.ccm_batch_size is not None and args.ccm_batch_size < 1):
        raise TrainingOptionError("--batch-size and --ccm-batch-size must be >= 1")
    if args.out.endswith(".safetensors"):
        raise TrainingOptionError(f"--out is the output folder (the weight file is OUT/{args.weight_name}, "
                                  f"--weight-name); got the file name {args.out!r}")
    if args.data == "polyvore" and args.data_root is None:
        raise TrainingOptionError("--data polyvore needs --data-root")
    return args
