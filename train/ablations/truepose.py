"""``python -m atelier.train.ablations.truepose``: TruePose's Table 2 on the toy world.

Variants (``python -m atelier.train.truepose --variant``), all trained from the same base UNet:

- ``full``: the paper's "Ours", HPFA + CAA + pose encoder;
- ``no-hpfa`` (B4): the fusion of eq. 7–8 without the parsing reweighting (M' ≡ 1), CAA kept;
- ``no-caa`` (B3): HPFA without CAA sites;
- ``concat`` (B2, "w/. Dual-UNet"): SourceNet's bank appended to the TargetNet's self-attention K/V.

B1 (CLIP features through an MLP) has no trainer variant and is not run.

Every variant × seed trains (resuming) with the paper's condition dropout η and is evaluated as the
paper samples: DDIM with classifier-free guidance ω (``--guidance``, paper 3.5), the unconditional
chunk reading no condition (``train.truepose.evaluate``), on held-out toy pose pairs with the same
noise for every variant. The table is mean ± sd over seeds of SSIM and PSNR over the whole picture
and over the target's person region, the garment colour error and fidelity, and the sampling-free
ε-MSE with and without C. The paper's LPIPS and FID need pretrained networks and are not computed.
Runs already evaluated with the same settings are reused, so the command can be stopped and re-run,
or run once per seed in parallel processes and then once more to print the joined table.

Without ``--init-unet`` on the toy base (``--base tiny``), the base stage is trained first into
``OUT/base`` (``--base-steps``) and shared by every variant. ``--base toy32`` is refused: its pixel
VAE is ×4 and TruePose's pose encoder assumes SD's ×8 latents.

Example (tiny, CPU, one thread)::

    python -m atelier.train.ablations.truepose --size 96x64 --base-steps 1500 --steps 1200 --threads 1 \\
        --out out/ablations/truepose
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from ...models.errors import AtelierError
from ...models.truepose.config import PAPER_GUIDANCE
from ..anydressing.components import load_base
from ..igr.components import FROZEN_SEED, load_image_encoder
from ..loop import start_cli
from ..substrate import is_substrate
from ..truepose.cli import BASE_UNET_FILE, train
from ..truepose.cli import parse_args as parse_training_args
from ..truepose.data import (
    DEFAULT_HIDDEN_PART_FRACTION,
    PRESETS,
    ToyPosePairs,
    parse_size,
)
from ..truepose.evaluate import HELD_OUT_START, evaluate, load_trained
from ..truepose.steps import uses_caa
from .runs import (
    AblationOptionError,
    chosen,
    gather,
    read_result,
    report,
    seed_list,
    write_result,
)
from .stats import Claim

logger = logging.getLogger("atelier.train.ablations")

VARIANTS = ("full", "no-hpfa", "no-caa", "concat")
TOY_SIZE = (64, 48)
BASE_FOLDER = "base"

COLUMNS = (
    ("ssim", "SSIM ↑"), ("psnr", "PSNR ↑"), ("ssim_person", "SSIM person ↑"), ("psnr_person", "PSNR person ↑"),
    ("color_error", "colour ΔE ↓"), ("color_fidelity", "colour fid. ↑"),
    ("eps_mse", "ε-MSE ↓"), ("eps_mse_no_condition", "ε-MSE no C"),
)

CLAIMS: tuple[Claim, ...] = (  # Table 2's rows
    ("Ours beats B4 w/o HPFA (SSIM ↑)", "full", "no-hpfa", "ssim", True),
    ("Ours beats B4 w/o HPFA (colour ΔE ↓)", "full", "no-hpfa", "color_error", False),
    ("Ours beats B3 w/o CAA (SSIM ↑)", "full", "no-caa", "ssim", True),
    ("Ours beats B3 w/o CAA (colour ΔE ↓)", "full", "no-caa", "color_error", False),
    ("Ours beats B2 Dual-UNet concat (SSIM ↑)", "full", "concat", "ssim", True),
    ("Ours beats B2 Dual-UNet concat (colour ΔE ↓)", "full", "concat", "color_error", False),
    ("B3 w/o CAA beats B2 Dual-UNet concat (SSIM ↑)", "no-caa", "concat", "ssim", True),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m atelier.train.ablations.truepose", description=__doc__.splitlines()[0])
    p.add_argument("--base", default="tiny", help="'tiny' (the toy substrate TruePose supports) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="the shared base UNet (base_unet.safetensors of --stage base); "
                   "without it the tiny base is trained into OUT/base")
    p.add_argument("--base-steps", type=int, default=1500, help="base-stage steps when --init-unet is not given")
    p.add_argument("--base-lr", type=float, default=1e-3, help="base-stage AdamW learning rate")
    p.add_argument("--out", required=True, help="folder of the runs and table.md")
    p.add_argument("--seeds", default="0,1,2", help="training seeds (at least 3 for a verdict you can trust)")
    p.add_argument("--steps", type=int, default=1200, help="truepose-stage steps per variant and seed")
    p.add_argument("--batch-size", type=int, default=4, help="pairs per step")
    p.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate (paper 1e-5 on SD1.5; toy runs need more)")
    p.add_argument("--unet", choices=("full", "lora"), default="full", help="the shared UNet update (paper: full)")
    p.add_argument("--size", type=parse_size, default=None,
                   help=f"HxW, multiples of 8 (default: {TOY_SIZE[0]}x{TOY_SIZE[1]} on tiny, 256x176 on SD1.5)")
    p.add_argument("--people", type=int, default=2000, help="toy-world training pose pairs")
    p.add_argument("--hidden-part-fraction", type=float, default=DEFAULT_HIDDEN_PART_FRACTION,
                   help="probability that a target hides body parts, in training and evaluation")
    p.add_argument("--count", type=int, default=32, help="held-out pose pairs evaluated")
    p.add_argument("--guidance", type=float, default=PAPER_GUIDANCE, help="CFG scale ω at sampling (paper 3.5)")
    p.add_argument("--ddim-steps", type=int, default=25, help="DDIM steps (paper 20–35)")
    p.add_argument("--variants", default=None, help=f"comma-separated subset of {', '.join(VARIANTS)}")
    p.add_argument("--table-only", action="store_true", help="train and evaluate nothing; print the table of what finished")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    args = p.parse_args(argv)
    check_args(args)
    if args.size is None:
        args.size = TOY_SIZE if is_substrate(args.base) else PRESETS["256x176"]
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks; each message names the flag."""
    args.seed_list = seed_list(args.seeds)
    if args.steps < 1 or args.base_steps < 1 or args.count < 2:
        raise AblationOptionError("--steps and --base-steps must be >= 1 and --count >= 2")
    if not 0.0 <= args.hidden_part_fraction <= 1.0:
        raise AblationOptionError(f"--hidden-part-fraction must lie in [0, 1], got {args.hidden_part_fraction}")
    if is_substrate(args.base) and args.base != "tiny":
        raise AblationOptionError(f"--base {args.base} has a ×4 pixel VAE; TruePose's pose encoder needs ×8 latents: "
                                  "use --base tiny or a diffusers SD1.5 folder")


