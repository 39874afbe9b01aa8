"""Human-parsing-guided fusion attention, HPFA (TruePose §4.2, eq. 6–8), host-free.

Symbols (paper → here): F' SourceNet activations, Q', K', V' = W^{Q'}F', W^{K'}F', W^{V'}F'
(``HPFAProjections.to_q / to_k / to_v``, initialised to the layer's attn1 Wq, Wk and the identity);
A' = Q'K'ᵀ/√d per head (``scores``); M the selected parsing mask on the site's token grid;
M' the weight matrix of eq. 6 (``hpfa_weights``); H' = Softmax(A' ⊙ M')V' (eq. 7, ``hidden``);
K'_h, V'_h = W^{K'_h}H', W^{V'_h}H' (``to_k_h / to_v_h``, initialised from the layer's Wk, Wv);
F̃ = Softmax(QK'_hᵀ/√d)V'_h (eq. 8) with Q = W^Q F, the TargetNet layer's own query.
``HPFAProjections.initialise_from`` says why W^{V'} starts as the identity.

Which token axis M is on: A' is a (T', T') map between source tokens, while the paper writes
M_{i,j} with i, j ranging over the h×w grid, i.e. M is a spatial mask of ONE token axis. We apply
it on the **key** axis j: M'[q, j] depends on whether source token j lies in M. The paper's stated
intent is to "reweight the embeddings of F'" and to "assign higher weights to the embeddings ... for
the masked region": weighting keys raises the softmax mass every query puts on masked source
embeddings (1+δ on positive logits, δ on negative ones) and lowers it on unmasked ones (σ on
positive, 1+σ on negative logits), so H' is pulled toward the selected regions' content. On the
query axis the weight would only sharpen or flatten whole rows and could not move mass between
regions. A soft M (area-resized edges) blends the two cases linearly: M' = m·w_in + (1−m)·w_out,
exactly eq. 6 where m ∈ {0, 1}. Logits equal to 0 take the "< 0" weights; A' ⊙ M' is 0 there either way.

Note: no (σ, δ) makes M' ≡ 1, so HPFA never reduces to plain attention through σ and δ; with
σ = δ = 0 the reweighting keeps positive logits in M and negative logits outside M and zeroes the rest.
The source side (H', K'_h, V'_h, A') depends only on F' and M, so hosts compute it once per
sampling run (``hpfa_source``) and only ``hpfa_read`` runs per step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReferenceInputError
from ..reference_attention import multihead_attention
from ..sites import SD15_SITES, AttentionSite


class HPFAShapeError(ReferenceInputError):
    """HPFA inputs whose shapes do not fit together; the message gives the numbers."""


def split_heads(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, H·D) -> (B, H, T, D)."""
    batch, tokens, width = tensor.shape
    return tensor.reshape(batch, tokens, heads, width // heads).transpose(1, 2)  # (B, H, T, D)


def merge_heads(tensor: torch.Tensor) -> torch.Tensor:
    """(B, H, T, D) -> (B, T, H·D)."""
    batch, heads, tokens, head_dim = tensor.shape
    return tensor.transpose(1, 2).reshape(batch, tokens, heads * head_dim)  # (B, T, H·D)


def attention_scores(q: torch.Tensor, k: torch.Tensor, heads: int) -> torch.Tensor:
    """A' = QKᵀ/√d per head: (B, T, H·D) × (B, Tk, H·D) -> (B, H, T, Tk)."""
    if q.shape[-1] % heads:
        raise HPFAShapeError(f"attention width {q.shape[-1]} is not divisible by heads={heads}")
    head_dim = q.shape[-1] // heads
    return split_heads(q, heads) @ split_heads(k, heads).transpose(-1, -2) / math.sqrt(head_dim)  # (B, H, T, Tk)


def hpfa_weights(scores: torch.Tensor, key_mask: torch.Tensor, sigma: float, delta: float) -> torch.Tensor:
    """M' of eq. 6 for scores A' (B, H, T, Tk) and a key-axis mask M (B, Tk, 1) in [0, 1].

    A' > 0 in M: 1 + δ; A' ≤ 0 in M: δ; A' > 0 outside M: σ; A' ≤ 0 outside M: 1 + σ.
    """
    if key_mask.shape[0] != scores.shape[0] or key_mask.shape[1] != scores.shape[-1]:
        raise HPFAShapeError(
            f"parsing mask M has shape {tuple(key_mask.shape)}; expected ({scores.shape[0]}, {scores.shape[-1]}, 1) "
            "for the source tokens of this site"
        )
    positive = scores > 0
    inside = torch.where(positive, 1.0 + delta, delta).to(scores.dtype)
    outside = torch.where(positive, sigma, 1.0 + sigma).to(scores.dtype)
    m = key_mask.to(scores.dtype).reshape(key_mask.shape[0], 1, 1, -1)  # (B, 1, 1, Tk): on the key axis
    return m * inside + (1.0 - m) * outside


def reweighted_attention(scores: torch.Tensor, weights: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """RwSelfAtt of eq. 7: Softmax(A' ⊙ M')V'; scores/weights (B, H, T, Tk), v (B, Tk, H·D) -> (B, T, H·D)."""
    heads = scores.shape[1]
    probabilities = torch.softmax(scores * weights, dim=-1)
    return merge_heads(probabilities @ split_heads(v, heads))  # (B, T, H·D)


@dataclass
class HPFASource:
    """The source side of one HPFA site, computed once per sampling run.

    Attributes:
        hidden: H' (B, T', H·D), eq. 7.
        scores: A' (B, H, T', T'), before reweighting (CAA ranks regions by it).
        k_h, v_h: K'_h, V'_h (B, T', H·D), the keys and values the TargetNet reads (eq. 8).
    """

    hidden: torch.Tensor
    scores: torch.Tensor
    k_h: torch.Tensor
    v_h: torch.Tensor


class HPFAProjections(nn.Module):
    """W^{Q'}, W^{K'}, W^{V'} (on F') and W^{K'_h}, W^{V'_h} (on H') for a set of sites.

    Args:
        site_dims: site name -> (C, inner): width of F' and the attention width of that site.
    """

    def __init__(self, site_dims: Mapping[str, tuple[int, int]]) -> None:
        super().__init__()

        def linears(on_hidden: bool) -> nn.ModuleDict:
            # On F' the input width is C; on H' it is the attention width.
            return nn.ModuleDict({
                name: nn.Linear(inner if on_hidden else c, inner, bias=False) for name, (c, inner) in site_dims.items()
            })

        self.to_q, self.to_k, self.to_v = linears(False), linears(False), linears(False)
        self.to_k_h, self.to_v_h = linears(True), linears(True)

    @classmethod
    def for_sd15(cls, model_channels: int, site_names: tuple[str, ...]) -> HPFAProjections:
        """Projections for SD1.5-layout sites (attention width = channels, as in SD1.5's attn1)."""
        sites = [s for s in SD15_SITES if s.name in site_names]
        return cls({s.name: (s.channels(model_channels), s.channels(model_channels)) for s in sites})

    @torch.no_grad()
    def initialise_from(self, base_qkv: Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        """Start each site as the layer's own attention reading F': W^{Q'}, W^{K'} = Wq, Wk,
        W^{V'} = I, W^{K'_h}, W^{V'_h} = Wk, Wv (base_qkv: site -> attn1 (Wq, Wk, Wv), each (C, C)).

        Eq. 8 reads K'_h = W^{K'_h}W^{V'}·P F' and V'_h = W^{V'_h}W^{V'}·P F', with P = Softmax(A' ⊙ M')
        the eq. 7 mixing over source tokens. The aligned read, the one a plain concatenation of F' gets,
        is Softmax(Q(Wk F')ᵀ/√d)·Wv F', so the compositions must be W^{K'_h}W^{V'} = Wk and
        W^{V'_h}W^{V'} = Wv. With W^{V'} = I, H' = P F' is a mix of F' (it stays in F' space) and the
        untrained HPFA read is exactly the layer's attention over H' in place of F'; it equals the
        aligned read wherever P F' = F'. Copying Wv into both W^{V'} and W^{V'_h} would apply the
        value projection twice (V'_h = Wv Wv P F').
        """
        for name, (weight_q, weight_k, weight_v) in base_qkv.items():
            if weight_v.shape[0] != weight_v.shape[1]:
                raise HPFAShapeError(
                    f"site {name}: attn1 maps width {weight_v.shape[1]} to {weight_v.shape[0]}; W^{{V'}} = I needs "
                    "the attention width to equal the width of F' (as in SD1.5), so initialise this site another way"
                )
            self.to_q[name].weight.copy_(weight_q)
            self.to_k[name].weight.copy_(weight_k)
            self.to_v[name].weight.copy_(torch.eye(weight_v.shape[0], dtype=weight_v.dtype))
            self.to_k_h[name].weight.copy_(weight_k)
            self.to_v_h[name].weight.copy_(weight_v)

    @property
    def site_names(self) -> tuple[str, ...]:
        """Sites that have projections."""
        return tuple(self.to_q.keys())

    def project_source(self, site: AttentionSite, states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Q', K', V' (B, T', inner) of SourceNet activations F' (B, T', C) at ``site``."""
        return tuple(F.linear(states, layer[site.name].weight) for layer in (self.to_q, self.to_k, self.to_v))

    def project_hidden(self, site: AttentionSite, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K'_h, V'_h (B, T', inner) of H' (B, T', inner) at ``site``."""
        return F.linear(hidden, self.to_k_h[site.name].weight), F.linear(hidden, self.to_v_h[site.name].weight)


def hpfa_source(
    projections: HPFAProjections,
    site: AttentionSite,
    source_states: torch.Tensor,
    key_mask: torch.Tensor | None,
    *,
    heads: int,
    sigma: float,
    delta: float,
) -> HPFASource:
    """Eq. 6–7 and the source half of eq. 8 at ``site``.

    Args:
        source_states: F' (B, T', C), SourceNet's activations entering this site's attn1.
        key_mask: M on this site's token grid (B, T', 1) (``parsing_selection.mask_on_grid``); None =
            no parsing guidance, M' ≡ 1 (the paper's "w/o HPFA" ablation B4: eq. 7 is plain attention).
    """
    q_src, k_src, v_src = projections.project_source(site, source_states)
    scores = attention_scores(q_src, k_src, heads)  # (B, H, T', T')
    weights = torch.ones_like(scores) if key_mask is None else hpfa_weights(scores, key_mask, sigma, delta)
    hidden = reweighted_attention(scores, weights, v_src)  # (B, T', H·D)
    k_h, v_h = projections.project_hidden(site, hidden)
    return HPFASource(hidden=hidden, scores=scores, k_h=k_h, v_h=v_h)


def hpfa_read(q: torch.Tensor, source: HPFASource, heads: int) -> torch.Tensor:
    """F̃ of eq. 8: the TargetNet queries Q (B, T, H·D) cross-attend to K'_h, V'_h -> (B, T, H·D).

    A batch of B target rows may read one cached source (B' = 1), which broadcasts.
    """
    k_h, v_h = source.k_h, source.v_h
    if k_h.shape[0] != q.shape[0]:
        if k_h.shape[0] != 1:
            raise HPFAShapeError(
                f"HPFA source has batch {k_h.shape[0]} but the target has {q.shape[0]} rows; use 1 or {q.shape[0]} sources"
            )
        k_h, v_h = k_h.expand(q.shape[0], -1, -1), v_h.expand(q.shape[0], -1, -1)  # (B, T', H·D)
    if k_h.shape[-1] != q.shape[-1]:
        raise HPFAShapeError(f"HPFA keys have width {k_h.shape[-1]} but target queries {q.shape[-1]}")
    return multihead_attention(q, k_h, v_h, heads)
