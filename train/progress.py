"""Progress of a training run: a tqdm bar (steps/s and time left) on a terminal, otherwise log lines
with the same numbers, so that a log file of a days-long run says when it ends."""

from __future__ import annotations

import logging
import sys
import time

from tqdm.auto import tqdm

logger = logging.getLogger("atelier.train")


def duration(seconds: float) -> str:
    """``seconds`` as ``1d 02:03:04`` / ``02:03:04``."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


class Progress:
    """Steps done of ``total`` since ``first``, shown as a bar or as log lines.

    Args:
        first: the step the run (re)starts at; total: the last step.
        label: what is trained (shown before the numbers).
        bar: draw a bar (only when stderr is a terminal and ``enabled``).
        enabled: False on every process but the main one.
    """

    def __init__(self, first: int, total: int, label: str, bar: bool = True, enabled: bool = True) -> None:
        self.first, self.total, self.label = first, total, label
        self.started = time.perf_counter()
        self.enabled = enabled
        self.bar = tqdm(total=total, initial=first, desc=label, unit="step", dynamic_ncols=True) \
            if enabled and bar and sys.stderr.isatty() else None

    def rate(self, step: int) -> float:
        """Steps per second since the (re)start."""
        return (step - self.first) / max(time.perf_counter() - self.started, 1e-9)

    def eta(self, step: int) -> float:
        """Seconds left at the current rate."""
        rate = self.rate(step)
        return (self.total - step) / rate if rate > 0 else float("inf")

    def update(self, step: int, losses: dict[str, float], log: bool) -> None:
        """Step ``step`` is done; ``log``: also write a log line (the bar shows every step)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix({name: f"{value:.4f}" for name, value in losses.items()}, refresh=False)
        elif log:
            eta = self.eta(step)
            logger.info("%s step %d/%d %s  %.2f steps/s, %s left", self.label, step, self.total,
                        " ".join(f"{k}={v:.4f}" for k, v in losses.items()), self.rate(step),
                        duration(eta) if eta != float("inf") else "?")

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
