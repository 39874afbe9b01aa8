"""Installs one reference-attention application on a ModelPatcher and drives it per sampling run.

The per-run life cycle (DESIGN.md "Lifetime"):
1. OUTER_SAMPLE wrapper: a fresh ReferenceRun is put into a *clone* of the guider's
   model_options (the core EasyCache pattern), so cached MODEL outputs and clones never share it;
   it is released in ``finally``.
2. APPLY_MODEL wrapper, every UNet call: writes the bank (first call, or each new sigma with
   every-step refresh), evaluates the schedule window once, and describes the call's batch.
3. attn1 replace patches (reference_patch.py) read the bank at each site.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import comfy.model_patcher
import comfy.patcher_extension
import torch

from ..models.log import logger
from ..models.reference_config import ReferenceConfig, Refresh
from ..models.reference_projections import ReferenceProjections
from ..models.reference_run import ReferenceRun
from ..models.sites import SITES_BY_NAME, AttentionSite
from .reference_patch import ReferenceReadPatch
from .reference_source import ReferenceSource, RunInputs
from .weights_loader import managed_module

OUTER_SAMPLE_ARGS = ("noise", "latent_image", "sampler", "sigmas", "denoise_mask", "callback", "disable_pbar", "seed")


@dataclass
class ComfyRun:
    """What one sampling run keeps: the host-free run plus ComfyUI-side inputs."""

    run: ReferenceRun
    inputs: RunInputs
    sigma_start: float
    sigma_end: float
    bank_sigma: float | None = None

    def active_at(self, sigma: float) -> bool:
        """Whether ``sigma`` lies in the configured start/end part of the schedule."""
        return self.sigma_end <= sigma <= self.sigma_start


def first_positive_context(guider) -> torch.Tensor | None:
    """(1, L, C) cross-attention of the guider's first positive cond, if it has one."""
    for cond in getattr(guider, "conds", {}).get("positive", []) or []:
        context = cond.get("cross_attn")
        if context is not None:
            return context[:1]
    return None


class ReferenceAttachment:
    """One reference application: config, source, optional mask and learned projections.

    Args:
        config: settings of this application.
        source: produces the bank (SameModelReference, or a system's own reference network); None
            when ``new_run`` returns runs that already hold their bank (AnyDressing's encoded garments).
        mask: optional denoiser-side mask (B_m, H, W).
        projections: learned W'k, W'v (CROSS mode) or None; handed to ComfyUI's memory manager
            (``set_additional_models``) so they load to the device with the UNet.
        projections_patcher: the ModelPatcher wrapping ``projections``, when the caller keeps one for
            the module's lifetime (a loader node's output); else one is made here.
    """

    def __init__(self, config: ReferenceConfig, source: ReferenceSource | None, mask: torch.Tensor | None = None,
                 projections: ReferenceProjections | None = None,
                 projections_patcher: comfy.model_patcher.ModelPatcher | None = None) -> None:
        self.config = config
        self.source = source
        self.mask = mask
        self.projections = projections
        self.projections_patcher = projections_patcher
        self.run_key = f"atelier_reference_{uuid.uuid4().hex[:12]}"

    def install(self, model: comfy.model_patcher.ModelPatcher) -> None:
        """Add this application's patches and wrappers to ``model`` (a clone the caller owns)."""
        existing = model.model_options["transformer_options"].get("patches_replace", {}).get("attn1", {})
        unet = model.model.diffusion_model
        for name in self.config.enabled_site_names:
            site = SITES_BY_NAME[name]
            previous = existing.get(site.key, existing.get(site.key[:2]))
            patch = self.read_patch(site, unet.get_submodule(site.comfy_attn1), previous)
            model.set_model_attn1_replace(patch, site.block, site.number, site.block_index)
        if self.projections is not None:
            patcher = self.projections_patcher or managed_module(self.projections)
            model.set_additional_models(self.run_key, [patcher])
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, self.run_key, self.outer_sample)
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, self.run_key, self.apply_model)

    def read_patch(self, site: AttentionSite, attention, previous) -> ReferenceReadPatch:
        """The attn1 replace patch installed at ``site`` (a system with its own read overrides this)."""
        return ReferenceReadPatch(site, attention, self.run_key, previous)

    @property
    def uncond_override_key(self) -> str:
        """transformer_options key through which one UNet call may override the uncond policy."""
        return f"{self.run_key}_uncond"

    def new_run(self, device: torch.device) -> ReferenceRun:
        """The run state of one sampling call (a subclass may read through another run type)."""
        mask = None if self.mask is None else self.mask.to(device)
        return ReferenceRun(self.config, mask=mask, projections=self.projections)

    def outer_sample(self, executor, *args, **kwargs):
        """Create the run for this sampling call and release it afterwards."""
        guider = executor.class_obj
        call = dict(zip(OUTER_SAMPLE_ARGS, args)) | kwargs
        model_sampling = guider.model_patcher.get_model_object("model_sampling")
        comfy_run = ComfyRun(
            # the UNet's device: ``noise`` is still on the intermediate device until the executor runs
            run=self.new_run(guider.model_patcher.load_device),
            inputs=RunInputs(context=first_positive_context(guider), seed=int(call.get("seed") or 0)),
            sigma_start=float(model_sampling.percent_to_sigma(self.config.start_percent)),
            sigma_end=float(model_sampling.percent_to_sigma(self.config.end_percent)),
        )
        original_options = guider.model_options
        guider.model_options = comfy.model_patcher.create_model_options_clone(original_options)
        guider.model_options["transformer_options"][self.run_key] = comfy_run
        try:
            return executor(*args, **kwargs)
        finally:
            guider.model_options = original_options
            run = comfy_run.run
            if run.bank is not None:
                logger.info(
                    "reference attention: %d sites banked (%.1f MB), %d bank write(s), %d site reads",
                    len(run.bank), run.bank.nbytes / 2**20, run.bank_writes, sum(run.reads.values()),
                )
            run.release()

    def apply_model(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kwargs):
        """Write the bank when due and describe this UNet call to the run."""
        options = transformer_options if transformer_options is not None else {}
        comfy_run: ComfyRun | None = options.get(self.run_key)
        if comfy_run is not None:
            run = comfy_run.run
            sigma = float(t.reshape(-1)[0])  # one host sync per UNet call, not per attention call
            # Every-step refresh rewrites the bank when sigma moves on, not again for the other
            # UNet calls of the same step (ComfyUI splits CFG chunks into calls when memory is short).
            stale = self.config.refresh == Refresh.EVERY_STEP and sigma != comfy_run.bank_sigma
            if self.source is not None and (run.bank is None or stale):
                run.set_bank(self.source.capture(executor.class_obj, x, t, comfy_run.inputs, c_crossattn))
                comfy_run.bank_sigma = sigma
            cond_or_uncond = options.get("cond_or_uncond") or [0]  # a direct call: every row is "cond"
            run.begin_call(x.shape[0], cond_or_uncond, tuple(x.shape[-2:]), comfy_run.active_at(sigma),
                           uncond=options.get(self.uncond_override_key))
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
