"""The bank: hidden states entering each self-attention during the reference pass."""

from __future__ import annotations

import torch

from .errors import ReferenceInputError
from .sites import AttentionSite


class ReferenceBank:
    """Per-site reference activations ``n = norm1(x)`` of shape (B_ref, T_ref, C), keyed by site name.

    Written once per sampling run (or per step, see Refresh) and read by every denoiser call.
    The tensors keep the dtype and device the reference pass ran in (the model's compute dtype on
    its load device).

    Args:
        keep_grad: keep the autograd graph of the stored activations (training a reference
            network end to end); by default they are detached.
    """

    def __init__(self, keep_grad: bool = False) -> None:
        self.keep_grad = keep_grad
        self._states: dict[str, torch.Tensor] = {}

    def store(self, site: AttentionSite, hidden: torch.Tensor) -> None:
        """Keep ``hidden`` (B_ref, T_ref, C) for ``site``; a site written twice in one pass is a bug upstream."""
        if site.name in self._states:
            raise ReferenceInputError(
                f"site {site.name} was written twice in one reference pass; the reference network "
                f"must call each self-attention once"
            )
        self._states[site.name] = hidden if self.keep_grad else hidden.detach()

    def get(self, site: AttentionSite) -> torch.Tensor:
        """The stored activations of ``site``."""
        try:
            return self._states[site.name]
        except KeyError:
            raise ReferenceInputError(
                f"the reference pass did not reach site {site.name} (captured: {sorted(self._states)})"
            ) from None

    def __contains__(self, site: AttentionSite) -> bool:
        return site.name in self._states

    def __len__(self) -> int:
        return len(self._states)

    @property
    def site_names(self) -> tuple[str, ...]:
        """Names of the captured sites, in capture order."""
        return tuple(self._states)

    @property
    def batch(self) -> int:
        """B_ref, the number of reference rows (equal at every site)."""
        return next(iter(self._states.values())).shape[0] if self._states else 0

    @property
    def nbytes(self) -> int:
        """Memory held by the bank."""
        return sum(t.numel() * t.element_size() for t in self._states.values())

    def to(self, device: torch.device | str) -> "ReferenceBank":
        """A copy whose tensors live on ``device`` (a bank kept on the offload device between runs)."""
        moved = ReferenceBank(keep_grad=self.keep_grad)
        moved._states = {name: states.to(device) for name, states in self._states.items()}
        return moved

    def expanded(self, rows: int) -> "ReferenceBank":
        """A bank whose one row is shared by ``rows`` rows (one source read under several conditions)."""
        if self.batch != 1:
            raise ReferenceInputError(f"only a bank of one row can be expanded; this one has {self.batch} rows")
        grown = ReferenceBank(keep_grad=self.keep_grad)
        grown._states = {name: states.expand(rows, *states.shape[1:]) for name, states in self._states.items()}  # (rows, T, C)
        return grown

    def clear(self) -> None:
        """Drop every stored tensor."""
        self._states.clear()
