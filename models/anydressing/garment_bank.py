"""The garments' features for Dressing-Attention: F_all = Concat(F_1, …, F_N) along tokens (§4.2.1).

GarmentsNet writes one bank row per garment (garments of one size run as one batched pass; other
sizes run as further passes). Dressing-Attention reads all garments at once, so the rows are joined
along the token axis into a bank of batch 1, and the token span of each garment is kept per site:
the per-garment weights, target-region masks and IGL attention maps need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import ReferenceInputError
from ..reference_bank import ReferenceBank
from ..sites import SITES_BY_NAME


@dataclass
class GarmentBank:
    """N garments' banked features, joined along tokens.

    Args:
        bank: per site (B, ΣL_k, C), garment k's tokens in ``segments`` order; B = 1 (shared by
            every latent) or one row per latent (training).
        segments: site name -> token count L_k of each garment at that site (N entries).
        categories: the category of each garment, in order.
    """

    bank: ReferenceBank
    segments: dict[str, tuple[int, ...]]
    categories: tuple[str, ...]

    @property
    def count(self) -> int:
        """N, the number of garments."""
        return len(self.categories)

    @property
    def nbytes(self) -> int:
        return self.bank.nbytes

    @classmethod
    def from_rows(cls, rows_bank: ReferenceBank, categories: Sequence[str], batch: int = 1) -> GarmentBank:
        """Join a GarmentsNet pass's bank along tokens.

        Args:
            rows_bank: (batch·N, L, C) per site, garment rows grouped per latent (latent b's N
                garments at rows b·N … b·N + N − 1).
            categories: the N garments' categories (the same for every latent).
            batch: 1 (every latent wears the same garments) or the latent batch (training: each
                sample with its own garments).
        """
        count = len(categories)
        if count == 0 or rows_bank.batch != batch * count:
            raise ReferenceInputError(
                f"the garment pass banked {rows_bank.batch} rows for {batch} latent(s) x {count} garment(s)"
            )
        joined = ReferenceBank(keep_grad=rows_bank.keep_grad)
        segments: dict[str, tuple[int, ...]] = {}
        for name in rows_bank.site_names:
            site = SITES_BY_NAME[name]
            rows = rows_bank.get(site)  # (batch·N, L, C)
            joined.store(site, rows.reshape(batch, count * rows.shape[1], rows.shape[2]))  # (batch, N·L, C)
            segments[name] = (rows.shape[1],) * count
        return cls(joined, segments, tuple(categories))

    @classmethod
    def join(cls, parts: Sequence[GarmentBank]) -> GarmentBank:
        """Garments of several banks (several encode passes or chained GARMENTS inputs), in order."""
        if not parts:
            raise ReferenceInputError("no garments to join: connect at least one garment image")
        if len(parts) == 1:
            return parts[0]
        sites = parts[0].bank.site_names
        batches = {part.bank.batch for part in parts}
        if len(batches) != 1:
            raise ReferenceInputError(
                f"cannot join garment banks of different latent batches {sorted(batches)}; join banks made the same way"
            )
        for part in parts[1:]:
            if part.bank.site_names != sites:
                raise ReferenceInputError(
                    "these GARMENTS were encoded with different dressing weights (their sites differ); "
                    "encode every garment with the same dressing weight file"
                )
        joined = ReferenceBank(keep_grad=any(part.bank.keep_grad for part in parts))
        segments: dict[str, tuple[int, ...]] = {}
        for name in sites:
            site = SITES_BY_NAME[name]
            tensors = [part.bank.get(site) for part in parts]
            device = tensors[0].device
            joined.store(site, torch.cat([t.to(device) for t in tensors], dim=1))  # (1, ΣL, C)
            segments[name] = tuple(length for part in parts for length in part.segments[name])
        return cls(joined, segments, tuple(c for part in parts for c in part.categories))

    def to(self, device: torch.device | str) -> GarmentBank:
        """A copy whose tensors live on ``device`` (the bank stays on the offload device between runs)."""
        return GarmentBank(self.bank.to(device), dict(self.segments), self.categories)
