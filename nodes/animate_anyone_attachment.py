"""Installs AnimateAnyone's stage-1 conditioning on the denoising MODEL: the concat read of the
reference UNet's bank at all 16 attn1 sites, and the PoseGuider's features after conv_in.

Mirrors Moore-AnimateAnyone's ``Pose2ImagePipeline`` with ``ReferenceAttentionControl(mode="read",
fusion_blocks="full")``: each attn1 attends from the denoiser's own tokens (the query) to
``[norm1(x); bank]`` (keys/values), i.e. ReadMode.CONCAT at strength 1. Under CFG the public
``uc_mask`` replaces the unconditional half by plain self-attention, i.e. UncondPolicy.NONE here.
The pose features are added to every row, conditional and unconditional (``torch.cat([pose_fea] * 2)``).

With TruePose's HPFA/CAA on top (animate_anyone_truepose.py) a TruePoseRun shares the bank and the
call description, and the attn1 patches add its terms to the concat read; without them the
attachment installs exactly the published read.
"""

from __future__ import annotations

import comfy.model_patcher
import torch

from ..models.errors import ReferenceInputError
from ..models.pose_networks.drawing import PoseDrawings
from ..models.pose_networks.pose_guider import PoseGuider
from ..models.reference_config import ReferenceConfig
from ..models.reference_run import ReferenceRun
from ..models.sites import AttentionSite
from ..models.truepose.truepose_run import TruePoseRun
from .animate_anyone_truepose import AnimateAnyoneReadPatch, TruePoseOnTop
from .reference_attachment import ReferenceAttachment
from .reference_patch import ReferenceReadPatch
from .truepose_attachment import PoseInputPatch


class AnimateAnyoneRun(ReferenceRun):
    """A ReferenceRun that also adds the PoseGuider's features (drawn once per run) after conv_in.

    ``truepose_run``: TruePose's HPFA/CAA state on top, fed the same bank and call descriptions; None = off.
    """

    def __init__(self, config: ReferenceConfig, pose_strength: float, truepose_run: TruePoseRun | None = None) -> None:
        super().__init__(config)
        self.pose_strength = pose_strength
        self.pose_features: torch.Tensor | None = None
        self.truepose_run = truepose_run

    def set_bank(self, bank) -> None:
        super().set_bank(bank)
        if self.truepose_run is not None:
            self.truepose_run.set_bank(bank)

    def begin_call(self, total_rows, cond_or_uncond, latent_hw, active, uncond=None) -> None:
        super().begin_call(total_rows, cond_or_uncond, latent_hw, active, uncond)
        if self.truepose_run is not None:
            self.truepose_run.begin_call(total_rows, cond_or_uncond, latent_hw, active, uncond)

    def add_pose(self, features: torch.Tensor) -> torch.Tensor:
        """conv_in's output (N, C, h, w) plus ``pose_strength`` × the pose features on every row."""
        if self.pose_features is None or self.call is None or self.pose_strength == 0:
            return features
        if self.pose_features.shape[1:] != features.shape[1:]:
            raise ReferenceInputError(
                f"the pose guider gives {tuple(self.pose_features.shape[1:])} features but conv_in gives "
                f"{tuple(features.shape[1:])}: the pose guider and the MODEL come from different AnimateAnyone files"
            )
        latent_batch = self.call.plan.latent_batch
        poses = self.pose_features.shape[0]
        if poses not in (1, latent_batch):
            raise ReferenceInputError(
                f"'target_pose' has {poses} frames but the latent batch is {latent_batch}: give one pose, or one "
                "latent per pose (Empty Latent Image batch_size)"
            )
        rows = torch.arange(features.shape[0], device=features.device)  # (N,): chunk-major, B rows per chunk
        pose_rows = rows % latent_batch if poses > 1 else torch.zeros_like(rows)
        return features + self.pose_strength * self.pose_features.to(features).index_select(0, pose_rows)  # (N, C, h, w)

    def release(self) -> None:
        super().release()
        self.pose_features = None
        if self.truepose_run is not None:
            self.truepose_run.release()


class AnimateAnyoneAttachment(ReferenceAttachment):
    """One AnimateAnyone application on a clone of the denoising MODEL.

    Args:
        config: CONCAT at all sites, UncondPolicy.NONE; ``strength`` scales the bank's attention mass.
        bank: the reference UNet's bank (Encode AnimateAnyone Source), B_s rows.
        pose_guider: the PoseGuider module; ``guider_patcher`` its ModelPatcher (loaded with the UNet).
        target: the target pose(s) or ready skeleton images.
        pose_strength: factor on the pose features (1 as published, 0 = no pose).
        truepose: TruePose's HPFA/CAA on top (its bank replaces ``bank``), or None for the published path.
    """

    def __init__(self, config: ReferenceConfig, bank, pose_guider: PoseGuider, target: PoseDrawings, pose_strength: float,
                 guider_patcher: comfy.model_patcher.ModelPatcher | None = None,
                 truepose: TruePoseOnTop | None = None) -> None:
        super().__init__(config, None)
        self.bank = bank
        self.pose_guider = pose_guider
        self.target = target
        self.pose_strength = pose_strength
        self.guider_patcher = guider_patcher
        self.truepose = truepose

    def read_patch(self, site: AttentionSite, attention, previous) -> ReferenceReadPatch:
        if self.truepose is None:
            return super().read_patch(site, attention, previous)
        return AnimateAnyoneReadPatch(site, attention, self.run_key, previous)

    def install(self, model: comfy.model_patcher.ModelPatcher) -> None:
        super().install(model)
        model.set_model_input_block_patch(PoseInputPatch(self.run_key))
        if self.guider_patcher is not None:
            model.set_additional_models(f"{self.run_key}_pose_guider", [self.guider_patcher])
        if self.truepose is not None and self.truepose.patcher is not None:
            model.set_additional_models(f"{self.run_key}_truepose", [self.truepose.patcher])

    def new_run(self, device: torch.device) -> AnimateAnyoneRun:
        truepose_run = None if self.truepose is None else self.truepose.new_run(device)
        run = AnimateAnyoneRun(self.config, self.pose_strength, truepose_run)
        run.set_bank(self.bank.to(device))
        return run

    def apply_model(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kwargs):
        comfy_run = (transformer_options or {}).get(self.run_key)
        if comfy_run is not None and comfy_run.run.pose_features is None and self.pose_strength != 0:
            weight = next(self.pose_guider.parameters())
            height, width = (side * self.pose_guider.config.downscale for side in x.shape[-2:])
            with torch.no_grad():
                drawings = self.target.images(height, width).to(weight)  # (B_p, 3, 8h, 8w) in [0, 1]
                comfy_run.run.pose_features = self.pose_guider(drawings).to(x)  # (B_p, 320, h, w)
        return super().apply_model(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
