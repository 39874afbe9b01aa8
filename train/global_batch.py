"""The rows one process takes of a step's global batch: every process draws the whole global batch
from the same generator and keeps its own slice, so P processes with batch B see what one process
with batch P·B would, and a resumed run draws what the interrupted one would have."""

from __future__ import annotations

import numpy as np


def process_rows(rng: np.random.Generator, population: int, batch_size: int, process: int = 0,
                 processes: int = 1) -> np.ndarray:
    """``batch_size`` indices in [0, ``population``): process ``process``'s slice of the
    ``batch_size`` × ``processes`` drawn from ``rng`` (one process: the plain draw of ``batch_size``)."""
    return rng.integers(0, population, size=batch_size * processes)[process * batch_size:(process + 1) * batch_size]
