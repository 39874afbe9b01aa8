"""Installs TruePose on a ModelPatcher: HPFA/CAA at the TargetNet's attn1 sites and the pose encoder's
features after conv_in, both on the rows that read the source (models/truepose/truepose_run.py).

Per sampling run (the foundation's OUTER_SAMPLE wrapper): a fresh TruePoseRun gets SourceNet's
cached bank and computes the source side once (M on each token grid, H', K'_h, V'_h, CAA's region
ranking and K^clip, V^clip). On the first UNet call the target skeleton is drawn at 8× the latent
size and encoded once. Per step only eq. 8 and eq. 9's read run. ``Refresh.EVERY_STEP`` in the
config instead reruns SourceNet and the whole source side at every step (the benchmark's baseline).
Rows of the unconditional CFG chunk get neither (UncondPolicy.NONE), as condition dropout trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_patcher
import numpy as np
import torch
import torch.nn.functional as F

from ..models.pose import BodyPose
from ..models.reference_config import ReferenceConfig, Refresh
from ..models.sites import AttentionSite
from ..models.truepose.caa import CAAProjections
from ..models.truepose.config import TruePoseConfig
from ..models.truepose.hpfa import HPFAProjections
from ..models.truepose.pose_encoder import (
    LATENT_FACTOR,
    PoseEncoder,
    draw_target_skeleton,
)
from ..models.truepose.truepose_run import TruePoseRun, TruePoseSource
from .reference_attachment import ReferenceAttachment
from .reference_patch import ReferenceReadPatch, run_for
from .truepose_source import PoseSource, SourceNetReference

FIRST_INPUT_BLOCK = ("input", 0)


class TruePoseReadPatch(ReferenceReadPatch):
    """attn1 replace patch of one HPFA site: SelfAttn + s_hpfa·F̃ + s_caa·F̂ on the reading rows."""

    def __call__(self, q, k, v, extra_options):
        run = run_for(extra_options, self.run_key)
        if run is None or not run.patches(self.site):
            return self.plain(q, k, v, extra_options)

        def plain(q_, k_, v_):
            return self.plain(q_, k_, v_, extra_options)

        return run.fuse(self.site, q, k, v, extra_options["n_heads"], plain)


class PoseInputPatch:
    """input_block_patch: after input block 0 (conv_in), add the run's pose features on its reading rows."""

    def __init__(self, run_key: str) -> None:
        self.run_key = run_key

    def __deepcopy__(self, memo) -> "PoseInputPatch":
        return self

    def __call__(self, h: torch.Tensor, transformer_options: dict) -> torch.Tensor:
        if transformer_options.get("block") != FIRST_INPUT_BLOCK:
            return h
        run = run_for(transformer_options, self.run_key)
        return h if run is None else run.add_pose(h)


@dataclass(frozen=True)
class TargetPose:
    """The target pose(s): skeletons drawn from ``poses`` at the sampled size, or a given skeleton IMAGE.

    Attributes:
        poses: one BodyPose per target (used when ``skeleton`` is None).
        skeleton: (B_k, H, W, 3) ready skeleton images in [0, 1], resized to the sampled size; or None.
    """

    poses: tuple[BodyPose, ...]
    skeleton: torch.Tensor | None = None

    def images(self, latent_hw: tuple[int, int]) -> torch.Tensor:
        """(B_p, 3, 8h, 8w) skeleton images in [0, 1] for a latent of ``latent_hw``."""
        height, width = latent_hw[0] * LATENT_FACTOR, latent_hw[1] * LATENT_FACTOR
        if self.skeleton is not None:
            channels_first = self.skeleton[..., :3].permute(0, 3, 1, 2).float()  # (B_k, 3, H, W)
            return F.interpolate(channels_first, size=(height, width), mode="bilinear", align_corners=False)
        drawn = np.stack([draw_target_skeleton(pose, height, width) for pose in self.poses])  # (B_p, H, W, 3) uint8
        return torch.from_numpy(drawn).permute(0, 3, 1, 2).float() / 255.0  # (B_p, 3, H, W)


