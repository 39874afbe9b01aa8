"""``python -m atelier.train.ablations.truepose``: TruePose's Table 2 on the toy world.

Variants (``python -m atelier.train.truepose --variant``), all trained from the same base UNet:

- ``full``: the paper's "Ours", HPFA + CAA + pose encoder;
- ``no-hpfa`` (B4): the fusion of eq. 7–8 without the parsing reweighting (M' ≡ 1), CAA kept;
- ``no-caa`` (B3): HPFA without CAA sites;
- ``concat`` (B2, "w/. Dual-UNet"): SourceNet's bank appended to the TargetNet's self-attention K/V.

B1 (CLIP features through an MLP) has no trainer variant and is not run.

Every variant × seed trains (resuming from checkpoints) with the paper's condition dropout η and is
evaluated as the paper samples: DDIM with classifier-free guidance ω (``--guidance``, paper 3.5), the
unconditional chunk reading no condition (``train.truepose.evaluate``), on held-out toy pose pairs
with the same noise for every variant. The table is mean ± sd over seeds of SSIM and PSNR inside the
target's person region and over the whole picture, the garment colour error and fidelity, and the
sampling-free ε-MSE at t = 500 inside the person region with C, without C, and with the target
itself as the source (and over the whole latent). The paper's LPIPS and FID need pretrained networks
and are not computed. Before any training the instrument gate (``truepose_gate``) checks that the
image metrics rank the true target first and that the base, reading the target itself as its
source, lowers the person-region ε-MSE by at least 20%. Runs already evaluated with the same settings
are reused, so the command can be stopped and re-run, or run once per seed in parallel processes and
then once more with ``--table-only`` to print the joined table.

``--base toy32`` (the default; the pose encoder strides to its ×4 latents) starts every variant from
``--init-unet``, the gated base. On ``--base tiny`` without ``--init-unet`` the base stage is trained
first into ``OUT/base`` (``--base-steps``) and shared by every variant.

Example (toy32, the gated base, CPU, one thread)::

    python -m atelier.train.ablations.truepose --init-unet out/toy32-self/base_unet.safetensors --steps 60 \\
        --count 8 --ddim-steps 20 --threads 1 --out out/ablations/truepose
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from ...models.truepose.config import PAPER_GUIDANCE
from ..anydressing.components import load_base
from ..command_line import run_cli
from ..igr.components import FROZEN_SEED, load_image_encoder
from ..loop import start_cli
from ..substrate import is_substrate, substrate
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
    ablation_parser,
    chosen,
    gather,
    read_result,
    record_gate,
    report,
    seed_list,
    train_once,
    write_result,
)
from .stats import Claim, mean_sd
from .truepose_gate import ORACLE_FALL, GateResult, gate_report, image_gate, oracle_gate

logger = logging.getLogger("atelier.train.ablations")

VARIANTS = ("full", "no-hpfa", "no-caa", "concat")
TOY_SIZE = (64, 48)  # --base tiny
BASE_FOLDER = "base"
GATE_FOLDER = "gate"
CHECKPOINT_EVERY = 50

COLUMNS = (
    ("ssim_person", "SSIM person ↑"), ("psnr_person", "PSNR person ↑"), ("ssim", "SSIM ↑"),
    ("color_error", "colour ΔE ↓"), ("color_fidelity", "colour fid. ↑"),
    ("eps_person", "ε person ↓"), ("eps_person_no_condition", "ε person no C"),
    ("eps_person_target_source", "ε person, target as source"),
    ("eps_mse", "ε-MSE ↓"), ("eps_mse_no_condition", "ε-MSE no C"),
)

CLAIMS: tuple[Claim, ...] = (  # Table 2's rows, inside the target's person region
    ("Ours beats B4 w/o HPFA (SSIM person ↑)", "full", "no-hpfa", "ssim_person", True),
    ("Ours beats B4 w/o HPFA (colour ΔE ↓)", "full", "no-hpfa", "color_error", False),
    ("Ours beats B4 w/o HPFA (ε person ↓)", "full", "no-hpfa", "eps_person", False),
    ("Ours beats B3 w/o CAA (SSIM person ↑)", "full", "no-caa", "ssim_person", True),
    ("Ours beats B3 w/o CAA (colour ΔE ↓)", "full", "no-caa", "color_error", False),
    ("Ours beats B3 w/o CAA (ε person ↓)", "full", "no-caa", "eps_person", False),
    ("Ours beats B2 Dual-UNet concat (SSIM person ↑)", "full", "concat", "ssim_person", True),
    ("Ours beats B2 Dual-UNet concat (colour ΔE ↓)", "full", "concat", "color_error", False),
    ("Ours beats B2 Dual-UNet concat (ε person ↓)", "full", "concat", "eps_person", False),
    ("B3 w/o CAA beats B2 Dual-UNet concat (SSIM person ↑)", "no-caa", "concat", "ssim_person", True),
    ("B3 w/o CAA beats B2 Dual-UNet concat (ε person ↓)", "no-caa", "concat", "eps_person", False),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = ablation_parser("python -m atelier.train.ablations.truepose", __doc__, VARIANTS,
                        "folder of the runs and table.md")
    p.add_argument("--base", default="toy32", help="toy substrate (toy32, tiny) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="the shared base UNet (toy32: the gated "
                   "out/toy32-self/base_unet.safetensors); on tiny without it the base is trained into OUT/base")
    p.add_argument("--base-steps", type=int, default=1500, help="base-stage steps when --init-unet is not given")
    p.add_argument("--base-lr", type=float, default=1e-3, help="base-stage AdamW learning rate")
    p.add_argument("--steps", type=int, default=1200, help="truepose-stage steps per variant and seed")
    p.add_argument("--batch-size", type=int, default=4, help="pairs per step")
    p.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate (paper 1e-5 on SD1.5; toy runs need more)")
    p.add_argument("--unet", choices=("full", "lora"), default="full", help="the shared UNet update (paper: full)")
    p.add_argument("--size", type=parse_size, default=None,
                   help=f"HxW, multiples of 8 (default: the substrate's square on toy32, {TOY_SIZE[0]}x{TOY_SIZE[1]} "
                   "on tiny, 256x176 on SD1.5)")
    p.add_argument("--people", type=int, default=2000, help="toy-world training pose pairs")
    p.add_argument("--hidden-part-fraction", type=float, default=DEFAULT_HIDDEN_PART_FRACTION,
                   help="probability that a target hides body parts, in training and evaluation")
    p.add_argument("--count", type=int, default=32, help="held-out pose pairs evaluated")
    p.add_argument("--guidance", type=float, default=PAPER_GUIDANCE, help="CFG scale ω at sampling (paper 3.5)")
    p.add_argument("--ddim-steps", type=int, default=25, help="DDIM steps (paper 20–35)")
    p.add_argument("--gate-fall", type=float, default=ORACLE_FALL,
                   help="least relative fall of the person-region ε-MSE that the target as source must give the "
                   "untrained concat variant for the instrument gate to pass (a fresh tiny base cannot reach 0.2)")
    args = p.parse_args(argv)
    check_args(args)
    if args.size is None:
        args.size = default_size(args.base)
    return args


def default_size(base: str) -> tuple[int, int]:
    """The picture size of ``--base`` when ``--size`` is not given."""
    if base == "tiny":
        return TOY_SIZE
    if is_substrate(base):
        return substrate(base).size, substrate(base).size
    return PRESETS["256x176"]


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks; each message names the flag."""
    args.seed_list = seed_list(args.seeds)
    if args.steps < 1 or args.base_steps < 1 or args.count < 2:
        raise AblationOptionError("--steps and --base-steps must be >= 1 and --count >= 2")
    if not 0.0 <= args.hidden_part_fraction <= 1.0:
        raise AblationOptionError(f"--hidden-part-fraction must lie in [0, 1], got {args.hidden_part_fraction}")
    if is_substrate(args.base) and args.base != "tiny" and args.init_unet is None:
        raise AblationOptionError(f"--base {args.base} needs --init-unet, the base that passed the gate "
                                  "(e.g. out/toy32-self/base_unet.safetensors); only --base tiny trains its own base")


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
            "--steps", str(args.steps), "--lr", str(args.lr), "--seed", str(seed),
            "--checkpoint-every", str(CHECKPOINT_EVERY),
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
        train_once(training_argv(args, variant, seed, folder, init_unet), folder,
                   lambda argv: train(parse_training_args(argv)), "--steps, --lr, --batch-size, --unet and --size")
        # the evaluation noise is fixed (seed 0) so that every variant and seed meets the same noise
        return evaluate_run(args, folder, init_unet, 0)

    return gather(Path(args.out), chosen_variants(args), args.seed_list, settings, None if args.table_only else run)


