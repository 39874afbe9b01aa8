"""Where a bank comes from: the reference pass through the same MODEL.

Systems that bring their own reference network (AnyDressing's GarmentsNet, TruePose's SourceNet)
provide another source with the same ``capture`` signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from ..models.reference_bank import ReferenceBank
from ..models.reference_config import ReferenceSize, Refresh
from .reference_patch import ReferenceWritePatch


@dataclass(frozen=True)
class RunInputs:
    """Per-run inputs of a reference pass that only exist once sampling starts.

    Args:
        context: (1, L, C) text context for the reference pass: the first positive cond's
            cross-attention, or None when the guider has none (then a zero context is used).
        seed: the sampling seed; seeds the fixed noise of every-step refresh.
    """

    context: torch.Tensor | None
    seed: int


class ReferenceSource(Protocol):
    """Anything that can write a bank for a run: the same MODEL here, a system's own reference
    network (GarmentsNet, SourceNet, GarmNet) later."""

    def capture(self, base_model, x: torch.Tensor, sigma: torch.Tensor, inputs: RunInputs, context_like: torch.Tensor) -> ReferenceBank:
        """Run the reference pass for the UNet call described by ``x`` / ``sigma`` and return its bank."""
        ...


class SameModelReference:
    """Runs the sampled UNet (or a separate reference network) over a VAE-encoded reference latent
    and banks its attn1 inputs.

    ``Refresh.ONCE``: the clean latent at sigma 0 (timestep 0), once per run.
    ``Refresh.EVERY_STEP``: the latent noised to the current sigma with noise fixed for the run.

    Args:
        latent: (B_ref, 4, h, w) raw VAE latent of the reference image(s).
        site_names: sites to bank.
        refresh: when the bank is written.
        reference_size: what to do when ``latent`` and the sampled latent differ in size.
        network: a separate reference UNet (a ModelPatcher of the same SD1.5 size, e.g. a garment
            network such as MagicClothing's) that runs the reference pass instead of the sampled
            UNet; the caller attaches it with ``set_additional_models`` so it is loaded with it.
        context: (1, L, C) text context of the reference pass; None = the first positive prompt's.
    """

    def __init__(self, latent: torch.Tensor, site_names: tuple[str, ...], refresh: Refresh, reference_size: ReferenceSize,
                 network=None, context: torch.Tensor | None = None) -> None:
        self.latent = latent
        self.site_names = site_names
        self.refresh = refresh
        self.reference_size = reference_size
        self.network = network
        self.context = context

    def _reference_latent(self, base_model, x: torch.Tensor) -> torch.Tensor:
        latent = base_model.process_latent_in(self.latent.to(device=x.device, dtype=torch.float32))  # (B_ref, 4, h, w)
        if self.reference_size == ReferenceSize.RESIZE_TO_LATENT and latent.shape[-2:] != x.shape[-2:]:
            latent = F.interpolate(latent, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
        return latent

    def capture(self, base_model, x: torch.Tensor, sigma: torch.Tensor, inputs: RunInputs, context_like: torch.Tensor) -> ReferenceBank:
        """One reference pass; ``x``/``sigma``/``context_like`` are the current UNet call's input,
        sigmas and text context (the latter only sets the shape of a zero fallback context)."""
        if self.network is not None:
            base_model = self.network.model
        latent = self._reference_latent(base_model, x)
        rows = latent.shape[0]
        if self.refresh == Refresh.EVERY_STEP:
            ref_sigma = sigma[:1].to(latent).expand(rows)
            generator = torch.Generator(device="cpu").manual_seed(inputs.seed)
            noise = torch.randn(latent.shape, generator=generator).to(latent)
            latent = base_model.model_sampling.noise_scaling(ref_sigma, noise, latent)
        else:
            ref_sigma = torch.zeros(rows, device=latent.device, dtype=latent.dtype)

        context = self.context if self.context is not None else inputs.context
        if context is None:
            context = torch.zeros_like(context_like[:1])
        return write_bank(base_model, latent, ref_sigma, context, ReferenceBank(), self.site_names)


def write_bank(base_model, latent: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, bank: ReferenceBank,
               site_names: tuple[str, ...], patches: dict | None = None, patches_replace: dict | None = None) -> ReferenceBank:
    """One no-grad UNet call of a reference network that stores every wanted site's attn1 input in ``bank``.

    Args:
        base_model: the loaded ``BaseModel`` (``ModelPatcher.model``) of the connected MODEL.
        latent: (B, 4, h, w) model-space latent (``process_latent_in`` applied), on the model's device.
        sigma: (B,) sigmas of the call (zeros = the clean latent at timestep 0).
        context: (1 or B, L, C) text context.
        bank: where the sites are written (a patch in ``patches_replace`` may read it during the call).
        site_names: the sites to bank.
        patches: further per-call ``transformer_options["patches"]`` entries (e.g. an input_block_patch).
        patches_replace: per-call replace patches (e.g. a reference network's LoRA on attn1).
    """
    rows = latent.shape[0]
    options = {
        "patches": {"attn1_patch": [ReferenceWritePatch(bank, site_names)], **(patches or {})},
        "patches_replace": patches_replace or {},
        "cond_or_uncond": [0],
        "sigmas": sigma,
    }
    context = context.to(latent).expand(rows, -1, -1)  # (B, L, C)
    with torch.no_grad():
        base_model.apply_model(latent, sigma, c_crossattn=context, transformer_options=options)
    return bank
