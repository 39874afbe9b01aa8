"""An attention processor that measures what a diffusers self-attention does: the normalised entropy
of its attention rows, and its output removed (the self-attention ablation)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...models.sites import SD15_SITES, AttentionSite


@dataclass
class ProbeState:
    """What the probes of one UNet share: whether to zero attn1's output, and the entropies seen.

    Args:
        ablate: site names whose self-attention output is replaced by zeros.
        entropy: site name -> mean normalised entropy H/log(T) of its last call (1 = uniform).
    """

    ablate: frozenset[str] = frozenset()
    entropy: dict[str, float] = field(default_factory=dict)


class AttentionProbe:
    """attn1 processor of one site: plain self-attention with explicit softmax, recording its
    normalised entropy into ``state`` and zeroing the output where ``state.ablate`` names the site.

    Args:
        site: the site it sits on.
        state: the shared ProbeState.
    """

    def __init__(self, site: AttentionSite, state: ProbeState) -> None:
        self.site = site
        self.state = state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        rows, tokens, width = q.shape
        heads = attn.heads
        head_dim = width // heads
        qh, kh, vh = (t.reshape(rows, tokens, heads, head_dim).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        weights = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)  # (B, H, T, T)
        if tokens > 1:
            entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1) / math.log(tokens)  # (B, H, T)
            self.state.entropy[self.site.name] = float(entropy.mean())
        out = (weights @ vh).transpose(1, 2).reshape(rows, tokens, width)  # (B, T, H·D)
        if self.site.name in self.state.ablate:
            out = torch.zeros_like(out)
        return attn.to_out[1](attn.to_out[0](out))


class ProbedUNet:
    """Context manager that puts an AttentionProbe on every attn1 site of a diffusers SD1.5 UNet and
    restores the original processors on exit.

    Args:
        unet: the UNet2DConditionModel.
        state: the ProbeState the probes share.
    """

    def __init__(self, unet, state: ProbeState) -> None:
        self.unet = unet
        self.state = state
        self._original: dict | None = None

    def __enter__(self) -> "ProbedUNet":
        self._original = self.unet.attn_processors
        replaced = dict(self._original)
        for site in SD15_SITES:
            replaced[f"{site.diffusers_attn1}.processor"] = AttentionProbe(site, self.state)
        self.unet.set_attn_processor(replaced)
        return self

    def __exit__(self, *exc) -> None:
        self.unet.set_attn_processor(self._original)
        self._original = None
