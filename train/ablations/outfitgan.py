"""``python -m atelier.train.ablations.outfitgan``: OutfitGAN's ablation (SAM, N−1 generators, CCM) on the toy world.

Variants (``python -m atelier.train.outfitgan``, the toy world under its palette colour rule):

- ``full``: N−1 item generators G_i, each with the Semantic Alignment Module (SAM), and the CCM loss
  L_ccm at λ_ccm = ``--lambda-ccm``: the paper's OutfitGAN;
- ``no-sam``: the SAM replaced by concatenating source and mask features (the paper's "w/o SAM");
- ``shared``: one category-conditioned generator for all targets instead of N−1;
- ``no-ccm``: λ_ccm = 0 (the paper's "w/o CCM").

Per seed the CCM is pre-trained once (``--ccm-steps``), and every variant of that seed starts its
GAN phase from it (``--ccm-from``), so the variants differ only in what they ablate. Every variant ×
seed trains (resuming from checkpoints; finished runs are reused), then completes held-out
compatible outfits from the upper garment and is scored by ``outfit_eval``: colour against the true
outfit and against the palette rule, a judge CCM's compatibility score (the judge is trained once,
apart, on another world seed, and its AUC reported), colour diversity, SSIM and L1 to the true items.
Before any training the instrument gate checks that those scores rank the true outfits above random
ones. Seeds run one after another (all variants of seed 0 first), so a stopped run leaves a table
with the same seeds in every row.

Example (toy world, 32 px, one CPU thread, about 30 minutes; the defaults are the README table's)::

    python -m atelier.train.ablations.outfitgan --seeds 0,1,2 --threads 1 --out out/ablations/outfitgan
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ...models.weights import load_weight_file
from ..command_line import run_cli
from ..loop import start_cli
from ..outfitgan import cli as trainer
from ..outfitgan.judge import JudgeConfig, save_judge, train_judge
from .outfit_eval import (
    HeldOutOutfits,
    evaluate_generator,
    gate_failures,
    held_out_outfits,
    instrument_gate,
    judge_auc,
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
from .stats import Claim, score_table

logger = logging.getLogger("atelier.train.ablations")

HELD_OUT_START = 3000  # toy-world outfit indices from here on are never trained on
CCM_RUN = "_ccm"  # the per-seed CCM pre-training run every variant starts from
WEIGHTS_FILE = "model.safetensors"
JUDGE_FILE, JUDGE_INFO = "judge.safetensors", "judge.json"
CHECKPOINT_EVERY = 100
FLAGS = ("--size/--downsamples/--base-channels/--disc-channels/--ccm-channels/--outfits/--steps/--ccm-steps/"
         "--ccm-batch-size/--ccm-lr/--batch-size/--lr/--lambda-ccm")


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: the trainer flags that make it (beside the shared ones)."""

    flags: tuple[str, ...]
    ccm_loss: bool = True


VARIANTS: dict[str, Variant] = {
    "full": Variant(()),
    "no-sam": Variant(("--no-sam",)),
    "shared": Variant(("--shared-generator",)),
    "no-ccm": Variant((), ccm_loss=False),
}

COLUMNS = (
    ("color_match", "colour = truth ↑"), ("rule_allowed", "colour allowed by rule ↑"),
    ("rule_outfit", "outfit meets colour clause ↑"), ("judge", "judge CCM ↑"), ("entropy", "colour entropy, bits"),
    ("ssim", "SSIM ↑"), ("l1", "L1 ↓"),
)

