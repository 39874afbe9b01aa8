"""An attention processor that measures what a diffusers self-attention does: the normalised entropy
of its attention rows, its output removed (the self-attention ablation), and how its queries would
treat a reference's tokens in a joint softmax."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...models.sites import SD15_SITES, AttentionSite


@dataclass
class ProbeState:
    """What the probes of one UNet share: whether to zero attn1's output, and what they saw.

    Args:
        ablate: site names whose self-attention output is replaced by zeros.
        entropy: site name -> mean normalised entropy H/log(T) of its last call (1 = uniform).
        reference: site name -> (B, T, C) states of a reference at that site; a probe with one
            also measures how its queries would share a joint softmax with those tokens.
        shares: site name -> (attention mass on the reference tokens, weight of the reference
            token at the query's own position relative to a uniform share of that mass).
    """

    ablate: frozenset[str] = frozenset()
    entropy: dict[str, float] = field(default_factory=dict)
    reference: dict[str, torch.Tensor] = field(default_factory=dict)
    shares: dict[str, tuple[float, float]] = field(default_factory=dict)


def reference_share(qh: torch.Tensor, kh: torch.Tensor, k_ref: torch.Tensor, head_dim: int) -> tuple[float, float]:
    """Under one softmax over [own keys; reference keys] (a CONCAT read), the mean attention mass on
    the reference, and the mean weight on the reference token at the query's own position divided
    by that mass's uniform share (1 = no preference for the same place, T = all of it there).

    Args:
        qh, kh: (B, H, T, D) the layer's own queries and keys.
        k_ref: (B, H, T, D) the reference's keys (same token grid).
    """
    tokens = qh.shape[2]
    weights = torch.softmax(qh @ torch.cat([kh, k_ref], 2).transpose(-1, -2) / math.sqrt(head_dim), dim=-1)  # (B, H, T, 2T)
    on_reference = weights[..., tokens:]  # (B, H, T, T)
    mass = on_reference.sum(-1)  # (B, H, T)
    same_place = torch.diagonal(on_reference, dim1=-2, dim2=-1)  # (B, H, T)
    return float(mass.mean()), float((same_place * tokens / mass.clamp_min(1e-12)).mean())


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
        reference = self.state.reference.get(self.site.name)
        if reference is not None:
            k_ref = attn.to_k(reference).reshape(rows, tokens, heads, head_dim).transpose(1, 2)  # (B, H, T, D)
            self.state.shares[self.site.name] = reference_share(qh, kh, k_ref, head_dim)
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
