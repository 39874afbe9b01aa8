"""``python -m atelier.train.multiprocess_check``: proof that a trainer runs on several processes as
on one. On the CPU (gloo), for each trainer asked, on the toy world with tiny sizes:

1. 2 processes (``torchrun --nproc_per_node 2`` with ``ACCELERATE_USE_CPU=true``: accelerate's
   MULTI_CPU with gloo; note that ``accelerate launch --cpu --num_processes 2`` starts a single
   process, its CPU launcher expects mpirun), batch 1 per process, N steps, a checkpoint after each;
2. one process with batch 2 (the same global batch), N steps;
3. 2 processes again, killed (SIGKILL to the whole launch) as soon as the first checkpoint is
   complete, then relaunched with ``--resume``.

AnyDressing runs without GTL here: L_texture divides the squared error summed over the batch's edge
pixels by their count over the batch, a ratio of sums, so two half batches weight the samples
slightly differently than one whole batch (every other loss is a mean of per-sample terms).
Text2Graph runs in pixel space: on the CPU its one-process latent noise follows the latents' memory
layout, which depends on the batch size (``loop.global_randn_like``).

It prints, per trainer, the relative L2 difference of all exported weights between 1 and 2 (same
global batch; AdamW's first steps amplify the reduction-order rounding of near-zero gradients, so
expect about 1e-5, not 0), the same for a gate run (1 process with batch 1: another global batch,
what a missing gradient mean would give), and between 3 and 1 (resumed against uninterrupted: 0). ``tests/test_multiprocess_training.py``
runs it for AnyDressing; the other trainers take a few CPU minutes each:

    python -m atelier.train.multiprocess_check --trainers igr truepose outfitgan --work /tmp/mp
"""

from __future__ import annotations

import argparse
import os
import signal
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .command_line import make_parser, run_cli

PROCESSES = 2


@dataclass(frozen=True)
class TrainerRun:
    """How to run one trainer tiny: its module, options, and the flag of the per-process batch.

    Args:
        module: ``python -m`` module.
        options: tiny options, without batch size, steps, checkpoints, output.
        batch_flags: the flags that set samples per process and step.
        steps_flag: the flag of the total steps (OutfitGAN: GAN steps after ``--ccm-steps``).
    """

    module: str
    options: tuple[str, ...]
    batch_flags: tuple[str, ...] = ("--batch-size",)
    steps_flag: str = "--steps"


TRAINERS: dict[str, TrainerRun] = {
    "anydressing": TrainerRun("atelier.train.anydressing", (
        "--size", "32", "--people", "12", "--garments", "upper,lower", "--rank", "2", "--lr", "1e-3",
        "--gtl-weight", "0", "--igl-weight", "1")),
    "igr": TrainerRun("atelier.train.igr", (
        "--stage", "coarse", "--person-size", "32", "--people", "6", "--lr", "1e-3", "--denoiser-rank", "2",
        "--garmnet-rank", "2", "--ip-tokens", "2")),
    "truepose": TrainerRun("atelier.train.truepose", (
        "--size", "32x32", "--people", "6", "--lr", "1e-3", "--unet-rank", "2")),
    "outfitgan": TrainerRun("atelier.train.outfitgan", (
        "--size", "32", "--base-channels", "8", "--residual-blocks", "1", "--ccm-channels", "8",
        "--ccm-image-size", "32", "--disc-channels", "8", "--disc-layers", "2", "--outfits", "12",
        "--ccm-steps", "1"), batch_flags=("--batch-size", "--ccm-batch-size")),
    "text2graph": TrainerRun("atelier.train.text2graph", (
        "--data", "toyworld", "--pretrained", "tiny", "--resolution", "32", "--num-samples", "8", "--lr", "1e-3",
        "--space", "pixel", "--adapter", "full")),
}


class MultiprocessCheckError(RuntimeError):
    """A launched run failed; the message holds its command and the end of its output."""


def free_port() -> int:
    """A TCP port nobody listens on now (for the gloo rendezvous)."""
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return int(handle.getsockname()[1])


