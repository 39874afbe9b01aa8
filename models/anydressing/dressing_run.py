"""The per-sampling-run state of a dressing: a ReferenceRun that reads N garments.

Row routing, the schedule gate, the CFG policy and K'/V' caching per bank write are the
foundation's (reference_run.py); this adds the garment spans, per-garment weights w_k, per-garment
target-region masks and, while training, the IGL attention maps of every site. AnyDressing and
IMAGDressing read through Dressing-Attention (``cross``); concatenating reference networks such as
MagicClothing read through one joint softmax (``concat``, garment_concat.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ReferenceInputError
from ..masks import mask_to_tokens
from ..reference_attention import ConcatAttention, CrossAttention
from ..reference_config import ReadMode, ReferenceConfig
from ..reference_projections import ReferenceProjections
from ..reference_run import ReferenceRun
from ..sites import AttentionSite
from .dressing_attention import dressing_attention
from .garment_bank import GarmentBank
from .garment_concat import garment_concat_attention


class DressingRun(ReferenceRun):
    """One sampling (or training) run reading N garments.

    Args:
        config: the application: ``cross`` (Dressing-Attention; ``strength`` is λ of eq. 6) or
            ``concat`` (one joint softmax; ``strength`` scales the garments' attention mass).
        garments: the garments' bank, joined along tokens.
        projections: learned W'k, W'v; None uses each layer's own Wk, Wv (the paper's initialisation).
        garment_weights: w_k per garment (N values); None = all 1.
        garment_masks: (B_m, N, H, W) target region of each garment, B_m = 1 (shared) or the latent
            batch; None = garments may appear anywhere.
        record_maps: keep each site's IGL maps A_k (R, T, N) in ``maps`` (training).
    """

    def __init__(
        self,
        config: ReferenceConfig,
        garments: GarmentBank,
        projections: ReferenceProjections | None = None,
        garment_weights: Sequence[float] | None = None,
        garment_masks: torch.Tensor | None = None,
        record_maps: bool = False,
    ) -> None:
        if record_maps and config.mode != ReadMode.CROSS:
            raise ReferenceInputError("IGL's attention maps are recorded in 'cross' mode (eq. 6) only")
        super().__init__(config, mask=None, projections=projections)
        count = garments.count
        if garment_weights is not None and len(garment_weights) != count:
            raise ReferenceInputError(
                f"got {len(garment_weights)} garment strengths for {count} garments: give one per garment"
            )
        if garment_masks is not None and (garment_masks.ndim != 4 or garment_masks.shape[1] != count):
            raise ReferenceInputError(
                f"garment_masks must be (batch, {count}, H, W), one mask per garment; got {tuple(garment_masks.shape)}"
            )
        if garment_weights is not None and any(w < 0 for w in garment_weights):
            raise ReferenceInputError(f"garment strengths must be >= 0, got {list(garment_weights)}")
        uniform = garment_weights is None or all(w == 1.0 for w in garment_weights)
        self.garment_weights = None if uniform else torch.tensor(list(garment_weights), dtype=torch.float32)
        self.garment_masks = garment_masks
        self.segments = garments.segments
        self.record_maps = record_maps
        self.maps: dict[str, torch.Tensor] = {}
        self._garment_tokens: dict[tuple[tuple[int, int], torch.device, torch.dtype], torch.Tensor] = {}
        self.set_bank(garments.bank)

    @property
    def mask_batch(self) -> int | None:
        return None if self.garment_masks is None else self.garment_masks.shape[0]

    def garment_mask_tokens(self, site: AttentionSite, like: torch.Tensor) -> torch.Tensor | None:
        """(R, T, N): each garment's target region on ``site``'s token grid for the reading rows."""
        if self.garment_masks is None:
            return None
        grid = site.token_grid(*self.call.latent_hw)
        key = (grid, like.device, like.dtype)
        tokens = self._garment_tokens.get(key)
        if tokens is None:
            batch, count = self.garment_masks.shape[:2]
            flat = self.garment_masks.to(like.device).flatten(0, 1)  # (B_m·N, H, W)
            tokens = mask_to_tokens(flat, grid).to(like.dtype)  # (B_m·N, T, 1)
            tokens = tokens.reshape(batch, count, -1).transpose(1, 2)  # (B_m, T, N)
            self._garment_tokens[key] = tokens
        return tokens.index_select(0, self.call.plan.mask_rows.to(like.device))

    def cross_attention(self, site: AttentionSite, heads: int) -> CrossAttention:
        """Eq. 6's garment term over N garments, with per-garment weights/masks; records IGL maps."""

        def garment_term(q_read: torch.Tensor, k_ref: torch.Tensor, v_ref: torch.Tensor) -> torch.Tensor:
            weights = None if self.garment_weights is None else self.garment_weights.to(q_read.device)
            term, maps = dressing_attention(
                q_read, k_ref, v_ref, heads, self.segments[site.name], garment_weights=weights,
                garment_masks=self.garment_mask_tokens(site, q_read), want_maps=self.record_maps,
            )
            if maps is not None:
                self.maps[site.name] = maps
            return term

        return garment_term

    def concat_attention(self, site: AttentionSite, heads: int) -> ConcatAttention | None:
        """The joint softmax with each garment's mass scaled by strength × w_k × m_k(q); None when
        every garment has the same strength everywhere (the foundation's concat read)."""
        if self.garment_weights is None and self.garment_masks is None:
            return None
        strength = self.strength_at(site)
        segments = self.segments[site.name]

        def garment_read(q_read, k_own, v_own, k_ref, v_ref):
            weights = q_read.new_full((q_read.shape[0], q_read.shape[1], len(segments)), strength)  # (R, T, N)
            if self.garment_weights is not None:
                weights = weights * self.garment_weights.to(q_read).view(1, 1, -1)
            masks = self.garment_mask_tokens(site, q_read)
            if masks is not None:
                weights = weights * masks
            return garment_concat_attention(q_read, k_own, v_own, k_ref, v_ref, heads, segments, weights)

        return garment_read

    def release(self) -> None:
        # The bank belongs to the caller's GarmentBank (ComfyUI caches it for the next prompt):
        # drop the reference instead of letting ReferenceRun.release clear it.
        self.bank = None
        super().release()
        self.maps.clear()
        self._garment_tokens.clear()
