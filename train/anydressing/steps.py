"""One training step of each stage.

Stage 0 (``base``): the tiny denoiser learns toy people, plain ε-prediction (eq. 2), all UNet weights.

Dressing stage (§4.4): DressingNet (the UNet) is frozen. GarmentsNet encodes the garments once at
t = 0 (one row per garment, LoRA slot by category, cross-attention excised), the banked F_k are
joined into F_all, and DressingNet's self-attentions read them through Dressing-Attention (eq. 6)
with the learned W'k, W'v. Loss: L_LDM + igl·L_loc (eq. 9) + gtl·L_texture (eq. 11, t ≤ η).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...models.anydressing.config import DressingConfig
from ...models.anydressing.diffusers_garments import DiffusersGarmentsNet
from ...models.anydressing.dressing_run import DressingRun
from ...models.anydressing.garment_bank import GarmentBank
from ...models.anydressing.garment_lora import GarmentLoRA
from ...models.anydressing.losses import localization_loss, predicted_x0, texture_loss
from ...models.diffusers_host import DiffusersReferenceHost
from ...models.reference_config import ReadMode, ReferenceConfig
from ...models.reference_projections import ReferenceProjections
from ...models.sites import SITES_BY_NAME
from ..loop import noise_and_timesteps, process_slice
from .components import BaseComponents, encode_text
from .data import DressingBatch, DressingDataError


@dataclass(frozen=True)
class LossWeights:
    """λ of each term (paper appendix §7.1: λ1 = 0.01 for IGL, λ2 = 0.001 for GTL, η = 350).

    Args:
        igl: weight of L_loc.
        gtl: weight of L_texture.
        eta: η, GTL runs on rows with t ≤ η.
        strength: λ of eq. 6 while training.
    """

    igl: float = 0.01
    gtl: float = 0.001
    eta: int = 350
    strength: float = 1.0


class DressingTrainables(nn.Module):
    """Everything the dressing stage trains: GFE LoRA, W'k/W'v and, in full mode, GarmentsNet's UNet.

    Args:
        garment_lora: GFE's ΔŴ per slot and site.
        projections: Dressing-Attention's W'k, W'v.
        garments_unet: a trainable GarmentsNet UNet copy, or None (LoRA mode: the frozen base).
    """

    def __init__(self, garment_lora: GarmentLoRA, projections: ReferenceProjections, garments_unet: nn.Module | None = None) -> None:
        super().__init__()
        self.garment_lora = garment_lora
        self.projections = projections
        self.garments_unet = garments_unet


def build_trainables(config: DressingConfig, components: BaseComponents, full_garments_net: bool) -> DressingTrainables:
    """Fresh LoRA (B = 0), W'k, W'v copied from each site's Wk, Wv (§4.2.1), optional UNet copy."""
    channels = components.base_model.model_channels
    lora = GarmentLoRA.for_sd15(config, channels)
    projections = ReferenceProjections.for_sd15(channels, config.sites)
    modules = dict(components.unet.named_modules())
    projections.initialise_from({
        name: (modules[SITES_BY_NAME[name].diffusers_attn1].to_k.weight, modules[SITES_BY_NAME[name].diffusers_attn1].to_v.weight)
        for name in config.sites
    })
    garments_unet = copy.deepcopy(components.unet).requires_grad_(True) if full_garments_net else None
    return DressingTrainables(lora, projections, garments_unet)


def cross_view_config() -> ReferenceConfig:
    """The base stage's cross-view read: one joint softmax over the layer's own tokens and the other
    view's (CONCAT, s = 1) at all 16 sites."""
    return ReferenceConfig.for_group("all", mode=ReadMode.CONCAT, strength=1.0)


def shifted(images: torch.Tensor, generator: torch.Generator, most: int) -> torch.Tensor:
    """``images`` (B, 3, H, W) each rolled by its own random offset of up to ``most`` pixels per axis
    (drawn for the global batch, this process's rows kept)."""
    count, _, rows = process_slice(images.shape[0])
    offsets = torch.randint(-most, most + 1, (count * images.shape[0], 2), generator=generator)[rows].tolist()
    return torch.stack([image.roll(shifts=(dy, dx), dims=(1, 2)) for image, (dy, dx) in zip(images, offsets)])


