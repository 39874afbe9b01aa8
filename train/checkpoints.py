"""Training checkpoints shared by every trainer: accelerate's ``save_state`` of every model and
optimizer, plus the step reached.

Layout: ``<checkpoint_dir>/step-<global step, 7 digits>/`` holding accelerate's files and
``progress.json`` ({"step": global step done}); only the newest ``keep`` checkpoints are kept.
A trainer that draws its batches and noise from (seed, step) resumes exactly. (OutfitGAN's global
step counts CCM pre-training steps first, then GAN steps.)
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

logger = logging.getLogger("atelier.train")

PROGRESS_FILE = "progress.json"
PREFIX = "step-"


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(path for path in root.glob(f"{PREFIX}*") if (path / PROGRESS_FILE).is_file())


def save_checkpoint(accelerator, root: Path, step: int, keep: int) -> Path:
    """Save the state after global step ``step``; drop all but the newest ``keep`` checkpoints."""
    path = root / f"{PREFIX}{step:07d}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        (path / PROGRESS_FILE).write_text(json.dumps({"step": step}))
        for old in checkpoint_dirs(root)[:-keep]:
            shutil.rmtree(old)
        logger.info("checkpoint %s", path)
    accelerator.wait_for_everyone()
    return path


def resume_latest(accelerator, root: Path) -> int:
    """Load the newest checkpoint under ``root``; returns the global step it reached (0 without one)."""
    found = checkpoint_dirs(root)
    if not found:
        logger.info("no checkpoint under %s; starting from step 0", root)
        return 0
    accelerator.load_state(str(found[-1]))
    step = int(json.loads((found[-1] / PROGRESS_FILE).read_text())["step"])
    logger.info("resumed from %s (step %d)", found[-1], step)
    return step
