"""The per-sampling-run state of TruePose: HPFA (eq. 6–8) and CAA (eq. 9) added to the TargetNet's
attn1 as the foundation's CROSS pattern, plus the pose encoder's features after conv_in.

Source side (once per run, in ``set_bank``): the bank holds SourceNet's attn1 inputs F' at every
HPFA site. For each site, ``hpfa_source`` with M on that site's token grid gives K'_h, V'_h; for each
CAA site, A' ranks the parsing regions (``region_average_scores`` / ``lowest_regions``) and the K
lowest regions' CLIP embeddings are projected to K_clip, V_clip. A' is dropped right after the
ranking (heads·T'² values per source row, 8·T'² in SD1.5: the largest tensor of the run).

Per step, at a TargetNet attn1 site with the layer's own Q:
``out = SelfAttn(Q, K, V) + s_hpfa·F̃ + s_caa·F̂``, before to_out, on the rows that read the source;
F̃ = ``hpfa_read`` (eq. 8) and F̂ = Softmax(W^{Q̃}F̃ · K_clipᵀ/√d)V_clip (``caa.caa_read`` with the
projected K_clip, V_clip cached). Row routing, the schedule gate and the CFG policy are the
foundation's (RowPlan): under UncondPolicy.NONE the unconditional chunk gets neither the source
terms nor the pose features (TruePose's condition dropout drops both together).

Strengths: s_hpfa at a site is the ReferenceConfig's ``strength_at`` (strength × site weight);
s_caa is ``caa_strength`` × the same site weight, so CAA can be switched on or off alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch

from ..errors import ReferenceInputError
from ..reference_attention import PlainAttention
from ..reference_bank import ReferenceBank
from ..reference_config import ReadMode, ReferenceConfig
from ..reference_run import CallState, ReferenceRun
from ..sites import AttentionSite, sites_named
from .caa import (
    CAAProjections,
    caa_attend,
    lowest_regions,
    padding_bias,
    region_average_scores,
    select_clip_embeddings,
)
from .config import TruePoseConfig
from .hpfa import HPFAProjections, HPFASource, hpfa_read, hpfa_source
from .parsing_selection import mask_on_grid

logger = logging.getLogger("atelier.models.truepose.truepose_run")


class TruePoseInputError(ReferenceInputError):
    """TruePose run inputs (source mask, regions, CLIP embeddings, pose features) that do not fit."""


@dataclass(frozen=True)
class TruePoseSource:
    """What the run needs about the source image(s) besides SourceNet's bank.

    Args:
        mask: M (B_m, H, W) in [0, 1], ``selected_source_mask`` of each source for its target pose;
            B_m = 1 (one mask for every source) or the bank's batch.
        latent_hw: (h, w) of the source latent z_s the bank was captured from (token grids).
        region_masks: (B_s, R, H, W) masks of the source's parsing regions (``caa.caa_regions`` order,
            zero for an absent region); None = no CAA.
        clip_embeds: (B_s, R, E) CLIP embedding of each region's crop, same region order; None = no CAA.
    """

    mask: torch.Tensor
    latent_hw: tuple[int, int]
    region_masks: torch.Tensor | None = None
    clip_embeds: torch.Tensor | None = None

    @property
    def has_regions(self) -> bool:
        """True when CAA inputs were given."""
        return self.region_masks is not None and self.clip_embeds is not None


@dataclass(frozen=True)
class ClipSide:
    """CAA's source side at one site: K_clip, V_clip (B_s, K, inner) and the (B_s, 1, 1, K) logit bias
    that hides padded picks (-inf) of sources with fewer than K present regions."""

    k: torch.Tensor
    v: torch.Tensor
    bias: torch.Tensor


@dataclass(frozen=True)
class SiteSource:
    """One HPFA site's per-run source side (A' already dropped) and, at CAA sites, CAA's."""

    hpfa: HPFASource
    clip: ClipSide | None


