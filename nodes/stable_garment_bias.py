"""The second ``to_out.0.bias`` of StableGarment's read, as an ``attn1_output_patch``.

The public read block (``self_attention_modules.py``, ``MODE == "read"``) adds the *whole* frozen
self-attention of the garment tokens, ``attn1(n, encoder_hidden_states=bank)``, to the conditional
rows: ``W_o·Softmax(Q K_gᵀ/√d)V_g + b_o``. Atelier's CROSS read adds the attention term inside
``to_out`` (one ``b_o``), so the public output carries ``b_o`` once more. This patch adds λ·b_o to the
reading rows after ``to_out``, masked like the read (``stable_garment.add_output_bias``).
"""

from __future__ import annotations

from torch import nn

from ..models.garment_networks.stable_garment import add_output_bias
from ..models.sites import site_for_block
from .reference_patch import run_for


class OutputBiasPatch:
    """attn1_output_patch adding each read site's ``to_out.0.bias`` (×λ, masked) to the reading rows.

    Args:
        run_key: where the application's run is found in ``extra_options``.
        layers: site name -> that site's ``attn1.to_out[0]`` in the patched UNet. The bias is taken as
            the layer's output for a zero token, so LoRA-patched and low-VRAM-cast weights apply.
    """

    def __init__(self, run_key: str, layers: dict[str, nn.Module]) -> None:
        self.run_key = run_key
        self.layers = layers

    def __deepcopy__(self, memo) -> OutputBiasPatch:
        return self

    def to(self, device_or_dtype) -> OutputBiasPatch:
        """Nothing to move: the layers belong to the UNet (ComfyUI calls this on load)."""
        return self

    def __call__(self, n, extra_options):
        site = site_for_block(extra_options.get("block"), extra_options.get("block_index", 0))
        if site is None or site.name not in self.layers:
            return n
        run = run_for(extra_options, self.run_key)
        strength = 0.0 if run is None else run.strength_at(site)
        if strength == 0.0:
            return n
        layer = self.layers[site.name]
        bias = layer(n.new_zeros(1, 1, layer.in_features)).reshape(-1)  # (C,): 0·W_o + b_o
        return add_output_bias(n, bias, run.call.plan, run.query_mask(site, n), scale=strength)
