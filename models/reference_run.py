"""Per-sampling-run state of one reference application, shared by both hosts.

A run owns the bank, the row plan and the resized masks of the current UNet call. It is created
fresh for every sampling run (ComfyUI caches node outputs, so a patched MODEL is reused by the
next prompt) and dropped at the end, so clones of a patched model never share it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch

from .errors import ReferenceInputError
from .masks import mask_to_tokens
from .reference_attention import ConcatAttention, CrossAttention, PlainAttention, read_reference
from .reference_bank import ReferenceBank
from .reference_config import ReadMode, ReferenceConfig, UncondPolicy
from .reference_projections import ReferenceProjections
from .row_plan import UNCOND_CHUNK, RowPlan, plan_rows
from .sites import AttentionSite

KVProjection = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class CallState:
    """What the current UNet call looks like: its row plan, latent size and schedule gate.

    ``zero_rows``: (R, 1, 1), 0 for reading rows of an unconditional chunk under UncondPolicy.ZERO
    and 1 elsewhere; None when no row reads zeros.
    """

    plan: RowPlan
    latent_hw: tuple[int, int]
    active: bool
    zero_rows: torch.Tensor | None = None


def zero_rows(plan: RowPlan, cond_or_uncond: Sequence[int], policy: UncondPolicy) -> torch.Tensor | None:
    """The reading rows' keep factors under UncondPolicy.ZERO (see CallState), or None."""
    if policy != UncondPolicy.ZERO or UNCOND_CHUNK not in cond_or_uncond:
        return None
    kinds = torch.tensor(list(cond_or_uncond), dtype=torch.long)[plan.rows // plan.latent_batch]  # (R,) chunk of each row
    return (kinds != UNCOND_CHUNK).float().view(-1, 1, 1)  # (R, 1, 1)


class ReferenceRun:
    """State of one sampling run: bank, current call, caches, and read counters.

    Args:
        config: the application's settings.
        mask: optional denoiser-side mask (B_m, H, W) in [0, 1]; any resolution, resized per site.
        projections: learned W'k, W'v (CROSS mode with trained weights); None uses the layer's own.
    """

    def __init__(
        self,
        config: ReferenceConfig,
        mask: torch.Tensor | None = None,
        projections: ReferenceProjections | None = None,
    ) -> None:
        if projections is not None and config.mode != ReadMode.CROSS:
            raise ReferenceInputError(
                f"learned reference projections need read mode 'cross', got {config.mode.value!r}"
            )
        self.config = config
        self.mask = mask
        self.projections = projections
        self.bank: ReferenceBank | None = None
        self.call: CallState | None = None
        self.reads: Counter[str] = Counter()
        self.bank_writes = 0
        self._plans: dict[tuple[int, tuple[int, ...], UncondPolicy], RowPlan] = {}
        self._mask_tokens: dict[tuple[tuple[int, int], torch.device, torch.dtype], torch.Tensor] = {}
        self._projected: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def set_bank(self, bank: ReferenceBank) -> None:
        """Install a freshly written bank (drops caches derived from the previous one)."""
        self.bank = bank
        self.bank_writes += 1
        self._plans.clear()
        self._projected.clear()

    def begin_call(
        self,
        total_rows: int,
        cond_or_uncond: Sequence[int],
        latent_hw: tuple[int, int],
        active: bool,
        uncond: UncondPolicy | None = None,
    ) -> None:
        """Describe the UNet call about to run; hosts call this once per call, before any site.

        ``uncond`` overrides the config's policy for this call only (AnyDressing's garment guidance
        runs one extra unconditional pass that does read the garments).
        """
        sources = self.source_batch
        if sources is None:
            raise RuntimeError("begin_call before the reference bank was written")
        policy = self.config.uncond if uncond is None else uncond
        key = (total_rows, tuple(cond_or_uncond), policy)
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_rows(total_rows, cond_or_uncond, sources, policy, self.mask_batch)
            self._plans[key] = plan
        self.call = CallState(plan=plan, latent_hw=latent_hw, active=active, zero_rows=zero_rows(plan, cond_or_uncond, policy))

    @property
    def source_batch(self) -> int | None:
        """How many reference sources the rows are routed to (the bank's batch), or None before one
        is known. A subclass whose sources exist without a bank (IGR's IP-only run) overrides it."""
        return None if self.bank is None else self.bank.batch

    @property
    def mask_batch(self) -> int | None:
        """Batch of the denoiser-side mask (1 = shared by every latent), or None without one."""
        return None if self.mask is None else self.mask.shape[0]

    def strength_at(self, site: AttentionSite) -> float:
        """Strength to use at ``site`` in the current call; 0 = leave the site unpatched."""
        if self.call is None or not self.call.active or self.bank is None or site not in self.bank:
            return 0.0
        return self.config.strength_at(site)

    def query_mask(self, site: AttentionSite, like: torch.Tensor) -> torch.Tensor | None:
        """The mask on ``site``'s token grid for the reading rows, (R, T, 1), or None."""
        if self.mask is None:
            return None
        grid = site.token_grid(*self.call.latent_hw)
        key = (grid, like.device, like.dtype)
        tokens = self._mask_tokens.get(key)
        if tokens is None:
            tokens = mask_to_tokens(self.mask.to(like.device), grid).to(like.dtype)  # (B_m, T, 1)
            self._mask_tokens[key] = tokens
        return tokens.index_select(0, self.call.plan.mask_rows.to(like.device))

    def reference_kv(self, site: AttentionSite, layer_projection: KVProjection) -> tuple[torch.Tensor, torch.Tensor]:
        """K', V' of the bank at ``site`` for the current call's reading rows, (R, T_ref, inner) each.

        The whole bank is projected once per bank write and cached: with the learned W'k, W'v when
        the run has them, else with ``layer_projection`` (the site's own to_k / to_v).
        """
        projected = self._projected.get(site.name)
        if projected is None:
            project = layer_projection if self.projections is None else partial(self.projections.project, site)
            projected = project(self.bank.get(site))  # (B_ref, T_ref, inner) each
            self._projected[site.name] = projected
        bank_rows = self.call.plan.bank_rows.to(projected[0].device)
        k_ref, v_ref = projected[0].index_select(0, bank_rows), projected[1].index_select(0, bank_rows)
        keep = self.call.zero_rows
        if keep is not None:  # UncondPolicy.ZERO: the unconditional rows read zero tokens
            keep = keep.to(device=k_ref.device, dtype=k_ref.dtype)
            k_ref, v_ref = k_ref * keep, v_ref * keep
        return k_ref, v_ref

    def read(
        self,
        site: AttentionSite,
        q: torch.Tensor,
        k_self: torch.Tensor,
        v_self: torch.Tensor,
        k_ref: torch.Tensor,
        v_ref: torch.Tensor,
        heads: int,
        plain_attention: PlainAttention,
    ) -> torch.Tensor:
        """Run the configured read at ``site`` (k_ref / v_ref already for the reading rows)."""
        self.reads[site.name] += 1
        return read_reference(
            q,
            k_self,
            v_self,
            k_ref,
            v_ref,
            heads=heads,
            mode=self.config.mode,
            strength=self.strength_at(site),
            plan=self.call.plan,
            query_mask=self.query_mask(site, q),
            plain_attention=plain_attention,
            cross_attention=self.cross_attention(site, heads),
            concat_attention=self.concat_attention(site, heads),
        )

    def cross_attention(self, site: AttentionSite, heads: int) -> CrossAttention | None:
        """The CROSS term at ``site``; None = one softmax over the whole bank (a subclass may split it)."""
        return None

    def concat_attention(self, site: AttentionSite, heads: int) -> ConcatAttention | None:
        """The CONCAT read at ``site``; None = one softmax with the strength as a logit bias (a subclass may split it)."""
        return None

    def release(self) -> None:
        """Drop every tensor the run holds (end of sampling, also after an error)."""
        if self.bank is not None:
            self.bank.clear()
        self.bank = None
        self.call = None
        self._plans.clear()
        self._mask_tokens.clear()
        self._projected.clear()