def chosen_variants(args: argparse.Namespace) -> list[str]:
    """The variants to run (all, or those ``--variants`` names)."""
    return chosen(args.variants, VARIANTS)


def _size_flag(args: argparse.Namespace) -> str:
    return f"{args.size[0]}x{args.size[1]}"


def _shared_flags(args: argparse.Namespace) -> list[str]:
    return ["--base", args.base, "--data", "toyworld", "--size", _size_flag(args), "--people", str(args.people),
            "--hidden-part-fraction", str(args.hidden_part_fraction), "--batch-size", str(args.batch_size)]


def base_unet(args: argparse.Namespace) -> str | None:
    """The shared base UNet: ``--init-unet``, none for an SD1.5 folder (it already draws people), or
    the tiny base trained (once, resuming) into ``OUT/base``."""
    if args.init_unet or not is_substrate(args.base):
        return args.init_unet
    folder = Path(args.out) / BASE_FOLDER
    settings = {"base_steps": args.base_steps, "base_lr": args.base_lr, "size": list(args.size), "people": args.people,
                "hidden_part_fraction": args.hidden_part_fraction, "batch_size": args.batch_size}
    if read_result(folder, settings) is None:
        if (folder / BASE_UNET_FILE).is_file():
            raise AblationOptionError(
                f"{folder} holds a base trained with other settings; pass another --out, the same "
                "--base-steps/--base-lr/--size/--people/--hidden-part-fraction/--batch-size, or --init-unet")
        if args.table_only:
            return str(folder / BASE_UNET_FILE)
        logger.info("base: training %d steps in %s", args.base_steps, folder)
        train(parse_training_args(["--stage", "base", *_shared_flags(args), "--steps", str(args.base_steps),
                                   "--lr", str(args.base_lr), "--seed", "0", "--checkpoint-every", "500",
                                   "--out", str(folder), "--resume"]))
        write_result(folder, settings, {"file": BASE_UNET_FILE})
    return str(folder / BASE_UNET_FILE)


