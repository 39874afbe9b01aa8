"""What every ablation command shares: its option errors, the seeds and variants it runs, where it
keeps each variant × seed run, reading back what finished, and the table it prints and writes."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ...models.errors import AtelierError
from ..command_line import add_threads_option, make_parser
from ..command_line import require_at_least as at_least
from .stats import Claim, claim_lines, markdown_table

RESULT_FILE = "eval.json"
logger = logging.getLogger("atelier.train.ablations")

TABLE_FILE = "table.md"
GATE_FILE = "instrument.md"
TRAINING_FILE = "training.json"

# (variant, seed, run folder) -> the run's metrics, after training and evaluating it.
RunOnce = Callable[[str, int, Path], dict]


def run_dir(out: Path, variant: str, seed: int) -> Path:
    """``OUT/<variant>/seed-<seed>/`` (the variant name with spaces and symbols made path-safe)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in variant)
    return out / safe / f"seed-{seed}"


def read_result(folder: Path, settings: dict) -> dict | None:
    """The stored evaluation of a run, if it was made with exactly ``settings``."""
    path = folder / RESULT_FILE
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    return stored["metrics"] if stored.get("settings") == json.loads(json.dumps(settings)) else None


def write_result(folder: Path, settings: dict, metrics: dict) -> None:
    """Store a run's evaluation with the settings that made it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULT_FILE).write_text(json.dumps({"settings": settings, "metrics": metrics}, indent=1))


def gather(out: Path, variants: Iterable[str], seeds: Sequence[int], settings: dict,
           run: RunOnce | None) -> dict[str, dict[str, list[float]]]:
    """Per variant, metric -> values over the seeds whose run finished. A run without a stored
    result for ``settings`` is made by ``run`` and stored; with ``run`` None it is left out."""
    rows: dict[str, dict[str, list[float]]] = {}
    for variant in variants:
        for seed in seeds:
            folder = run_dir(out, variant, seed)
            metrics = read_result(folder, settings)
            if metrics is None and run is not None:
                metrics = run(variant, seed, folder)
                write_result(folder, settings, metrics)
                logger.info("%s, seed %d: %s", variant, seed, metrics)
            for key, value in (metrics or {}).items():
                rows.setdefault(variant, {}).setdefault(key, []).append(float(value))
    return rows


class AblationOptionError(AtelierError, ValueError):
    """An ablation option is out of range; the message names the flag."""


class InstrumentGateError(AtelierError):
    """The instrument gate failed: the metrics cannot see the effect, so no table is made."""


def train_once(argv: list[str], folder: Path, train: Callable[[list[str]], object], flags: str) -> None:
    """Train (``train(argv)``, which must resume from its checkpoints) unless ``folder`` holds the finished
    run of exactly ``argv``; refuse a folder trained with another command line, whose checkpoints would be
    resumed by mistake (``flags``: the options that change the command line, for the message)."""
    marker = folder / TRAINING_FILE
    stored = json.loads(marker.read_text()) if marker.is_file() else None
    if stored is not None and stored["argv"] != argv:
        raise AblationOptionError(f"{folder} holds a run trained with other settings ({stored['argv']}); pass another "
                                  f"--out, or the same {flags}")
    if stored is not None and stored["finished"]:
        return
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"argv": argv, "finished": False}))
    train(argv)
    marker.write_text(json.dumps({"argv": argv, "finished": True}))


def seed_list(seeds: str) -> list[int]:
    """The seeds of ``--seeds`` ("0,1,2")."""
    found = [int(seed) for seed in seeds.split(",") if seed]
    if not found:
        raise AblationOptionError("--seeds names no seed")
    return found


def chosen(variants: str | None, known: Sequence[str]) -> list[str]:
    """The variants ``--variants`` names (comma-separated), or all ``known`` ones without it."""
    if variants is None:
        return list(known)
    wanted = [name.strip() for name in variants.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        raise AblationOptionError(f"--variants: unknown {unknown or wanted}; known: {list(known)}")
    return wanted


def report(out: Path, rows: dict[str, dict[str, list[float]]], columns: Sequence[tuple[str, str]],
           claims: Sequence[Claim], notes: Sequence[str] = ()) -> str:
    """The table of ``rows``, a verdict line per claim and any further ``notes`` lines, written to
    ``out``/table.md; returns it."""
    text = "\n".join([markdown_table(rows, columns), "", *claim_lines(rows, claims), *notes])
    out.mkdir(parents=True, exist_ok=True)
    (out / TABLE_FILE).write_text(text + "\n")
    return text


def require_at_least(limits: Sequence[tuple[str, float, float]]) -> None:
    """(flag, value, least) triples: the first value below its least is an AblationOptionError naming its flag."""
    at_least(limits, AblationOptionError)


def record_gate(out: Path, text: str, passed: bool) -> None:
    """Write the instrument gate's report to ``out``/instrument.md; a failing gate stops the command
    (InstrumentGateError with the report) before any table is made."""
    out.mkdir(parents=True, exist_ok=True)
    (out / GATE_FILE).write_text(text + "\n")
    if not passed:
        raise InstrumentGateError(f"the instrument gate fails, so no table is made:\n{text}")


def ablation_parser(prog: str, doc: str | None, variants: Sequence[str], out_help: str) -> argparse.ArgumentParser:
    """The parser every ablation command starts from: ``--out`` (``out_help`` says what goes in it),
    ``--seeds``, ``--variants`` (a subset of ``variants``), ``--table-only`` and ``--threads``."""
    p = make_parser(prog, doc)
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--seeds", default="0,1,2", help="training seeds (at least 3 for a verdict you can trust)")
    p.add_argument("--variants", default=None, help=f"comma-separated subset of {', '.join(variants)}")
    p.add_argument("--table-only", action="store_true", help="train and evaluate nothing; print the table of what finished")
    add_threads_option(p)
    return p
