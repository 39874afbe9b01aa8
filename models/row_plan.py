"""Which rows of a denoiser batch read the reference, and which bank / mask row each one uses.

ComfyUI stacks one chunk of the whole latent batch B per condition: ``cond_or_uncond`` lists the
chunks in batch order (0 = positive, 1 = negative/unconditional, 2+ = further conds), so a UNet
call has ``len(cond_or_uncond) * B`` rows — [1, 0] with CFG, [0] at cfg 1, [1] or [0] alone when
memory splits the chunks, [1, 0, 0] with extra conds. Never assume batch 2 or uncond first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import ReferenceInputError
from .reference_config import UncondPolicy

UNCOND_CHUNK = 1


@dataclass(frozen=True)
class RowPlan:
    """Row routing for one UNet call.

    Args:
        total_rows: rows in the denoiser batch (chunks × latent batch).
        latent_batch: B, rows per chunk.
        rows: (R,) long, the denoiser rows that read the reference.
        bank_rows: (R,) long, the bank row each of those rows reads.
        mask_rows: (R,) long, the mask row for each reading row, or None without a mask.
    """

    total_rows: int
    latent_batch: int
    rows: torch.Tensor
    bank_rows: torch.Tensor
    mask_rows: torch.Tensor | None

    @property
    def reads_all_rows(self) -> bool:
        """True when every row reads the reference (no row needs the plain path)."""
        return int(self.rows.numel()) == self.total_rows

    @property
    def reads_no_row(self) -> bool:
        """True when no row reads the reference (e.g. an unconditional-only call with policy NONE)."""
        return int(self.rows.numel()) == 0


def _batch_index(batch: int, latent_batch: int, what: str) -> torch.Tensor:
    """Index into a batch of 1 (shared) or of B (one per latent); anything else is an input error."""
    if batch == 1:
        return torch.zeros(latent_batch, dtype=torch.long)
    if batch == latent_batch:
        return torch.arange(latent_batch)
    raise ReferenceInputError(
        f"the {what} batch is {batch} but the latent batch is {latent_batch}: connect one {what} "
        f"(shared by every latent) or exactly one per latent"
    )


def plan_rows(
    total_rows: int,
    cond_or_uncond: Sequence[int],
    bank_batch: int,
    uncond: UncondPolicy,
    mask_batch: int | None = None,
) -> RowPlan:
    """Route the rows of one UNet call (see module docstring for the batch layout)."""
    chunks = len(cond_or_uncond)
    if chunks == 0 or total_rows % chunks:
        raise ReferenceInputError(
            f"a UNet batch of {total_rows} rows cannot be split into {chunks} CFG chunks "
            f"(cond_or_uncond={list(cond_or_uncond)})"
        )
    latent_batch = total_rows // chunks
    bank_index = _batch_index(bank_batch, latent_batch, "reference image")
    mask_index = None if mask_batch is None else _batch_index(mask_batch, latent_batch, "mask")

    rows: list[int] = []
    for chunk, kind in enumerate(cond_or_uncond):
        if kind == UNCOND_CHUNK and uncond == UncondPolicy.NONE:
            continue
        rows.extend(range(chunk * latent_batch, (chunk + 1) * latent_batch))
    row_tensor = torch.tensor(rows, dtype=torch.long)
    within_chunk = row_tensor % latent_batch
    return RowPlan(
        total_rows=total_rows,
        latent_batch=latent_batch,
        rows=row_tensor,
        bank_rows=bank_index[within_chunk],
        mask_rows=None if mask_index is None else mask_index[within_chunk],
    )