def training_argv(args: argparse.Namespace, variant: str, seed: int, folder: Path, init_unet: str | None) -> list[str]:
    """The TruePose trainer's command line of one variant and seed (the paper's condition dropout)."""
    argv = ["--stage", "truepose", "--variant", variant, *_shared_flags(args), "--unet", args.unet,
            "--steps", str(args.steps), "--lr", str(args.lr), "--seed", str(seed), "--checkpoint-every", "200",
            "--log-every", "50", "--out", str(folder), "--resume"]
    if init_unet:
        argv += ["--init-unet", init_unet]
    return argv


def evaluate_run(args: argparse.Namespace, folder: Path, init_unet: str | None, seed: int) -> dict:
    """Load a finished run on a fresh base (its UNet update applied) and score it on the held-out pairs."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    components = load_base(args.base, FROZEN_SEED, init_unet)
    trained = load_trained(components, str(folder))
    components.to(device)
    trained.trainables.to(device)
    encoder = load_image_encoder("tiny").to(device) if uses_caa(trained.variant) else None
    dataset = ToyPosePairs(args.size, HELD_OUT_START, args.count, 0, args.hidden_part_fraction)
    result = evaluate(components, trained, dataset, args.count, encoder, args.guidance, args.ddim_steps, seed)
    return {key: value for key, value in result.items() if isinstance(value, float)}


def run_all(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Train and evaluate what is missing; per variant, metric -> values over the seeds that finished."""
    init_unet = base_unet(args)
    settings = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "unet": args.unet,
                "size": list(args.size), "people": args.people, "hidden_part_fraction": args.hidden_part_fraction,
                "count": args.count, "base": args.base, "init_unet": init_unet, "guidance": args.guidance,
                "ddim_steps": args.ddim_steps}

    def run(variant: str, seed: int, folder: Path) -> dict:
        logger.info("%s, seed %d: training %d steps in %s", variant, seed, args.steps, folder)
        train(parse_training_args(training_argv(args, variant, seed, folder, init_unet)))
        # the evaluation noise is fixed (seed 0) so that every variant and seed meets the same noise
        return evaluate_run(args, folder, init_unet, 0)

    return gather(Path(args.out), chosen_variants(args), args.seed_list, settings, None if args.table_only else run)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on a user error; prints (and writes OUT/table.md) the table."""
    try:
        args = parse_args(argv)
        chosen_variants(args)
        start_cli(args)
        with torch.inference_mode(False):
            rows = run_all(args)
    except AtelierError as error:
        sys.exit(f"error: {error}")
    print(report(Path(args.out), rows, COLUMNS, CLAIMS))


if __name__ == "__main__":
    main()