CLAIMS: tuple[Claim, ...] = (
    ("SAM beats w/o SAM (SSIM ↑)", "full", "no-sam", "ssim", True),
    ("SAM beats w/o SAM (L1 ↓)", "full", "no-sam", "l1", False),
    ("SAM beats w/o SAM (judge CCM ↑)", "full", "no-sam", "judge", True),
    ("SAM beats w/o SAM (colour = truth ↑)", "full", "no-sam", "color_match", True),
    ("N−1 generators beat one shared generator (SSIM ↑)", "full", "shared", "ssim", True),
    ("N−1 generators beat one shared generator (colour = truth ↑)", "full", "shared", "color_match", True),
    ("CCM loss makes outfits more compatible (judge CCM ↑)", "full", "no-ccm", "judge", True),
    ("CCM loss makes outfits more compatible (colour allowed by rule ↑)", "full", "no-ccm", "rule_allowed", True),
    ("CCM loss makes outfits more compatible (outfit meets colour clause ↑)", "full", "no-ccm", "rule_outfit", True),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; cross-field checks raise AblationOptionError naming the flag."""
    p = ablation_parser("python -m atelier.train.ablations.outfitgan", __doc__, VARIANTS,
                        "folder of the runs, the judge, table.md and instrument.md")
    p.add_argument("--size", type=int, default=32, help="item side in pixels (paper: 256)")
    p.add_argument("--downsamples", type=int, default=2, help="encoder downsamplings (SAM grid = size / 2**d)")
    p.add_argument("--base-channels", type=int, default=16, help="generator width")
    p.add_argument("--disc-channels", type=int, default=16, help="discriminator width")
    p.add_argument("--ccm-channels", type=int, default=8, help="the trained CCM's item-encoder width")
    p.add_argument("--outfits", type=int, default=2000, help="toy-world training outfits (indices 0..N-1)")
    p.add_argument("--steps", type=int, default=400, help="GAN steps of every variant")
    p.add_argument("--ccm-steps", type=int, default=1000, help="CCM pre-training steps, once per seed")
    p.add_argument("--ccm-batch-size", type=int, default=16, help="outfits per CCM pre-training step")
    p.add_argument("--ccm-lr", type=float, default=2e-3, help="CCM pre-training learning rate")
    p.add_argument("--batch-size", type=int, default=8, help="outfits per GAN step")
    p.add_argument("--lr", type=float, default=2e-4, help="generator and discriminator learning rate")
    p.add_argument("--lambda-ccm", type=float, default=1.0, help="λ_ccm of every variant but no-ccm (which has 0)")
    p.add_argument("--count", type=int, default=200, help="held-out outfits drawn (the compatible ones are completed)")
    p.add_argument("--judge", default=None, help="a judge weight file to use (default: train one into OUT/judge.safetensors)")
    p.add_argument("--judge-steps", type=int, default=JudgeConfig.steps, help="steps of the judge CCM trained here")
    p.add_argument("--judge-outfits", type=int, default=JudgeConfig.train_outfits, help="the judge's training outfits")
    args = p.parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks; each message names the flag. Fills ``seed_list`` and ``variant_names``."""
    args.seed_list = seed_list(args.seeds)
    require_at_least((("--size", args.size, 32), ("--base-channels", args.base_channels, 1),
                      ("--disc-channels", args.disc_channels, 1), ("--ccm-channels", args.ccm_channels, 1),
                      ("--outfits", args.outfits, 2), ("--steps", args.steps, 1),
                      ("--ccm-steps", args.ccm_steps, 0), ("--batch-size", args.batch_size, 1),
                      ("--ccm-batch-size", args.ccm_batch_size, 1),
                      ("--count", args.count, 4), ("--judge-steps", args.judge_steps, 0),
                      ("--judge-outfits", args.judge_outfits, 2), ("--downsamples", args.downsamples, 1)))
    if args.size % 2 ** args.downsamples:
        raise AblationOptionError(f"--size {args.size} must be a multiple of 2**--downsamples = {2 ** args.downsamples}")
    if args.outfits > HELD_OUT_START:
        raise AblationOptionError(f"--outfits must be <= {HELD_OUT_START}, where the held-out outfits start")
    if args.lambda_ccm <= 0:
        raise AblationOptionError(f"--lambda-ccm must be > 0 (the no-ccm variant has 0), got {args.lambda_ccm}")
    if args.judge is not None and not Path(args.judge).is_file():
        raise AblationOptionError(f"--judge {args.judge} is not a file")
    args.variant_names = chosen(args.variants, tuple(VARIANTS))


def _shared_argv(args: argparse.Namespace, folder: Path, seed: int) -> list[str]:
    return ["--data", "toyworld", "--outfits", str(args.outfits), "--size", str(args.size),
            "--downsamples", str(args.downsamples), "--base-channels", str(args.base_channels),
            "--disc-channels", str(args.disc_channels), "--ccm-channels", str(args.ccm_channels),
            "--ccm-image-size", str(args.size), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--seed", str(seed), "--checkpoint-every", str(CHECKPOINT_EVERY), "--log-every", "50",
            "--out", str(folder), "--weight-name", WEIGHTS_FILE]


def ccm_argv(args: argparse.Namespace, seed: int) -> list[str]:
    """The trainer's command line of seed ``seed``'s CCM pre-training (no GAN steps)."""
    folder = run_dir(Path(args.out), CCM_RUN, seed)
    return [*_shared_argv(args, folder, seed), "--ccm-steps", str(args.ccm_steps), "--steps", "0",
            "--ccm-batch-size", str(args.ccm_batch_size), "--ccm-lr", str(args.ccm_lr)]


def training_argv(args: argparse.Namespace, name: str, seed: int) -> list[str]:
    """The trainer's command line of one variant and seed, starting from that seed's pre-trained CCM."""
    variant = VARIANTS[name]
    ccm = run_dir(Path(args.out), CCM_RUN, seed) / WEIGHTS_FILE
    lambda_ccm = args.lambda_ccm if variant.ccm_loss else 0.0
    return [*_shared_argv(args, run_dir(Path(args.out), name, seed), seed), *variant.flags,
            "--ccm-from", str(ccm), "--ccm-steps", "0", "--steps", str(args.steps), "--lambda-ccm", str(lambda_ccm)]


def _train(argv: list[str]) -> None:
    trainer.train(trainer.parse_args([*argv, "--resume"]))


def judge_config(args: argparse.Namespace) -> JudgeConfig:
    """The judge trained here: items at ``--size``, another world seed (1) than the generators' (0)."""
    return JudgeConfig(size=args.size, steps=args.judge_steps, train_outfits=args.judge_outfits,
                       test_start=HELD_OUT_START, test_outfits=args.count)


def load_judge(args: argparse.Namespace):
    """The judge CCM: ``--judge``, or OUT/judge.safetensors, trained once when missing or made with
    another configuration."""
    path = Path(args.judge) if args.judge else Path(args.out) / JUDGE_FILE
    info = Path(args.out) / JUDGE_INFO
    config = judge_config(args)
    if args.judge is None and not (path.is_file() and info.is_file()
                                   and json.loads(info.read_text())["config"] == asdict(config)):
        logger.info("training the judge CCM (%d steps on %d outfits of world seed %d)", config.steps,
                    config.train_outfits, config.world_seed)
        result = train_judge(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_judge(str(path), result)
        info.write_text(json.dumps({"config": asdict(config), "auc": result.auc,
                                    "auc_by_clause": result.auc_by_clause}, indent=1))
    return load_weight_file(str(path), expected_system="outfitgan", needed_by="--judge").modules["ccm"].eval()


def run_all(args: argparse.Namespace, data: HeldOutOutfits, judge) -> dict[str, dict[str, list[float]]]:
    """Train and evaluate what is missing, seed by seed; per variant, metric -> values over the seeds
    that finished."""
    out = Path(args.out)
    settings = {key: getattr(args, key) for key in ("size", "downsamples", "base_channels", "disc_channels",
                                                    "ccm_channels", "outfits", "steps", "ccm_steps", "ccm_batch_size",
                                                    "ccm_lr", "batch_size",
                                                    "lr", "lambda_ccm", "count")}
    settings["judge"] = args.judge or asdict(judge_config(args))

    def run(name: str, seed: int, folder: Path) -> dict:
        train_once(ccm_argv(args, seed), run_dir(out, CCM_RUN, seed), _train, FLAGS)
        logger.info("%s, seed %d: training in %s", name, seed, folder)
        train_once(training_argv(args, name, seed), folder, _train, FLAGS)
        generator = load_weight_file(str(folder / WEIGHTS_FILE), expected_system="outfitgan").modules["generator"]
        logger.info("%s, seed %d: completing %d held-out outfits", name, seed, len(data.outfits))
        return evaluate_generator(generator, data, judge)

    if not args.table_only:
        for seed in args.seed_list:
            gather(out, args.variant_names, [seed], settings, run)
    return gather(out, args.variant_names, args.seed_list, settings, None)


def gate_report(gate: dict[str, dict[str, float]], auc: float, outfits: int) -> str:
    """The instrument gate as a markdown table, the judge's AUC and the PASS / FAIL line."""
    lines = [score_table("scored as if generated", gate, [key for key, _ in COLUMNS],
                         [header for _, header in COLUMNS])]
    failed = gate_failures(gate)
    lines += ["", f"Judge CCM AUC, held-out compatible vs incompatible outfits: {auc:.3f} ({outfits} compatible)",
              f"Instrument gate: {'PASS' if not failed else 'FAIL'} (every score ranks the true outfits above random "
              "ones; the colour scores by more than 0.2)" + (f"; failed: {', '.join(failed)}" if failed else "")]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    """Run the protocol with parsed options; prints the report."""
    start_cli(args)
    with torch.inference_mode(False):
        data = held_out_outfits(args.size, HELD_OUT_START, args.count, 0)
        judge = load_judge(args)
        gate = instrument_gate(data, judge)
        gate_text = gate_report(gate, judge_auc(judge, data), len(data.outfits))
        record_gate(Path(args.out), gate_text, not gate_failures(gate))
        rows = run_all(args, data, judge)
    print(gate_text + "\n\n" + report(Path(args.out), rows, COLUMNS, CLAIMS))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on a user error; prints the instrument gate and the table (also written
    to OUT/instrument.md and OUT/table.md)."""
    run_cli(parse_args, run, argv, (ValueError,))


if __name__ == "__main__":
    main()
