"""``python -m atelier.train.igr``: IGR garment restoration (try-off) training: GarmNet, the
IP-Adapter and the denoiser update (peft LoRA or full), with condition drop, coarse-to-fine stages,
checkpoints with exact resume, and the weight files.

Stages:

- ``base`` (toy substrates only, optional): the whole toy denoiser learns flat garments from their
  category prompts (text dropped with ``--condition-drop``), so the toy stand-in for SD1.5 already
  draws products, as SD1.5 does; from ``--init-unet`` (e.g. a gated toy32 base that draws people)
  it is a garment prior on that base; writes ``base_unet.safetensors`` for ``--init-unet``.
- ``coarse``: every pair. ``fine``: the high-quality pairs (``--filter-list`` or the toy world's
  rule, quality.py), starting from a coarse run's exported files (``--resume-from``).

Example (toy world, CPU minutes)::

    python -m atelier.train.igr --stage base --person-size 64 --steps 600 --out out/igr-base
    python -m atelier.train.igr --stage coarse --person-size 64 --init-unet out/igr-base/base_unet.safetensors \\
        --steps 400 --out out/igr-coarse
    python -m atelier.train.igr --stage fine --person-size 64 --init-unet out/igr-base/base_unet.safetensors \\
        --resume-from out/igr-coarse --steps 200 --out out/igr-fine
"""

from __future__ import annotations

import argparse

from ..command_line import OptionError, add_loop_options, make_parser, require_at_least
from ..substrate import is_substrate, vae_factor_for

STAGES = ("base", "coarse", "fine")
DATA_SOURCES = ("toyworld", "vitonhd", "dresscode")
MASK_KINDS = ("agnostic", "garment")
PATHS = ("both", "ip", "garmnet")


class TrainingOptionError(OptionError):
    """A command-line option is out of range or does not fit the others; the message names the flag."""


def parse_size(text: str) -> tuple[int, int]:
    """"64" -> (64, 64); "96x64" -> (96, 64) as (height, width)."""
    parts = text.lower().split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must be N or HxW (pixels)") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be N or HxW with positive sides")
    return (values[0], values[-1])


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = make_parser("python -m atelier.train.igr", __doc__)
    p.add_argument("--stage", choices=STAGES, default="coarse", help="base (a toy denoiser learns flat garments), coarse, fine")
    p.add_argument("--data", choices=DATA_SOURCES, default="toyworld", help="training pairs")
    p.add_argument("--data-root", default=None, help="VITON-HD or DressCode folder")
    p.add_argument("--split", default="train", help="split of a real layout")
    p.add_argument("--filter-list", default=None, help="stage-2 list: one kept person-image path or sample id per line")
    p.add_argument("--people", type=int, default=1000, help="toy-world people 0..N-1 to train on")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--person-size", type=parse_size, default=(64, 64), help="person image N or HxW (SD1.5: 1024x768)")
    p.add_argument("--cloth-size", type=parse_size, default=None, help="target garment N or HxW (default: person size)")
    p.add_argument("--garments", default="upper,lower,dress", help="garment categories to restore")
    p.add_argument("--mask", choices=MASK_KINDS, default="agnostic", help="toy world: m = agnostic mask or worn pixels")
    p.add_argument("--base", default="tiny", help="'tiny' (tiny SD1.5-layout UNet + pixel VAE) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="diffusers-format UNet weights to start from (--stage base output)")
    p.add_argument("--vae-factor", type=int, default=None, help="toy --base: the pixel VAE's down-sampling factor "
                   "(default: the substrate's, tiny 8, toy32 4)")
    p.add_argument("--image-encoder", default="tiny", help="'tiny' (seeded CLIP vision model) or a transformers folder")
    p.add_argument("--init-ip-adapter", default=None, help="a standard SD1.5 IP-Adapter file (.bin / .safetensors) to start from")
    p.add_argument("--paths", choices=PATHS, default="both", help="garment paths: both, ip (the paper's w/o GarmNet), garmnet")
    p.add_argument("--denoiser", choices=("lora", "full"), default="lora", help="the denoiser update")
    p.add_argument("--denoiser-rank", type=int, default=8, help="denoiser LoRA rank")
    p.add_argument("--denoiser-alpha", type=float, default=8.0, help="denoiser LoRA alpha")
    p.add_argument("--garmnet-rank", type=int, default=16, help="GarmNet's attn1 LoRA rank")
    p.add_argument("--garmnet-alpha", type=float, default=16.0, help="GarmNet's attn1 LoRA alpha")
    p.add_argument("--ip-tokens", type=int, default=4, help="IP-Adapter image tokens N")
    p.add_argument("--condition-drop", type=float, default=0.1,
                   help="probability that a batch drops garment features and text together (CFG)")
    p.add_argument("--resume-from", default=None, help="--stage fine: the coarse run's output folder")
    add_loop_options(p, lr=1e-4, lr_help="AdamW learning rate (paper: 1e-5 at batch 32 on SD1.5)",
                     batch_help="pairs per step")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; cross-field checks raise TrainingOptionError naming the flag."""
    args = build_parser().parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks."""
    require_at_least((("--steps", args.steps, 0), ("--batch-size", args.batch_size, 1),
                      ("--denoiser-rank", args.denoiser_rank, 1), ("--garmnet-rank", args.garmnet_rank, 1),
                      ("--ip-tokens", args.ip_tokens, 1)), TrainingOptionError)
    if not 0.0 <= args.condition_drop <= 1.0:
        raise TrainingOptionError(f"--condition-drop must lie in [0, 1], got {args.condition_drop}")
    factor = vae_factor_for(args.base, args.vae_factor)
    for flag, size in (("--person-size", args.person_size), ("--cloth-size", args.cloth_size)):
        if size is not None and (size[0] % factor or size[1] % factor):
            raise TrainingOptionError(f"{flag} {size[0]}x{size[1]} must be a multiple of the VAE factor {factor} (--vae-factor)")
    if args.data != "toyworld" and args.data_root is None:
        raise TrainingOptionError(f"--data {args.data} needs --data-root")
    if args.stage == "fine" and args.resume_from is None:
        raise TrainingOptionError("--stage fine needs --resume-from <the coarse run's output folder>")
    if args.stage == "fine" and args.data != "toyworld" and args.filter_list is None:
        raise TrainingOptionError(f"--stage fine on --data {args.data} needs --filter-list FILE")
    if args.stage == "base" and not is_substrate(args.base):
        raise TrainingOptionError("--stage base trains a toy denoiser only (--base tiny or toy32); a real SD1.5 folder "
                                  "already draws garments")
    if args.init_ip_adapter is not None and args.paths == "garmnet":
        raise TrainingOptionError("--init-ip-adapter needs the IP path (--paths both or ip)")
