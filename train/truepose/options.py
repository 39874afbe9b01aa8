"""``python -m atelier.train.truepose``: TruePose pose-transfer training (the
TruePose paper, §4.4) on accelerate + diffusers + peft: the shared SourceNet/TargetNet UNet update (peft LoRA or full),
the HPFA and CAA projections and the pose encoder, with condition dropout, checkpoints with exact
resume, and the weight files. Design decisions are in ``steps.py``'s docstring.

Stages:
- ``base`` (``--base tiny`` only, optional): the whole tiny UNet learns toy people with the empty
  prompt, so the stand-in for SD1.5 already draws people; writes ``base_unet.safetensors``, the
  shared starting point (``--init-unet``) of every variant.
- ``truepose``: the ``--variant`` (full, no-hpfa, no-caa, concat).

Files written by the ``truepose`` stage:
- ``truepose.safetensors`` (variants full / no-hpfa / no-caa): the "truepose" system file
  (``models.weights.save_weight_file`` with the TRUEPOSE spec: HPFA, CAA, pose encoder), the one the
  ComfyUI nodes load. Its ``atelier.config`` is the TruePoseConfig (``parsing_guidance`` false for
  no-hpfa, ``caa_sites`` empty for no-caa: the nodes then refuse a CAA strength above 0) and the
  extra metadata ``atelier.truepose_variant`` names the variant.
- ``truepose_concat.safetensors`` (variant concat): the pose encoder alone under ``truepose_pose.``,
  with the config, base model and variant as metadata but no ``atelier.system``: the nodes load only
  TRUEPOSE-spec files and refuse it; ``evaluate`` reads it (B2 is a baseline, not a product).
- the UNet update: ``truepose_unet_lora.safetensors`` (kohya keys, the core LoraLoader; apply it to
  the MODEL before the TruePose nodes, since SourceNet = TargetNet) or ``truepose_unet.safetensors``
  (a diffusers UNet state dict, ``--unet full``).

Example (toy world, CPU)::

    python -m atelier.train.truepose --stage base --size 64x48 --steps 600 --lr 1e-3 --out out/tp-base
    python -m atelier.train.truepose --variant full --size 64x48 --init-unet out/tp-base/base_unet.safetensors \\
        --steps 400 --lr 1e-4 --out out/tp-full
"""

from __future__ import annotations

import argparse

from ..command_line import OptionError, add_loop_options, make_parser, require_at_least

STAGES = ("base", "truepose")
VARIANTS = ("full", "no-hpfa", "no-caa", "concat")
DATA_SOURCES = ("toyworld", "deepfashion")
PARSING_LABEL_SET_NAMES = ("lip", "atr")
# The paper's two resolutions (§5.1), (height, width): SD1.5 latents 32×22 and 64×44.
PRESETS = {"256x176": (256, 176), "512x352": (512, 352)}
LATENT_FACTOR = 8  # the pose encoder's stride and SD1.5's VAE factor
# Toy targets that hide body parts, so M selects less than the whole person (in DeepFashion In-shop,
# back views and half-body crops are common targets too).
DEFAULT_HIDDEN_PART_FRACTION = 0.3


class SizeOptionError(argparse.ArgumentTypeError):
    """``--size`` is not HxW with positive multiples of 8."""


def parse_size(text: str) -> tuple[int, int]:
    """"64x48" -> (64, 48) as (height, width); sides must be positive multiples of 8."""
    parts = text.lower().split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise SizeOptionError(f"size {text!r} must be HxW in pixels, e.g. 64x48") from None
    if len(values) != 2 or min(values) < LATENT_FACTOR or any(v % LATENT_FACTOR for v in values):
        raise SizeOptionError(f"size {text!r} must be HxW with both sides positive multiples of {LATENT_FACTOR}")
    return values[0], values[1]


class TrainingOptionError(OptionError):
    """A command-line option is out of range or does not fit the others; the message names the flag."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = make_parser("python -m atelier.train.truepose", __doc__)
    p.add_argument("--stage", choices=STAGES, default="truepose", help="base (tiny UNet learns people) or truepose")
    p.add_argument("--variant", choices=VARIANTS, default="full", help="full, no-hpfa (B4), no-caa (B3), concat (B2)")
    p.add_argument("--data", choices=DATA_SOURCES, default="toyworld", help="training pairs")
    p.add_argument("--data-root", default=None, help="DeepFashion folder (cfld or pidm layout)")
    p.add_argument("--parsing-dir", default=None, help="DeepFashion: folder of <source image stem>.png parsing maps")
    p.add_argument("--parsing-label-set", choices=PARSING_LABEL_SET_NAMES, default="lip", help="palette of --parsing-dir")
    p.add_argument("--split", default="train", help="DeepFashion split")
    p.add_argument("--people", type=int, default=1000, help="toy-world pose pairs 0..N-1 to train on")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--hidden-part-fraction", type=float, default=DEFAULT_HIDDEN_PART_FRACTION,
                   help="toy world: probability that a target hides body parts (back, far arm, waist-up, head-cut)")
    p.add_argument("--preset", choices=tuple(PRESETS), default=None, help="the paper's sizes (default 256x176)")
    p.add_argument("--size", type=parse_size, default=None, help="HxW picture size, multiples of 8 (toy runs)")
    p.add_argument("--base", default="tiny", help="'tiny' (tiny SD1.5-layout UNet + pixel VAE) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="diffusers-format UNet weights to start from (--stage base output)")
    p.add_argument("--image-encoder", default="tiny", help="'tiny' (seeded CLIP vision model) or a transformers folder")
    p.add_argument("--unet", choices=("lora", "full"), default="lora", help="the shared SourceNet/TargetNet update")
    p.add_argument("--unet-rank", type=int, default=8, help="UNet LoRA rank")
    p.add_argument("--unet-alpha", type=float, default=8.0, help="UNet LoRA alpha")
    p.add_argument("--condition-dropout", type=float, default=0.3,
                   help="probability that a batch drops C (source bank, CLIP regions, pose) as a whole (the paper's η)")
    add_loop_options(p, lr=1e-5, lr_help="AdamW learning rate (paper: 1e-5 on SD1.5; toy runs need more)",
                     batch_help="pairs per step")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options, with ``args.size`` resolved from ``--size`` / ``--preset``; cross-field checks raise
    TrainingOptionError naming the flag."""
    args = build_parser().parse_args(argv)
    check_args(args)
    if args.size is None:
        args.size = PRESETS[args.preset or "256x176"]
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks."""
    require_at_least((("--steps", args.steps, 0), ("--batch-size", args.batch_size, 1),
                      ("--unet-rank", args.unet_rank, 1), ("--people", args.people, 1)), TrainingOptionError)
    for flag, value in (("--condition-dropout", args.condition_dropout),
                        ("--hidden-part-fraction", args.hidden_part_fraction)):
        if not 0.0 <= value <= 1.0:
            raise TrainingOptionError(f"{flag} must lie in [0, 1], got {value}")
    if args.size is not None and args.preset is not None:
        raise TrainingOptionError("give --size or --preset, not both")
    if args.data == "deepfashion" and (args.data_root is None or args.parsing_dir is None):
        raise TrainingOptionError("--data deepfashion needs --data-root and --parsing-dir")
    if args.stage == "base" and args.base != "tiny":
        raise TrainingOptionError("--stage base trains the tiny UNet only; a real SD1.5 folder already draws people")