def instrument_gate(args: argparse.Namespace, init_unet: str | None) -> str:
    """Run the instrument gate (``truepose_gate``) on the evaluation pairs, or reuse OUT/gate's result
    made with the same settings; writes OUT/instrument.md and stops the command when it fails. Returns
    its report."""
    folder = Path(args.out) / GATE_FOLDER
    settings = {"base": args.base, "init_unet": init_unet, "size": list(args.size), "count": args.count,
                "hidden_part_fraction": args.hidden_part_fraction}
    stored = read_result(folder, settings)
    if stored is None:
        dataset = ToyPosePairs(args.size, HELD_OUT_START, args.count, 0, args.hidden_part_fraction)
        stored = {"images": image_gate(dataset, args.count),
                  "oracle": oracle_gate(args.base, init_unet, dataset, args.count, load_image_encoder("tiny"))}
        write_result(folder, settings, stored)
    gate = GateResult(stored["images"], stored["oracle"], args.gate_fall)
    text = gate_report(gate)
    record_gate(Path(args.out), text, gate.passes())
    return text


def _below(values: list[float]) -> str:
    if len(values) < 2:
        return "unresolved (fewer than 2 seeds)"
    mean, sd = mean_sd(values)
    return "yes" if mean > sd and mean > 0 else "no, above" if -mean > sd else "unresolved (within the spread)"


def reach_lines(rows: dict[str, dict[str, list[float]]]) -> list[str]:
    """Per variant, whether reading the source lowers the person-region ε-MSE beyond the seed sd,
    and whether the target as source would lower it further (what a better read could still gain)."""
    lines = []
    for name, metrics in rows.items():
        read = [plain - own for plain, own in zip(metrics.get("eps_person_no_condition", []),
                                                  metrics.get("eps_person", []))]
        left = [own - oracle for own, oracle in zip(metrics.get("eps_person", []),
                                                    metrics.get("eps_person_target_source", []))]
        lines.append(f"- {name}: the source lowers the person-region ε-MSE beyond the seed sd: {_below(read)}; "
                     f"the target as source lowers it further: {_below(left)}")
    return lines


def run(args: argparse.Namespace) -> None:
    """Run the protocol with parsed options; prints the report."""
    chosen_variants(args)
    start_cli(args)
    with torch.inference_mode(False):
        gate_text = instrument_gate(args, base_unet(args))
        rows = run_all(args)
    print(gate_text + "\n\n" + report(Path(args.out), rows, COLUMNS, CLAIMS, reach_lines(rows)))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on a user error; prints the instrument gate and the table (also written
    to OUT/instrument.md and OUT/table.md)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