class TruePoseRun(ReferenceRun):
    """One sampling (or training) run of TruePose's TargetNet.

    Args:
        config: schedule, CFG policy, site weights and s_hpfa (``strength``); mode must be CROSS.
        truepose: the model's settings (sites, σ, δ, K).
        hpfa: HPFA projections.
        site_heads: site name -> attention heads of that site's attn1.
        source: M, the source latent size and CAA's region inputs.
        caa: CAA projections; None = no CAA term.
        caa_strength: s_caa (0 = off).
        pose_features: pose encoder output (B_p, C, h, w) for B_p = 1 or one per latent; None = none.
    """

    def __init__(
        self,
        config: ReferenceConfig,
        truepose: TruePoseConfig,
        hpfa: HPFAProjections,
        site_heads: Mapping[str, int],
        source: TruePoseSource,
        caa: CAAProjections | None = None,
        caa_strength: float = 1.0,
        pose_features: torch.Tensor | None = None,
    ) -> None:
        if config.mode != ReadMode.CROSS:
            raise TruePoseInputError(f"TruePose adds its terms to attn1 (read mode 'cross'); got {config.mode.value!r}")
        if caa_strength < 0:
            raise TruePoseInputError(f"the CAA strength must be >= 0, got {caa_strength}")
        if source.mask.ndim != 3:
            raise TruePoseInputError(f"the selected source mask M must be (B, H, W), got {tuple(source.mask.shape)}")
        if pose_features is not None and pose_features.ndim != 4:
            raise TruePoseInputError(f"pose features must be (B, C, h, w), got {tuple(pose_features.shape)}")
        super().__init__(config)
        self.truepose = truepose
        self.hpfa = hpfa
        self.site_heads = dict(site_heads)
        self.source = source
        self.caa = caa
        self.caa_strength = caa_strength
        self.pose_features = pose_features
        self.source_builds = 0
        self._sources: dict[str, SiteSource] = {}

    def set_bank(self, bank: ReferenceBank) -> None:
        """Install SourceNet's bank and compute every site's source side from it (once per run)."""
        super().set_bank(bank)
        self._sources = {site.name: self._site_source(site, bank) for site in sites_named(self.truepose.hpfa_sites)
                         if site in bank}
        self.source_builds += 1
        missing = [name for name in self.truepose.hpfa_sites if name not in self._sources]
        if missing:
            logger.warning("SourceNet's bank has no activations at HPFA site(s) %s; they run unpatched", missing)

    def _source_rows(self, tensor: torch.Tensor, batch: int, what: str) -> torch.Tensor:
        """``tensor`` (1 or batch, ...) expanded to ``batch`` rows."""
        if tensor.shape[0] == batch:
            return tensor
        if tensor.shape[0] != 1:
            raise TruePoseInputError(f"the {what} has batch {tensor.shape[0]} but there are {batch} source(s); give 1 or {batch}")
        return tensor.expand(batch, *tensor.shape[1:])

    def _site_source(self, site: AttentionSite, bank: ReferenceBank) -> SiteSource:
        # F' (B_s, T', C) in the projections' dtype: the source side is computed once, at their precision
        states = bank.get(site).to(self.hpfa.to_q[site.name].weight.dtype)
        batch, tokens = states.shape[:2]
        grid = site.token_grid(*self.source.latent_hw)
        if grid[0] * grid[1] != tokens:
            raise TruePoseInputError(
                f"SourceNet's bank has {tokens} tokens at {site.name} but a {self.source.latent_hw} source latent "
                f"gives a {grid} grid; pass the latent size the bank was captured from"
            )
        key_mask = None
        if self.truepose.parsing_guidance:
            key_mask = mask_on_grid(self.source.mask.to(states.device), grid).to(states.dtype)  # (B_m, T', 1)
            key_mask = self._source_rows(key_mask, batch, "selected source mask M")
        full = hpfa_source(self.hpfa, site, states, key_mask, heads=self.site_heads[site.name],
                           sigma=self.truepose.sigma, delta=self.truepose.delta)
        clip = None
        if self.caa is not None and self.source.has_regions and site.name in self.truepose.caa_sites:
            clip = self._clip_side(site, full.scores, grid, batch)
        return SiteSource(hpfa=replace(full, scores=full.scores.new_empty(0)), clip=clip)

    def _clip_side(self, site: AttentionSite, scores: torch.Tensor, grid: tuple[int, int], batch: int) -> ClipSide:
        regions = self._source_rows(self.source.region_masks.to(scores.device), batch, "region masks")  # (B_s, R, H, W)
        embeds = self._source_rows(self.source.clip_embeds.to(scores), batch, "CLIP region embeddings")  # (B_s, R, E)
        if regions.ndim != 4 or embeds.ndim != 3 or regions.shape[1] != embeds.shape[1]:
            raise TruePoseInputError(
                f"region masks {tuple(regions.shape)} and CLIP embeddings {tuple(embeds.shape)} must be (B, R, H, W) "
                "and (B, R, E) with the same R"
            )
        count = regions.shape[1]
        on_grid = mask_on_grid(regions.flatten(0, 1), grid).to(scores.dtype)  # (B_s·R, T', 1)
        on_grid = on_grid.reshape(batch, count, -1, 1)  # (B_s, R, T', 1)
        indices, valid = lowest_regions(region_average_scores(scores, on_grid), self.truepose.k)  # (B_s, K) each
        k_clip, v_clip = self.caa.project_clip(site, select_clip_embeddings(embeds, indices))  # (B_s, K, inner)
        return ClipSide(k=k_clip, v=v_clip, bias=padding_bias(valid, k_clip))  # bias (B_s, 1, 1, K)

    def caa_strength_at(self, site: AttentionSite) -> float:
        """s_caa at ``site`` in the current call; 0 where the site has no CAA source side."""
        source = self._sources.get(site.name)
        if self.call is None or not self.call.active or source is None or source.clip is None:
            return 0.0
        return self.caa_strength * self.config.site_weights.get(site.name, 0.0)

    def patches(self, site: AttentionSite) -> bool:
        """True when ``site``'s attn1 must run the fused read in the current call."""
        if site.name not in self._sources or self.call is None or self.call.plan.reads_no_row:
            return False
        return self.strength_at(site) > 0.0 or self.caa_strength_at(site) > 0.0

    def fuse(self, site: AttentionSite, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
             plain_attention: PlainAttention) -> torch.Tensor:
        """SelfAttn(Q, K, V) (N, T, C) with s_hpfa·F̃ + s_caa·F̂ added on the reading rows, before to_out."""
        self.reads[site.name] += 1
        plan = self.call.plan
        plain = plain_attention(q, k, v)  # (N, T, C)
        source = self._sources[site.name]
        rows, source_rows = plan.rows.to(q.device), plan.bank_rows.to(q.device)
        routed = replace(source.hpfa, k_h=source.hpfa.k_h.index_select(0, source_rows).to(q),
                         v_h=source.hpfa.v_h.index_select(0, source_rows).to(q))  # (R, T', C)
        fused = hpfa_read(q.index_select(0, rows), routed, heads)  # F̃ (R, T, C)
        delta = self.strength_at(site) * fused
        caa_strength = self.caa_strength_at(site)
        if caa_strength > 0.0:
            delta = delta + caa_strength * self._caa_term(site, fused, source.clip, source_rows, heads)
        return plain.index_add(0, rows, delta)

    def _caa_term(self, site: AttentionSite, fused: torch.Tensor, clip: ClipSide, source_rows: torch.Tensor,
                  heads: int) -> torch.Tensor:
        """F̂ of eq. 9 for F̃ (R, T, C), with the run's cached K_clip, V_clip of each row's source."""
        k_clip = clip.k.index_select(0, source_rows).to(fused)  # (R, K, C)
        v_clip = clip.v.index_select(0, source_rows).to(fused)
        return caa_attend(self.caa, site, fused, k_clip, v_clip, clip.bias.index_select(0, source_rows).to(fused), heads)

    def add_pose(self, features: torch.Tensor) -> torch.Tensor:
        """conv_in's output (N, C, h, w) plus the pose features on the call's reading rows."""
        return add_pose_features(self.call, features, self.pose_features)

    def release(self) -> None:
        super().release()
        self._sources.clear()
        self.pose_features = None