def base_losses(components: BaseComponents, unet: nn.Module, batch: DressingBatch, generator: torch.Generator,
                captions: list[str], cross_view: str | None = None) -> dict[str, torch.Tensor]:
    """Stage 0: L_LDM of the whole UNet on the batch's people.

    ``cross_view``: the denoiser's self-attention also reads a reference of the same people,
    banked clean at t = 0 by the same UNet with gradient, through ``cross_view_config``:
    ``"other"`` their other pose (``batch.other_views``), ``"self"`` the picture itself rolled by a
    random offset of up to 1/16 of its side. A toy denoiser trained on single toy images alone keeps
    near-uniform attention (the gate measures it); reading a reference of the same person teaches its
    attention to find and carry content, as a large base learns it from natural images. ``unet``
    must then be the unwrapped diffusers module.
    """
    with torch.no_grad():
        latents = components.vae.encode(batch.persons)  # (B, 4, h, w)
    noise, timesteps = noise_and_timesteps(latents, components.scheduler, generator)
    noisy = components.scheduler.add_noise(latents, noise, timesteps)
    context = encode_text(components, captions)
    if cross_view is None:
        prediction = unet(noisy, timesteps, encoder_hidden_states=context).sample
        return {"ldm": F.mse_loss(prediction.float(), noise.float())}
    if cross_view == "self":
        references = shifted(batch.persons, generator, batch.persons.shape[-1] // 16)
    elif batch.other_views is None:
        raise DressingDataError("cross-view base steps need batch.other_views: build the data set with other_view=True")
    else:
        references = batch.other_views
    with torch.no_grad():
        reference_latents = components.vae.encode(references)  # (B, 4, h, w)
    with DiffusersReferenceHost(unet, cross_view_config()) as host:
        bank = host.capture(reference_latents, torch.zeros_like(timesteps), context, keep_grad=True)
        run = host.new_run(bank)
        prediction = host.forward(run, noisy, timesteps, context, cond_or_uncond=[0]).sample
    return {"ldm": F.mse_loss(prediction.float(), noise.float())}


def encode_garments(components: BaseComponents, trainables: DressingTrainables, config: DressingConfig,
                    garments: torch.Tensor, categories: tuple[str, ...]) -> GarmentBank:
    """GarmentsNet at t = 0 over garment images (B, N, 3, H, W): the joined bank (B, N·L, C) per site."""
    batch = garments.shape[0]
    with torch.no_grad():
        latents = components.vae.encode(garments.flatten(0, 1))  # (B·N, 4, h, w)
    slot_ids = torch.tensor([config.slot_index(c) for c in categories] * batch, device=latents.device)  # (B·N,)
    unet = trainables.garments_unet if trainables.garments_unet is not None else components.unet
    with DiffusersGarmentsNet(unet, trainables.garment_lora, config.sites) as garments_net:
        rows = garments_net.encode(latents, slot_ids, keep_grad=True)
    return GarmentBank.from_rows(rows, categories, batch=batch)


def reading_config(config: DressingConfig, strength: float) -> ReferenceConfig:
    """Dressing-Attention settings: cross read mode at every site of ``config``, λ = ``strength``."""
    return ReferenceConfig(mode=ReadMode.CROSS, strength=strength, site_weights={name: 1.0 for name in config.sites})


def dressing_losses(components: BaseComponents, trainables: DressingTrainables, config: DressingConfig,
                    batch: DressingBatch, generator: torch.Generator, weights: LossWeights, captions: list[str],
                    perceptual=None) -> dict[str, torch.Tensor]:
    """The dressing stage's terms for one batch; ``total`` is what is back-propagated."""
    with torch.no_grad():
        latents = components.vae.encode(batch.persons)  # (B, 4, h, w)
    noise, timesteps = noise_and_timesteps(latents, components.scheduler, generator)
    noisy = components.scheduler.add_noise(latents, noise, timesteps)
    context = encode_text(components, captions)
    with DiffusersReferenceHost(components.unet, reading_config(config, weights.strength), trainables.projections) as host:
        garments = encode_garments(components, trainables, config, batch.garments, batch.categories)
        run = DressingRun(host.config, garments, trainables.projections, record_maps=weights.igl > 0)
        try:
            prediction = host.forward(run, noisy, timesteps, context, cond_or_uncond=[0]).sample
            losses = {"ldm": F.mse_loss(prediction.float(), noise.float())}
            if weights.igl > 0:
                losses["loc"] = localization_loss(run.maps, batch.garment_masks, tuple(latents.shape[-2:]))
        finally:
            run.release()
    total = losses["ldm"] + weights.igl * losses.get("loc", 0.0)
    if weights.gtl > 0:
        alphas = components.scheduler.alphas_cumprod.to(latents.device)[timesteps]  # (B,) ᾱ_t
        generated = components.vae.decode(predicted_x0(noisy, prediction, alphas))  # Î = D(ẑ_0), eq. 10
        losses["texture"] = texture_loss(generated.float(), batch.persons.float(), batch.garment_masks, timesteps,
                                         weights.eta, perceptual)
        total = total + weights.gtl * losses["texture"]
    losses["total"] = total
    return losses
