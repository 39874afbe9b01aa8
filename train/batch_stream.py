"""Endless batches of a shuffling DataLoader, epoch after epoch, with a position a checkpoint can save
(for trainers that draw their data from a loader rather than from (seed, step)).

The loader's generator is consumed when an epoch's iterator starts (its worker seed, its sampler's
permutation) and by whatever else the trainer draws from it between batches (e.g. caption dropout).
The state holds the generator at the current epoch's start, the batches taken in that epoch and the
generator now; restoring it restarts the epoch from its start state, skips the taken batches at the
sampler level (nothing is loaded), then puts the generator where it was: the next batches and draws
are those the uninterrupted run would have had.
"""

from __future__ import annotations

import torch
from accelerate import skip_first_batches


class BatchStream:
    """``next()`` gives the loader's batches endlessly; ``state_dict`` / ``load_state_dict`` resume it.

    Args:
        loader: the (prepared) DataLoader.
        generator: the loader's shuffling generator.
    """

    def __init__(self, loader, generator: torch.Generator) -> None:
        self.loader = loader
        self.generator = generator
        self.epoch_start = generator.get_state()
        self.taken = 0
        self.iterator = None
        self.pending: torch.Tensor | None = None

    def _restore_pending(self) -> None:
        if self.pending is not None:
            self.generator.set_state(self.pending)
            self.pending = None

    def next(self):
        """The next batch (a new epoch begins after the last one)."""
        if self.iterator is None:
            self.epoch_start = self.generator.get_state()
            self.iterator = iter(skip_first_batches(self.loader, self.taken) if self.taken else self.loader)
        try:
            batch = next(self.iterator)
        except StopIteration:
            self._restore_pending()
            self.iterator, self.taken = None, 0
            return self.next()
        self._restore_pending()
        self.taken += 1
        return batch

    def state_dict(self) -> dict[str, object]:
        """The generator at the epoch's start and now, and the batches taken in the epoch."""
        return {"epoch_start": self.epoch_start, "taken": self.taken, "now": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Continue after the position ``state_dict`` saved."""
        self.generator.set_state(state["epoch_start"])
        self.epoch_start = state["epoch_start"]
        self.taken = int(state["taken"])
        self.pending = state["now"]
        self.iterator = None