def add_pose_features(call: CallState | None, features: torch.Tensor, pose_features: torch.Tensor | None) -> torch.Tensor:
    """conv_in's output (N, C, h, w) plus ``pose_features`` (B_p, C, h, w) on the rows of ``call`` that read
    the source, B_p = 1 (one pose for every latent) or one per latent; unchanged outside an active call.
    Shared by TruePoseRun and any run that adds the pose encoder (the trainer's concat baseline)."""
    if pose_features is None or call is None or not call.active or call.plan.reads_no_row:
        return features
    if pose_features.shape[1:] != features.shape[1:]:
        raise TruePoseInputError(
            f"pose features are {tuple(pose_features.shape[1:])} but conv_in gives {tuple(features.shape[1:])}: "
            "draw the target skeleton at the sampled image's size (the pose encoder's latent_factor × the latent: "
            "8 for SD1.5) and use a TruePose file made for this model's VAE"
        )
    plan = call.plan
    poses = pose_features.shape[0]
    if poses not in (1, plan.latent_batch):
        raise TruePoseInputError(
            f"the target pose batch is {poses} but the latent batch is {plan.latent_batch}: connect one pose "
            "(shared by every latent) or exactly one per latent"
        )
    rows = plan.rows.to(features.device)
    pose_rows = rows % plan.latent_batch if poses > 1 else torch.zeros_like(rows)
    return features.index_add(0, rows, pose_features.to(features).index_select(0, pose_rows))  # pose (R, C, h, w)
