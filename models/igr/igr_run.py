"""The per-sampling-run state of IGR: the foundation's CONCAT read of GarmNet's bank (eq. 4) plus
the IP-Adapter term beside attn2 (eq. 3), routed by the same RowPlan.

Row routing, the schedule gate and the CFG policy are the foundation's (reference_run.py): under
UncondPolicy.NONE the unconditional chunk reads neither GarmNet's bank nor the IP tokens.

IP-only use (no GarmNet bank, the paper's "w/o GarmNet"): construct the run with ``ip_tokens`` and
do not call ``set_bank``; rows are then routed by the IP tokens' batch (``source_batch``) and every
attn1 site stays unpatched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ReferenceInputError
from ..reference_bank import ReferenceBank
from ..reference_config import ReferenceConfig
from ..reference_run import ReferenceRun
from ..sites import AttentionSite
from .ip_adapter import IPAdapter, ip_attention

# (q, k, v, heads) -> (R, T, C): the host's attention (ComfyUI's optimized_attention has this signature).
HeadsAttention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


class IGRRun(ReferenceRun):
    """One sampling (or training) run of IGR.

    Args:
        config: the high-level read (mode CONCAT is eq. 4; ``strength`` s = 1 is exactly the paper).
        ip_adapter: the low-level path's weights; None = no IP term.
        ip_tokens: F_ll, (B_p, N, D) for B_p = 1 (shared) or one per latent; None = no IP term.
        ip_strength: λ_ip of eq. 3 (1 in the paper).
    """

    def __init__(
        self,
        config: ReferenceConfig,
        ip_adapter: IPAdapter | None = None,
        ip_tokens: torch.Tensor | None = None,
        ip_strength: float = 1.0,
    ) -> None:
        super().__init__(config)
        if ip_strength < 0:
            raise ReferenceInputError(f"the IP-Adapter strength must be >= 0, got {ip_strength}")
        if ip_tokens is not None and ip_tokens.ndim != 3:
            raise ReferenceInputError(f"IP tokens must be (batch, tokens, width), got {tuple(ip_tokens.shape)}")
        self.ip_adapter = ip_adapter
        self.ip_tokens = ip_tokens
        self.ip_strength = ip_strength
        self._ip_kv: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def source_batch(self) -> int | None:
        """GarmNet's bank's batch; in an IP-only run (no bank), the IP tokens' batch."""
        if self.bank is not None:
            return self.bank.batch
        return None if self.ip_tokens is None else self.ip_tokens.shape[0]

    def set_bank(self, bank: ReferenceBank) -> None:
        """Install GarmNet's bank; its batch must fit the IP tokens' (equal, or one set of tokens)."""
        tokens = None if self.ip_tokens is None else self.ip_tokens.shape[0]
        if tokens is not None and len(bank) and tokens not in (1, bank.batch):
            raise ReferenceInputError(
                f"GarmNet's bank has {bank.batch} person(s) but the IP tokens have {tokens}: encode the same "
                f"persons for both paths (or one set of IP tokens for all)"
            )
        super().set_bank(bank)

    def ip_strength_at(self, site: AttentionSite) -> float:
        """λ_ip at ``site`` in the current call; 0 = the site's attn2 runs unpatched."""
        if (
            self.call is None or not self.call.active or self.ip_adapter is None or self.ip_tokens is None
            or site.name not in self.ip_adapter.site_names
        ):
            return 0.0
        return self.ip_strength

    def ip_kv(self, site: AttentionSite, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K_ll, V_ll (B_p, N, C) at ``site`` in ``like``'s dtype/device, projected once per run."""
        cached = self._ip_kv.get(site.name)
        if cached is None:
            k, v = self.ip_adapter.kv(site.name, self.ip_tokens)
            cached = (k.to(like), v.to(like))
            self._ip_kv[site.name] = cached
        return cached

    def ip_read(
        self,
        site: AttentionSite,
        q: torch.Tensor,
        text_out: torch.Tensor,
        heads: int,
        attention: HeadsAttention = ip_attention,
    ) -> torch.Tensor:
        """``text_out`` (N, T, C) = Attn(Q, K_c, V_c) before to_out, plus λ_ip·Attn(Q, K_ll, V_ll) on
        the call's reading rows, each with its own person's tokens."""
        strength = self.ip_strength_at(site)
        plan = self.call.plan if self.call is not None else None
        if strength == 0.0 or plan is None or plan.reads_no_row:
            return text_out
        k_ip, v_ip = self.ip_kv(site, q)
        sources = plan.bank_rows if k_ip.shape[0] > 1 else torch.zeros_like(plan.bank_rows)
        sources = sources.to(q.device)
        k_ip, v_ip = k_ip.index_select(0, sources), v_ip.index_select(0, sources)  # (R, N, C)
        if plan.reads_all_rows:
            return text_out + strength * attention(q, k_ip, v_ip, heads)
        rows = plan.rows.to(q.device)
        term = attention(q.index_select(0, rows), k_ip, v_ip, heads)  # (R, T, C)
        return text_out.index_add(0, rows, strength * term)

    def release(self) -> None:
        super().release()
        self._ip_kv.clear()
