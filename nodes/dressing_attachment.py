"""Installs AnyDressing's Dressing-Attention on a ModelPatcher: the foundation's reference
attachment whose run reads N garments (DressingRun), plus the optional garment guidance scale.

Garment guidance (an inference-time control, not in the paper): with the unconditional branch
blind to the garments, plain CFG pushes the garments with the text scale ω. A separate scale s_g
needs ε(∅, g), the unconditional prediction *with* garments, from one extra UNet pass per step:

    out = u + s_g·(u_g − u) + ω·(c − u_g)

It is delivered through a pre-CFG function that replaces the unconditional prediction by
u' = ((1 − s_g)·u + (s_g − ω)·u_g) / (1 − ω), so ComfyUI's own CFG u' + ω(c − u') gives ``out``
exactly and any CFG function downstream still sees a (cond, uncond) pair. s_g = ω is plain CFG
(no extra pass); s_g = 1 is "the unconditional branch sees the garments".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import comfy.model_patcher
import comfy.samplers
import torch

from ..models.anydressing.dressing_run import DressingRun
from ..models.anydressing.garment_bank import GarmentBank
from ..models.reference_config import ReferenceConfig, UncondPolicy
from ..models.reference_projections import ReferenceProjections
from .reference_attachment import ReferenceAttachment

UNCOND_CHUNK = 1


class DressingAttachment(ReferenceAttachment):
    """One dressing: garments, W'k/W'v, per-garment λ and masks, optional garment guidance.

    Args:
        config: CROSS mode; ``strength`` is λ when every garment has the same λ, else 1.
        garments: the encoded garments (on the offload device).
        projections: W'k, W'v of the weight file.
        garment_weights: per-garment multipliers of ``config.strength`` (None = all 1).
        garment_masks: (B_m, N, H, W) target region per garment, or None.
        garment_guidance: s_g, or None for no extra pass (the config's uncond policy decides).
        projections_patcher: the loader's ModelPatcher of ``projections`` (one per loaded file).
    """

    def __init__(self, config: ReferenceConfig, garments: GarmentBank, projections: ReferenceProjections,
                 garment_weights: Sequence[float] | None = None, garment_masks: torch.Tensor | None = None,
                 garment_guidance: float | None = None,
                 projections_patcher: comfy.model_patcher.ModelPatcher | None = None) -> None:
        # no bank source: every run is created holding the encoded garments (GarmentsNet ran in the encode node)
        super().__init__(config, None, projections=projections,
                         projections_patcher=projections_patcher)
        self.garments = garments
        self.garment_weights = garment_weights
        self.garment_masks = garment_masks
        self.garment_guidance = garment_guidance

    def new_run(self, device: torch.device) -> DressingRun:
        masks = None if self.garment_masks is None else self.garment_masks.to(device)
        return DressingRun(self.config, self.garments.to(device), projections=self.projections,
                           garment_weights=self.garment_weights, garment_masks=masks)

    def install(self, model: comfy.model_patcher.ModelPatcher) -> None:
        super().install(model)
        if self.garment_guidance is not None:
            model.set_model_sampler_pre_cfg_function(self.apply_garment_guidance)

    def apply_garment_guidance(self, args: dict) -> list:
        """Pre-CFG function: replace the unconditional prediction so CFG applies s_g to the garments."""
        out = args["conds_out"]
        uncond_conds = args["conds"][UNCOND_CHUNK]
        scale = float(args["cond_scale"])
        guidance = self.garment_guidance
        comfy_run = args["model_options"].get("transformer_options", {}).get(self.run_key)
        if (uncond_conds is None or comfy_run is None or math.isclose(scale, 1.0) or math.isclose(guidance, scale)
                or not comfy_run.active_at(float(args["sigma"].reshape(-1)[0]))):
            return out
        options = comfy.model_patcher.create_model_options_clone(args["model_options"])
        options["transformer_options"][self.uncond_override_key] = UncondPolicy.SAME
        uncond_with_garments = comfy.samplers.calc_cond_batch(args["model"], [uncond_conds], args["input"], args["timestep"], options)[0]
        uncond = out[UNCOND_CHUNK]
        blended = ((1.0 - guidance) * uncond + (guidance - scale) * uncond_with_garments) / (1.0 - scale)
        return [out[0], blended, *out[2:]]
