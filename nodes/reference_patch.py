"""The ComfyUI host of reference attention: attn1 patches on a ModelPatcher clone.

ComfyUI hands an ``attn1`` replace patch already-projected q/k/v of the layer's own tokens. The
patch projects the bank itself, with the site's own attention module (so LoRA-patched and
low-VRAM-cast weights apply exactly as in the layer) or with learned W'k, W'v, once per bank
write, and then does the weighted read. The layer's own k/v are never recomputed, so rows, tokens
and sites that do not read the reference stay bit-identical to the unpatched model.

Patch objects hold no run state: they look the run up in ``extra_options[run_key]``, which the
OUTER_SAMPLE wrapper (reference_attachment.py) creates per sampling run. They survive
``ModelPatcher.clone()`` as the same object (``__deepcopy__``), so clones share weights.
"""

from __future__ import annotations

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


class ReferenceReadPatch:
    """attn1 replace patch of one site: the weighted read of the bank.

    Args:
        site: the site it is installed at.
        attention: that site's ``CrossAttention`` module in the patched UNet (for to_k / to_v).
        run_key: where to find the run in ``extra_options``.
        previous: a replace patch that was already installed at this site (another node's); it
            stays in charge of the plain attention, so patches chain instead of overwriting.
    """

    def __init__(self, site: AttentionSite, attention, run_key: str, previous=None) -> None:
        self.site = site
        self.attention = attention
        self.run_key = run_key
        self.previous = previous

    def __deepcopy__(self, memo) -> "ReferenceReadPatch":
        return self

    def to(self, device_or_dtype) -> "ReferenceReadPatch":
        """Nothing to move: the patch holds no tensors of its own (ComfyUI calls this on load)."""
        return self

    def plain(self, q, k, v, extra_options):
        """The attention this site would compute without us (or the previous patch's)."""
        if self.previous is not None:
            return self.previous(q, k, v, extra_options)
        return optimized_attention(
            q, k, v, extra_options["n_heads"], attn_precision=extra_options.get("attn_precision"),
            transformer_options=extra_options,
        )

    def project(self, states):
        """The site's own K, V of reference activations (B_ref, T_ref, C)."""
        return self.attention.to_k(states), self.attention.to_v(states)

    def __call__(self, q, k, v, extra_options):
        run = run_for(extra_options, self.run_key)
        if run is None or run.strength_at(self.site) == 0.0:
            return self.plain(q, k, v, extra_options)
        k_ref, v_ref = run.reference_kv(self.site, self.project)  # (R, T_ref, inner) each

        def plain(q_, k_, v_):
            return self.plain(q_, k_, v_, extra_options)

        return run.read(self.site, q, k, v, k_ref.to(q), v_ref.to(q), extra_options["n_heads"], plain)