class TruePoseAttachment(ReferenceAttachment):
    """One TruePose application on a MODEL clone.

    Args:
        config: CROSS mode at the HPFA sites; ``strength`` is s_hpfa; ``refresh`` ONCE (the node) or
            EVERY_STEP (rerun SourceNet and the source side every step; benchmark only).
        truepose: the model's settings with the node's σ, δ, K.
        hpfa, caa, pose_encoder: the weight file's modules (caa None = no CAA term).
        source: Encode Pose Source's output.
        masks: M (B_m, H, W), the selected source parsing mask of each (source, target pose) row.
        target: the target pose(s) for the pose encoder.
        caa_strength: s_caa.
        site_heads: site name -> heads of that site's attn1.
        weights_patcher: the loader's ModelPatcher of the three modules (loads them with the UNet).
    """

    def __init__(self, config: ReferenceConfig, truepose: TruePoseConfig, hpfa: HPFAProjections,
                 caa: CAAProjections | None, pose_encoder: PoseEncoder, source: PoseSource, masks: torch.Tensor,
                 target: TargetPose, caa_strength: float, site_heads: dict[str, int],
                 weights_patcher: comfy.model_patcher.ModelPatcher | None = None) -> None:
        recompute = None
        if config.refresh == Refresh.EVERY_STEP:
            recompute = SourceNetReference(source, truepose.hpfa_sites, max(masks.shape[0], source.batch))
        super().__init__(config, recompute)
        self.truepose = truepose
        self.hpfa = hpfa
        self.caa = caa
        self.pose_encoder = pose_encoder
        self.pose_source = source
        self.masks = masks
        self.target = target
        self.caa_strength = caa_strength
        self.site_heads = site_heads
        self.weights_patcher = weights_patcher

    def read_patch(self, site: AttentionSite, attention, previous) -> TruePoseReadPatch:
        return TruePoseReadPatch(site, attention, self.run_key, previous)

    def install(self, model: comfy.model_patcher.ModelPatcher) -> None:
        super().install(model)
        model.set_model_input_block_patch(PoseInputPatch(self.run_key))
        if self.weights_patcher is not None:
            model.set_additional_models(f"{self.run_key}_truepose", [self.weights_patcher])

    def new_run(self, device: torch.device) -> TruePoseRun:
        source = self.pose_source
        inputs = TruePoseSource(
            mask=self.masks.to(device), latent_hw=source.latent_hw,
            region_masks=source.region_masks.to(device) if source.clip_embeds is not None else None,
            clip_embeds=source.clip_embeds.to(device) if source.clip_embeds is not None else None,
        )
        run = TruePoseRun(self.config, self.truepose, self.hpfa, self.site_heads, inputs, self.caa, self.caa_strength)
        if self.source is None:  # cached SourceNet bank; EVERY_STEP writes it in apply_model instead
            run.set_bank(self.rows_bank(device))
        return run

    def rows_bank(self, device: torch.device):
        """SourceNet's bank on ``device``, one row per (source, target pose) when poses outnumber sources."""
        bank = self.pose_source.bank.to(device)
        return bank if self.masks.shape[0] <= bank.batch else bank.expanded(self.masks.shape[0])

    def apply_model(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kwargs):
        comfy_run = (transformer_options or {}).get(self.run_key)
        if comfy_run is not None and comfy_run.run.pose_features is None:
            weight = next(self.pose_encoder.parameters())
            with torch.no_grad():
                skeletons = self.target.images(tuple(x.shape[-2:])).to(weight)  # (B_p, 3, 8h, 8w)
                comfy_run.run.pose_features = self.pose_encoder(skeletons).to(x)  # (B_p, C, h, w)
        return super().apply_model(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
