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

from ...models.anydressing.config import DEFAULT_SLOTS, PAPER_ETA
from ...models.sites import SITE_GROUPS
from ..command_line import OptionError, add_loop_options, make_parser, require_at_least
from ..substrate import vae_factor_for

DATA_SOURCES = ("toyworld", "dresscode")


class TrainingOptionError(OptionError):
    """A command-line option is out of range or does not fit the others; the message names the flag."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; cross-field checks raise TrainingOptionError naming the flag."""
    p = make_parser("python -m atelier.train.anydressing", __doc__)
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
    require_at_least((("--steps", args.steps, 0), ("--batch-size", args.batch_size, 1)), TrainingOptionError)
    factor = vae_factor_for(args.base, args.vae_factor)
    if args.size % factor:
        raise TrainingOptionError(f"--size {args.size} must be a multiple of the VAE factor {factor} (--vae-factor)")
    if args.igl_weight < 0 or args.gtl_weight < 0:
        raise TrainingOptionError("--igl-weight and --gtl-weight must be >= 0")
    for flag, value in (("--cross-view", args.cross_view), ("--cross-view-self", args.cross_view_self)):
        if not 0.0 <= value <= 1.0:
            raise TrainingOptionError(f"{flag} must lie in [0, 1], got {value}")
    if args.cross_view > 0 and (args.stage != "base" or args.data != "toyworld"):
        raise TrainingOptionError("--cross-view needs --stage base and --data toyworld")
    if args.data == "dresscode" and args.data_root is None:
        raise TrainingOptionError("--data dresscode needs --data-root")
