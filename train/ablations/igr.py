"""``python -m atelier.train.ablations.igr``: IGR's Table 2 on the toy substrate.

Variants (``python -m atelier.train.igr``), all from the same base denoiser, each with the denoiser
update, plain ε-prediction and condition drop:

- ``ip``: the IP-Adapter alone (F_ll through eq. 3), the paper's "w/o GarmNet";
- ``garmnet``: GarmNet alone (F_hl through eq. 4's concatenated self-attention), not in the paper's
  table: it asks what the IP path adds;
- ``both``: GarmNet + IP, coarse stage only;
- ``both+coarse``: ``both`` continued for ``--extra-steps`` more coarse steps on every pair, the
  paper's "w/o HQFT" at a matched step count;
- ``both+fine``: ``both`` fine-tuned for ``--extra-steps`` on the high-quality pairs only (HQFT,
  the toy world's rule, ``train.igr.quality``), the paper's "Ours" (coarse-to-fine).

The two continuations start from the ``both`` run's exported files with a fresh optimiser and draw
their batches and noise from the training seed + CONTINUATION_SEED_OFFSET, so they do not replay
the coarse run's first steps.

Every variant × seed trains (resuming from checkpoints), is evaluated with ``restoration_eval``
(DDIM 25 steps at s = 1.5 as the paper samples; metrics inside the garment region, the paired
person swap, the garment-region ε-MSE with and without the garment features) on the same
held-out pairs and noise, and the table is printed as mean ± sd with a verdict per claim. Before it
the instrument gate shows that the metrics separate the true garment from wrong ones. Runs already
evaluated with the same settings are reused, so the command can be stopped and re-run, or run once
per seed and then with ``--table-only``.

Example (toy32, the gated base, CPU)::

    python -m atelier.train.ablations.igr --init-unet out/toy32-self/base_unet.safetensors --seeds 0,1,2 \\
        --threads 1 --out out/ablations/igr
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..anydressing.components import load_base
from ..command_line import run_cli
from ..igr.cli import parse_args as parse_training_args
from ..igr.cli import parse_size, train
from ..igr.components import FROZEN_SEED, load_image_encoder
from ..igr.data import IGRDataError, ToyIGR
from ..igr.evaluate import HELD_OUT_START, load_igr
from ..loop import start_cli
from ..substrate import is_substrate, substrate, vae_factor_for
from .restoration_eval import (
    REGION_METRICS,
    RestorationProtocol,
    evaluate_restoration,
    gate_passes,
    instrument_gate,
)
from .runs import (
    AblationOptionError,
    ablation_parser,
    chosen,
    gather,
    record_gate,
    report,
    require_at_least,
    run_dir,
    seed_list,
    train_once,
)
from .stats import Claim, mean_sd, score_table

logger = logging.getLogger("atelier.train.ablations")

CONTINUATION_SEED_OFFSET = 10_000
CHECKPOINT_EVERY = 50
# the options that change a run's training command line (named when a folder holds another run)
FLAGS = "--steps/--extra-steps/--batch-size/--lr/--denoiser/--size/--people/--garments/--init-unet"
SD_SIZE = (1024, 768)
GATE_DONORS = 16  # further held-out people the gate may take its "another garment" from


@dataclass(frozen=True)
class Variant:
    """One row of Table 2.

    Args:
        paths: the trainer's ``--paths`` (both, ip, garmnet).
        continuation: None (the coarse run itself), or the stage ("coarse" / "fine") that continues
            the ``both`` coarse run for ``--extra-steps``.
    """

    paths: str
    continuation: str | None = None


COARSE_BOTH = "both"
VARIANTS: dict[str, Variant] = {
    "ip": Variant("ip"),
    "garmnet": Variant("garmnet"),
    COARSE_BOTH: Variant("both"),
    "both+coarse": Variant("both", "coarse"),
    "both+fine": Variant("both", "fine"),
}

COLUMNS = (
    ("ssim_garment", "SSIM in M_g ↑"), ("psnr_garment", "PSNR in M_g ↑"), ("color_error", "colour ΔE ↓"),
    ("color_fidelity", "colour fid. ↑"), ("pattern_fidelity", "pattern fid. ↑"), ("ssim", "SSIM picture ↑"),
    ("swap", "swap ↑"), ("eps_fall_300", "ε-MSE fall t=300 ↑"), ("eps_fall_500", "ε-MSE fall t=500 ↑"),
    ("eps_own_500", "own vs twin t=500 ↑"),
)

CLAIMS: tuple[Claim, ...] = (  # Table 2's rows, and what the design says the IP path adds
    ("GarmNet + IP beats IP only, w/o GarmNet (SSIM in M_g ↑)", "both", "ip", "ssim_garment", True),
    ("GarmNet + IP beats IP only, w/o GarmNet (pattern fidelity ↑)", "both", "ip", "pattern_fidelity", True),
    ("GarmNet + IP beats IP only, w/o GarmNet (colour ΔE ↓)", "both", "ip", "color_error", False),
    ("GarmNet + IP follows the worn colour more than IP only (swap ↑)", "both", "ip", "swap", True),
    ("GarmNet + IP beats GarmNet only (colour ΔE ↓)", "both", "garmnet", "color_error", False),
    ("GarmNet + IP beats GarmNet only (SSIM in M_g ↑)", "both", "garmnet", "ssim_garment", True),
    ("GarmNet + IP follows the worn colour more than GarmNet only (swap ↑)", "both", "garmnet", "swap", True),
    ("HQFT beats the same extra coarse steps (SSIM in M_g ↑)", "both+fine", "both+coarse", "ssim_garment", True),
    ("HQFT beats the same extra coarse steps (colour ΔE ↓)", "both+fine", "both+coarse", "color_error", False),
    ("HQFT beats the same extra coarse steps (pattern fidelity ↑)", "both+fine", "both+coarse", "pattern_fidelity", True),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; cross-field checks raise AblationOptionError naming the flag."""
    p = ablation_parser("python -m atelier.train.ablations.igr", __doc__, VARIANTS,
                        "folder of the runs, table.md and instrument.md")
    p.add_argument("--base", default="toy32", help="toy substrate (toy32, tiny) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="the base denoiser (e.g. the gated out/toy32-self/base_unet.safetensors)")
    p.add_argument("--steps", type=int, default=200, help="coarse-stage steps of every variant")
    p.add_argument("--extra-steps", type=int, default=100, help="steps of both continuations (fine, or more coarse)")
    p.add_argument("--batch-size", type=int, default=4, help="pairs per step")
    p.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate (paper 1e-5 at batch 32 on SD1.5)")
    p.add_argument("--denoiser", choices=("lora", "full"), default="lora", help="the denoiser update")
    p.add_argument("--size", type=parse_size, default=None,
                   help="person and garment image, N or HxW (default: the substrate's; SD1.5: 1024x768)")
    p.add_argument("--people", type=int, default=1000, help="toy-world training people")
    p.add_argument("--garments", default="upper,lower,dress", help="garment categories restored")
    p.add_argument("--count", type=int, default=8, help="held-out pairs evaluated")
    p.add_argument("--guidance", type=float, default=RestorationProtocol.guidance, help="s of eq. 2 (paper 1.5)")
    p.add_argument("--ddim-steps", type=int, default=RestorationProtocol.steps, help="DDIM steps (paper 25)")
    p.add_argument("--eval-batch", type=int, default=RestorationProtocol.batch_size, help="pairs sampled together")
    args = p.parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks; each message names the flag. Fills ``seed_list``, ``size`` and ``variant_names``."""
    args.seed_list = seed_list(args.seeds)
    require_at_least((("--steps", args.steps, 1), ("--extra-steps", args.extra_steps, 1),
                      ("--batch-size", args.batch_size, 1), ("--people", args.people, 2),
                      ("--count", args.count, 2), ("--ddim-steps", args.ddim_steps, 1),
                      ("--eval-batch", args.eval_batch, 1)))
    if args.guidance <= 0:
        raise AblationOptionError(f"--guidance must be > 0, got {args.guidance}")
    if args.size is None:
        side = substrate(args.base).size if is_substrate(args.base) else None
        args.size = (side, side) if side else SD_SIZE
    factor = vae_factor_for(args.base, None)
    if args.size[0] % factor or args.size[1] % factor:
        raise AblationOptionError(f"--size {args.size[0]}x{args.size[1]} must be a multiple of {args.base}'s VAE factor {factor}")
    args.variant_names = chosen(args.variants, tuple(VARIANTS))


def _categories(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(c for c in args.garments.split(",") if c)


def training_argv(args: argparse.Namespace, name: str, seed: int, out: Path) -> list[str]:
    """The IGR trainer's command line of one variant and seed (continuations: of their second stage)."""
    variant = VARIANTS[name]
    argv = ["--base", args.base, "--data", "toyworld", "--person-size", f"{args.size[0]}x{args.size[1]}",
            "--people", str(args.people), "--garments", args.garments, "--paths", variant.paths,
            "--denoiser", args.denoiser, "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--log-every", "25", "--out", str(run_dir(out, name, seed))]
    if args.init_unet:
        argv += ["--init-unet", args.init_unet]
    if variant.continuation is None:
        return [*argv, "--stage", "coarse", "--steps", str(args.steps), "--seed", str(seed)]
    return [*argv, "--stage", variant.continuation, "--resume-from", str(run_dir(out, COARSE_BOTH, seed)),
            "--steps", str(args.extra_steps), "--seed", str(seed + CONTINUATION_SEED_OFFSET)]


def _train(argv: list[str]) -> None:
    train(parse_training_args([*argv, "--resume"]))


def held_out(args: argparse.Namespace, extra_people: int = 0) -> ToyIGR:
    """The evaluation pairs: ``--count`` held-out toy people (at least one pair each) and
    ``extra_people`` more, no quality rule."""
    return ToyIGR(args.size, None, HELD_OUT_START, args.count + extra_people, 0, _categories(args), "agnostic", rule=None)


def evaluate_run(args: argparse.Namespace, folder: Path, protocol: RestorationProtocol) -> dict:
    """Load a finished run on a fresh base (its denoiser update applied) and score it."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    components = load_base(args.base, FROZEN_SEED, args.init_unet)
    igr = load_igr(components, str(folder))
    components.to(device)
    igr[1].to(device)
    encoder = load_image_encoder("tiny").to(device) if igr[0].low_level else None
    return evaluate_restoration(components, held_out(args), args.count, igr, encoder, protocol)


def run_all(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Train and evaluate what is missing; per variant, metric -> values over the seeds that finished."""
    out = Path(args.out)
    protocol = RestorationProtocol(guidance=args.guidance, steps=args.ddim_steps, batch_size=args.eval_batch)
    settings = {"steps": args.steps, "extra_steps": args.extra_steps, "batch_size": args.batch_size, "lr": args.lr,
                "denoiser": args.denoiser, "size": list(args.size), "people": args.people, "garments": args.garments,
                "count": args.count, "base": args.base, "init_unet": args.init_unet,
                "protocol": {k: v for k, v in asdict(protocol).items() if k != "batch_size"}}

    def run(name: str, seed: int, folder: Path) -> dict:
        if VARIANTS[name].continuation is not None:
            train_once(training_argv(args, COARSE_BOTH, seed, out), run_dir(out, COARSE_BOTH, seed), _train, FLAGS)
        logger.info("%s, seed %d: training in %s", name, seed, folder)
        train_once(training_argv(args, name, seed, out), folder, _train, FLAGS)
        logger.info("%s, seed %d: evaluating %d held-out pairs", name, seed, args.count)
        return evaluate_run(args, folder, protocol)

    return gather(out, args.variant_names, args.seed_list, settings, None if args.table_only else run)


def _above_zero(values: list[float]) -> str:
    if len(values) < 2:
        return "unresolved (fewer than 2 seeds)"
    mean, sd = mean_sd(values)
    return "yes" if mean > sd and mean > 0 else "no, below 0" if -mean > sd else "unresolved (within the spread)"


def reach_lines(rows: dict[str, dict[str, list[float]]], timestep: int = 500) -> list[str]:
    """Per variant, whether reading the garment features lowers the garment-region ε-MSE at
    ``timestep`` by more than the seed spread, against no features and against the recoloured
    twin's features."""
    return [f"- {name}: the garment features lower the garment-region ε-MSE at t={timestep} beyond the seed sd: "
            f"{_above_zero(metrics.get(f'eps_fall_{timestep}', []))}; the person's own beat its recoloured twin's: "
            f"{_above_zero(metrics.get(f'eps_own_{timestep}', []))}"
            for name, metrics in rows.items()]


def gate_report(gate: dict[str, dict[str, float]]) -> str:
    """The instrument gate as a markdown table and its PASS / FAIL line."""
    columns = [*REGION_METRICS, "swap"]
    lines = [score_table("scored against the truth", gate, columns)]
    verdict = "PASS" if gate_passes(gate) else "FAIL"
    rule = ("every metric ranks the true garment above a recoloured one and another garment; pattern fidelity "
            "is colour-blind; an oracle's swap is 1")
    lines += ["", f"Instrument gate: {verdict} ({rule})"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    """Run the protocol with parsed options; prints the report."""
    start_cli(args)
    gate = instrument_gate(held_out(args, GATE_DONORS), args.count)
    gate_text = gate_report(gate)
    record_gate(Path(args.out), gate_text, gate_passes(gate))
    with torch.inference_mode(False):
        rows = run_all(args)
    print(gate_text + "\n\n" + report(Path(args.out), rows, COLUMNS, CLAIMS, reach_lines(rows)))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on a user error; prints the instrument gate and the table (also
    written to OUT/instrument.md and OUT/table.md)."""
    run_cli(parse_args, run, argv, (IGRDataError,))


if __name__ == "__main__":
    main()
