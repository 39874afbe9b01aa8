"""Where an ablation keeps each variant × seed run, and reading back what finished."""

from __future__ import annotations

import json
from pathlib import Path

RESULT_FILE = "eval.json"


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
