"""``python -m atelier.train.ablations.anydressing``: AnyDressing's Table 3 on the toy substrate.

Variants, all trained against the same frozen toy base with λ = 1 and no GTL (λ2 = 0):

- ``base-tiled``: the paper's "Base", all garments side by side in one reference image, one slot;
- ``gfe``: one GarmentsNet row per garment with its own LoRA slot (GFE), no IGL;
- ``gfe+igl``: GFE with IGL's L_loc at λ1 (paper 0.01), and the λ1 of ``--igl-sweep``.

Every variant × seed trains (resuming), is evaluated with ``dressing_eval`` and the table is
printed as mean ± sd with a verdict per claim. Runs already evaluated with the same settings are
reused, so the command can be stopped and re-run, or run once per seed in parallel processes
(``--seeds 0``, ``--seeds 1`` …) and then once more to print the joined table.

Example (toy32, about 25 minutes per variant × seed on one CPU thread at the defaults)::

    python -m atelier.train.ablations.anydressing --init-unet out/toy32-self/base_unet.safetensors \\
        --out out/ablations/anydressing
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

import torch

from ..anydressing.cli import WEIGHT_FILE, train
from ..anydressing.cli import parse_args as parse_training_args
from ..anydressing.components import BaseComponents, load_base
from ..anydressing.data import ToyDressing
from ..anydressing.evaluate import HELD_OUT_START, load_dressing
from ..command_line import run_cli
from ..loop import start_cli
from ..substrate import is_substrate, substrate
from .dressing_eval import (
    SWAP_CATEGORIES,
    DressingProtocol,
    evaluate_variant,
    gate_passes,
    gate_report,
    instrument_gate,
)
from .runs import (
    AblationOptionError,
    ablation_parser,
    chosen,
    gather,
    record_gate,
    report,
    seed_list,
    train_once,
)
from .stats import Claim

logger = logging.getLogger("atelier.train.ablations")

# The colour columns' measure: region means as drawn (a median named check patterns' colours).
COLOUR_MEASURE = "mean as drawn"

COLUMNS = (
    ("eps_fall_300", "ε-MSE fall t=300 ↑"), ("eps_fall_500", "ε-MSE fall t=500 ↑"),
    ("color_error", "colour ΔE ↓"), ("leak_garments", "leak other ↓"), ("leak_background", "leak bg ↓"),
    ("swap_in", "swap in ↑"), ("swap_out", "swap out ↓"), ("loc", "loc ↑"), ("loc_chance", "loc chance"),
)


def variants(igl: float, sweep: list[float]) -> dict[str, list[str]]:
    """Variant name -> the dressing trainer's flags that make it."""
    found = {
        "base-tiled": ["--reference", "tiled", "--igl-weight", "0"],
        "gfe": ["--igl-weight", "0"],
        f"gfe+igl λ1={igl:g}": ["--igl-weight", f"{igl:g}"],
    }
    for value in sweep:
        found[f"gfe+igl λ1={value:g}"] = ["--igl-weight", f"{value:g}"]
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    names = ("base-tiled", "gfe", "gfe+igl λ1=<--igl>", "gfe+igl λ1=<each --igl-sweep value>")
    p = ablation_parser("python -m atelier.train.ablations.anydressing", __doc__, names, "folder of the runs and table.md")
    p.add_argument("--base", default="toy32", help="toy substrate (toy32, tiny) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="the trained base (base_unet.safetensors of --stage base)")
    p.add_argument("--steps", type=int, default=400, help="dressing-stage steps per variant and seed")
    p.add_argument("--batch-size", type=int, default=4, help="samples per step")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    p.add_argument("--size", type=int, default=None, help="image side (default: the substrate's; SD1.5: 512)")
    p.add_argument("--people", type=int, default=1000, help="toy-world training people")
    p.add_argument("--igl", type=float, default=0.01, help="λ1 of the gfe+igl variant (paper 0.01)")
    p.add_argument("--igl-sweep", default="1", help="further λ1 values, comma-separated ('' for none)")
    p.add_argument("--count", type=int, default=12, help="held-out people evaluated")
    p.add_argument("--guidance", type=float, default=6.0, help="ω of eq. 16 at sampling (paper 6.0)")
    p.add_argument("--ddim-steps", type=int, default=20, help="DDIM steps over the full schedule")
    args = p.parse_args(argv)
    args.seed_list = seed_list(args.seeds)
    args.sweep = [float(v) for v in args.igl_sweep.split(",") if v]
    if args.steps < 1 or args.count < 2:
        raise AblationOptionError("--steps must be >= 1 and --count >= 2")
    if args.size is None:
        args.size = substrate(args.base).size if is_substrate(args.base) else 512
    return args


def chosen_variants(args: argparse.Namespace) -> dict[str, list[str]]:
    """The variants to run (all, or those ``--variants`` names)."""
    every = variants(args.igl, args.sweep)
    return {name: every[name] for name in chosen(args.variants, tuple(every))}


def training_argv(args: argparse.Namespace, flags: list[str], seed: int, folder: Path) -> list[str]:
    """The dressing trainer's command line of one variant and seed."""
    argv = ["--stage", "dressing", "--base", args.base, "--data", "toyworld", "--size", str(args.size),
            "--people", str(args.people), "--garments", ",".join(SWAP_CATEGORIES), "--prompt", "empty",
            "--gtl-weight", "0", "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--seed", str(seed), "--checkpoint-every", "100", "--log-every", "50", "--out", str(folder), "--resume", *flags]
    if args.init_unet:
        argv += ["--init-unet", args.init_unet]
    return argv


def run_all(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Train and evaluate what is missing; per variant, metric -> values over the seeds that finished."""
    protocol = DressingProtocol(guidance=args.guidance, steps=args.ddim_steps)
    settings = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "size": args.size, "count": args.count,
                "base": args.base, "init_unet": args.init_unet, "protocol": asdict(protocol), "colour": COLOUR_MEASURE}
    flags = chosen_variants(args)
    loaded: list[BaseComponents] = []

    def run(name: str, seed: int, folder: Path) -> dict:
        logger.info("%s, seed %d: training %d steps in %s", name, seed, args.steps, folder)
        train_once(training_argv(args, flags[name], seed, folder), folder,
                   lambda argv: train(parse_training_args(argv)), "--steps, --lr, --batch-size and --size")
        if not loaded:
            loaded.append(load_base(args.base, 0, args.init_unet))
        dataset = held_out(args)
        config, trainables = load_dressing(str(folder / WEIGHT_FILE))
        return evaluate_variant(loaded[0], dataset, args.count, config, trainables, protocol, seed)

    return gather(Path(args.out), flags, args.seed_list, settings, None if args.table_only else run)


def held_out(args: argparse.Namespace) -> ToyDressing:
    """The held-out toy people every variant is evaluated on (and the instrument gate checks)."""
    return ToyDressing(args.size, HELD_OUT_START, args.count * 3, 0, SWAP_CATEGORIES)


def claims(igl_name: str) -> tuple[Claim, ...]:
    """Table 3's claims, IGL's at the λ1 of ``igl_name``."""
    return (
        ("GFE follows a swapped garment more than Base (swap in ↑)", "gfe", "base-tiled", "swap_in", True),
        ("GFE lowers garment confusion vs Base (swap out ↓)", "gfe", "base-tiled", "swap_out", False),
        ("GFE raises garment fidelity vs Base (colour ΔE ↓)", "gfe", "base-tiled", "color_error", False),
        ("IGL localises attention vs GFE (loc ↑)", igl_name, "gfe", "loc", True),
        ("IGL lowers background contamination vs GFE (leak bg ↓)", igl_name, "gfe", "leak_background", False),
    )


def run(args: argparse.Namespace) -> None:
    """Run the protocol with parsed options; prints the report."""
    start_cli(args)
    gate = instrument_gate(held_out(args), args.count)
    gate_text = gate_report(gate)
    record_gate(Path(args.out), gate_text, gate_passes(gate))
    with torch.inference_mode(False):
        rows = run_all(args)
    print(gate_text + "\n\n" + report(Path(args.out), rows, COLUMNS, claims(f"gfe+igl λ1={args.igl:g}")))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on a user error; prints (and writes OUT/table.md) the table."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
