"""The ComfyUI host of reference attention: attn1 patches on a ModelPatcher clone.

Per site the read needs the layer's projections of the bank; ComfyUI hands replace patches
already-projected q/k/v and no access to the layer, so the bank is appended to the attn1 context
by an ``attn1_patch`` (to_k / to_v project it with the layer's own, LoRA-patched weights) and the
``attn1`` replace patch splits it off again and does the weighted read. Learned projections
(W'k, W'v) skip the append and project the stored activations inside the replace patch.

Patch objects hold no run state: they look the run up in ``extra_options[run_key]``, which the
OUTER_SAMPLE wrapper (reference_attachment.py) creates per sampling run. They survive
``ModelPatcher.clone()`` as the same object (``__deepcopy__``), so clones share weights.
"""

from __future__ import annotations

import torch
from comfy.ldm.modules.attention import optimized_attention

from ..models.reference_bank import ReferenceBank
from ..models.reference_run import ReferenceRun
from ..models.sites import AttentionSite, site_for_block


def run_for(extra_options: dict, run_key: str) -> ReferenceRun | None:
    """The ReferenceRun of this sampling run, or None outside one."""
    comfy_run = extra_options.get(run_key)
    return None if comfy_run is None else comfy_run.run


class ReferenceWritePatch:
    """attn1_patch for the reference pass: stores ``n = norm1(x)`` of every wanted site in ``bank``."""

    def __init__(self, bank: ReferenceBank, site_names: tuple[str, ...]) -> None:
        self.bank = bank
        self.site_names = frozenset(site_names)

    def __call__(self, n, context_attn1, value_attn1, extra_options):
        site = site_for_block(extra_options.get("block"), extra_options.get("block_index", 0))
        if site is not None and site.name in self.site_names:
            self.bank.store(site, n)
        return n, context_attn1, value_attn1


class ReferenceAppendPatch:
    """attn1_patch on the sampled model: appends the site's bank tokens to the attn1 context/value
    of every row, so the layer's to_k / to_v project them (layer-projection runs only)."""

    def __init__(self, run_key: str) -> None:
        self.run_key = run_key

    def __deepcopy__(self, memo) -> "ReferenceAppendPatch":
        return self

    def __call__(self, n, context_attn1, value_attn1, extra_options):
        run = run_for(extra_options, self.run_key)
        site = site_for_block(extra_options.get("block"), extra_options.get("block_index", 0))
        if run is None or site is None or not run.uses_layer_projection or run.strength_at(site) == 0.0:
            return n, context_attn1, value_attn1
        reference = run.reference_rows(site, run.call.plan.fill_rows).to(context_attn1)  # (N, T_ref, C)
        return (
            n,
            torch.cat([context_attn1, reference], dim=1),  # (N, T + T_ref, C)
            torch.cat([value_attn1, reference], dim=1),
        )


class ReferenceReadPatch:
    """attn1 replace patch of one site: the weighted read of the bank.

    Args:
        site: the site it is installed at.
        run_key: where to find the run in ``extra_options``.
        previous: a replace patch that was already installed at this site (another node's); it
            stays in charge of the plain attention, so patches chain instead of overwriting.
    """

    def __init__(self, site: AttentionSite, run_key: str, previous=None) -> None:
        self.site = site
        self.run_key = run_key
        self.previous = previous

    def __deepcopy__(self, memo) -> "ReferenceReadPatch":
        return self

    def to(self, device_or_dtype) -> "ReferenceReadPatch":
        """Nothing to move: the patch holds no tensors (ComfyUI calls this on load)."""
        return self

    def plain(self, q, k, v, extra_options):
        """The attention this site would compute without us (or the previous patch's)."""
        if self.previous is not None:
            return self.previous(q, k, v, extra_options)
        return optimized_attention(
            q, k, v, extra_options["n_heads"], attn_precision=extra_options.get("attn_precision"),
            transformer_options=extra_options,
        )

    def __call__(self, q, k, v, extra_options):
        run = run_for(extra_options, self.run_key)
        if run is None or run.strength_at(self.site) == 0.0:
            return self.plain(q, k, v, extra_options)
        if run.uses_layer_projection:
            reference_tokens = run.bank.get(self.site).shape[1]
            rows = run.call.plan.rows.to(q.device)
            k_self, k_ref = k[:, :-reference_tokens], k[:, -reference_tokens:].index_select(0, rows)  # (N, T, ·), (R, T_ref, ·)
            v_self, v_ref = v[:, :-reference_tokens], v[:, -reference_tokens:].index_select(0, rows)
        else:
            k_self, v_self = k, v
            k_ref, v_ref = run.learned_kv(self.site)

        def plain(q_, k_, v_):
            return self.plain(q_, k_, v_, extra_options)

        return run.read(self.site, q, k_self, v_self, k_ref.to(q), v_ref.to(q), extra_options["n_heads"], plain)