def command(trainer: TrainerRun, processes: int, batch: int, steps: int, out: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """The command line of one run (``torch.distributed.run`` with gloo for several processes)."""
    options = [*trainer.options, trainer.steps_flag, str(steps), "--threads", "1", "--log-every", "1",
               "--checkpoint-every", "1", "--keep-checkpoints", "5", "--out", str(out), *extra]
    for flag in trainer.batch_flags:
        options += [flag, str(batch)]
    if processes == 1:
        return [sys.executable, "-m", trainer.module, *options]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_port", str(free_port()), "-m", trainer.module, *options]


def environment() -> dict[str, str]:
    """The runs' environment: offline, CPU only (accelerate's MULTI_CPU: gloo), one thread per process."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
            "ACCELERATE_USE_CPU": "true"}


def run(arguments: list[str]) -> None:
    """Run to the end; MultiprocessCheckError with the output's end when it fails."""
    done = subprocess.run(arguments, env=environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise MultiprocessCheckError(f"{' '.join(arguments)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def first_checkpoint(out: Path) -> Path | None:
    """The first complete checkpoint under ``out`` (any stage), or None."""
    found = sorted(out.glob("**/step-0000001/progress.json"))
    return found[0].parent if found else None


def run_and_kill(arguments: list[str], out: Path, timeout: float = 600.0) -> Path:
    """Start the launch, SIGKILL its whole process group once the first checkpoint is complete;
    returns that checkpoint. MultiprocessCheckError when the run ends or times out first."""
    started = time.monotonic()
    process = subprocess.Popen(arguments, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        while time.monotonic() - started < timeout:
            checkpoint = first_checkpoint(out)
            if checkpoint is not None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return checkpoint
            if process.poll() is not None:
                raise MultiprocessCheckError(f"{' '.join(arguments)} ended before its first checkpoint:\n"
                                             f"{process.stderr.read()[-3000:]}")
            time.sleep(0.05)
        raise MultiprocessCheckError(f"no checkpoint after {timeout} s: {' '.join(arguments)}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def weight_files(out: Path) -> dict[str, dict]:
    """Every exported ``*.safetensors`` directly in ``out``, loaded."""
    from safetensors.torch import load_file

    return {path.name: load_file(str(path)) for path in sorted(out.glob("*.safetensors"))}


def relative_difference(first: dict[str, dict], second: dict[str, dict]) -> float:
    """‖a − b‖ / ‖b‖ over every tensor of every file together (files and keys must match)."""
    if first.keys() != second.keys():
        raise MultiprocessCheckError(f"the runs wrote different files: {sorted(first)} vs {sorted(second)}")
    difference = total = 0.0
    for name, tensors in first.items():
        if tensors.keys() != second[name].keys():
            raise MultiprocessCheckError(f"{name}: the runs wrote different tensors")
        for key, value in tensors.items():
            other = second[name][key].double()
            difference += float((value.double() - other).pow(2).sum())
            total += float(other.pow(2).sum())
    return (difference / max(total, 1e-300)) ** 0.5


@dataclass(frozen=True)
class CheckResult:
    """One trainer's comparisons, as relative L2 differences of all exported weights: 2 processes vs
    1 process with the same global batch; the gate (1 process with half the batch, i.e. another
    global batch, vs the same): what a wrong reduction or a rank training alone would look like;
    killed and resumed vs uninterrupted; and whether the kill came before the run's end."""

    trainer: str
    two_vs_one: float
    gate_half_batch: float
    resumed_vs_uninterrupted: float
    killed_mid_run: bool


def check(name: str, work: Path, steps: int = 2) -> CheckResult:
    """The runs of ``name`` under ``work`` and their comparisons."""
    trainer = TRAINERS[name]
    shutil.rmtree(work / name, ignore_errors=True)  # a finished earlier run would fake the kill and the resume
    two, one, half, cut = (work / name / folder for folder in ("two", "one", "half", "killed"))
    run(command(trainer, PROCESSES, 1, steps, two))
    run(command(trainer, 1, PROCESSES, steps, one))
    run(command(trainer, 1, 1, steps, half))
    run_and_kill(command(trainer, PROCESSES, 1, steps, cut), cut)
    last = steps + (1 if name == "outfitgan" else 0)  # OutfitGAN's global step counts its CCM step too
    killed_mid_run = not any(cut.glob(f"**/step-{last:07d}/progress.json"))
    run(command(trainer, PROCESSES, 1, steps, cut, ("--resume",)))
    one_weights = weight_files(one)
    return CheckResult(name, relative_difference(weight_files(two), one_weights),
                       relative_difference(weight_files(half), one_weights),
                       relative_difference(weight_files(cut), weight_files(two)), killed_mid_run)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = make_parser("python -m atelier.train.multiprocess_check", __doc__)
    p.add_argument("--trainers", nargs="+", choices=sorted(TRAINERS), default=sorted(TRAINERS), help="trainers to check")
    p.add_argument("--work", required=True, help="folder for the runs' outputs")
    p.add_argument("--steps", type=int, default=2, help="optimiser steps of each run")
    return p.parse_args(argv)


def main_run(args: argparse.Namespace) -> None:
    """Check each trainer and print a table."""
    print("| trainer | 2 proc vs 1 proc, same global batch | gate: half batch vs whole | killed + resumed vs "
          "uninterrupted | killed mid-run | wall |")
    print("|---|---|---|---|---|---|")
    for name in args.trainers:
        started = time.perf_counter()
        result = check(name, Path(args.work), args.steps)
        print(f"| {name} | {result.two_vs_one:.1e} | {result.gate_half_batch:.1e} | "
              f"{result.resumed_vs_uninterrupted:.1e} | {result.killed_mid_run} | "
              f"{time.perf_counter() - started:.0f} s |", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    run_cli(parse_args, main_run, argv)


if __name__ == "__main__":
    main()
