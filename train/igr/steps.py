"""One IGR training step (§3.2) and what it trains.

Trained: GarmNet (its attn1 LoRA + ``mask_in``), the IP-Adapter (image projection + to_k_ip /
to_v_ip) and the denoiser update (a peft LoRA on the UNet's attention projections, or every UNet
weight). Frozen: the base UNet weights under a LoRA, the VAE, the text and image encoders.

A step: E(cloth) is the target latent z0, noised to z_t; GarmNet runs once at t = 0 over E(p) and
m (its text context is the category prompt) and banks its attn1 inputs; the IP path embeds
p_g = Resize(Crop(p·m)) with the frozen CLIP image encoder and projects it to F_ll; the denoiser
predicts ε with the category prompt, reading the bank through CONCAT (eq. 4) and F_ll beside every
attn2 (eq. 3). Loss: ε-prediction MSE.

Condition drop (``drop``, per batch): with that probability the whole batch is trained
unconditionally, i.e. garment features (GarmNet bank AND IP tokens) and text (the empty prompt's
embedding) are dropped together, which is exactly what the unconditional CFG chunk sees at
inference (UncondPolicy.NONE + the empty prompt). Per batch rather than per sample because the
foundation's row plan splits a call into whole CFG chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from peft import LoraConfig
from torch import nn

from ...models.igr.config import IGRConfig, category_prompt
from ...models.igr.diffusers_igr import DiffusersIGRHost
from ...models.igr.garmnet import GarmNet, mask_to_latent
from ...models.igr.ip_adapter import IPAdapter
from ...models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from ..anydressing.components import BaseComponents, encode_text
from ..loop import noise_and_timesteps
from .components import ImageEncoder
from .data import IGRBatch
from .options import PATHS  # noqa: F401  (defined with the options, which import nothing heavy)

DENOISER_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass(frozen=True)
class DenoiserUpdate:
    """How the denoiser is updated.

    Args:
        mode: "lora" (peft LoRA on every attention projection) or "full" (every UNet weight).
        rank, alpha: the LoRA's rank and alpha (lora mode).
    """

    mode: str = "lora"
    rank: int = 8
    alpha: float = 8.0


class IGRTrainables(nn.Module):
    """Everything one run optimises, in one module (one accelerate model, one checkpoint).

    Args:
        unet: the denoiser (with its peft LoRA in lora mode); its trainable parameters are the update.
        garmnet: GarmNet's weights (trained only when the high-level path is on).
        ip_adapter: the IP-Adapter (trained only when the low-level path is on).
    """

    def __init__(self, unet: nn.Module, garmnet: GarmNet, ip_adapter: IPAdapter) -> None:
        super().__init__()
        self.unet = unet
        self.garmnet = garmnet
        self.ip_adapter = ip_adapter


def igr_config_for(paths: str, embed_dim: int, rank: int, alpha: float, ip_tokens: int) -> IGRConfig:
    """The IGRConfig of ``--paths`` (both / ip / garmnet) and the image encoder's width."""
    return IGRConfig(garmnet_rank=rank, garmnet_alpha=alpha, ip_tokens=ip_tokens, image_embed_dim=embed_dim,
                     high_level=paths in ("both", "garmnet"), low_level=paths in ("both", "ip"))


def build_trainables(components: BaseComponents, config: IGRConfig, update: DenoiserUpdate) -> IGRTrainables:
    """Fresh GarmNet (LoRA B = 0, mask_in = 0), IP-Adapter (to_k_ip / to_v_ip from each attn2's
    to_k / to_v), and the denoiser update (peft LoRA with B = 0, or the whole UNet); parameters of a
    path that is off stay frozen."""
    unet = components.unet
    unet.requires_grad_(update.mode == "full")
    if update.mode == "lora":
        unet.add_adapter(LoraConfig(r=update.rank, lora_alpha=update.alpha, init_lora_weights=True,
                                    target_modules=DENOISER_LORA_TARGETS))
    base = components.base_model
    garmnet = GarmNet.for_sd15(config, base.model_channels).requires_grad_(config.high_level)
    ip_adapter = IPAdapter.for_sd15(config, base)
    ip_adapter.init_from_cross_attention(unet)  # W'k, W'v from Wk, Wv; --init-ip-adapter overrides it
    ip_adapter.requires_grad_(config.low_level)
    return IGRTrainables(unet, garmnet, ip_adapter)


def reading_config(config: IGRConfig) -> ReferenceConfig:
    """GarmFus' high-level read: CONCAT at ``config``'s sites, s = 1, uncond chunk reads nothing."""
    return ReferenceConfig(mode=ReadMode.CONCAT, strength=1.0, site_weights={name: 1.0 for name in config.sites},
                           uncond=UncondPolicy.NONE)


def drops_condition(generator: torch.Generator, probability: float) -> bool:
    """Whether this batch is trained unconditionally (one draw from the step's generator, always made)."""
    return bool(torch.rand(1, generator=generator).item() < probability)


def prompts_for(categories: list[str]) -> list[str]:
    """The category prompt of each row."""
    return [category_prompt(category) for category in categories]


def garment_features(components: BaseComponents, trainables: IGRTrainables, config: IGRConfig,
                     encoder: ImageEncoder | None, host: DiffusersIGRHost, batch: IGRBatch):
    """GarmNet's bank (or None) and the IP tokens F_ll (or None) of the batch's persons."""
    bank = tokens = None
    if config.high_level:
        with torch.no_grad():
            person_latent = components.vae.encode(batch.persons)  # (B, 4, h, w)
        mask_latent = mask_to_latent(batch.masks, tuple(person_latent.shape[-2:]))  # (B, 1, h, w)
        context = encode_text(components, prompts_for(batch.categories))  # (B, 77, C)
        bank = host.garmnet_pass(person_latent, mask_latent.to(person_latent), context, keep_grad=True)
    if config.low_level:
        embeds = encoder.embed_garments(batch.persons, batch.masks)  # (B, E)
        tokens = trainables.ip_adapter.tokens(embeds.to(batch.persons))  # (B, N, D)
    return bank, tokens


@dataclass(frozen=True)
class NoisedGarments:
    """One step's diffusion target: the condition-drop draw, ε, t, z_t of the flat garments and the
    text context (the empty prompt when dropped)."""

    dropped: bool
    noise: torch.Tensor
    timesteps: torch.Tensor
    noisy: torch.Tensor
    context: torch.Tensor


def noised_garments(components: BaseComponents, batch: IGRBatch, generator: torch.Generator,
                    drop_probability: float) -> NoisedGarments:
    """Draw the step's condition drop, noise and timesteps for the batch's flat garments."""
    dropped = drops_condition(generator, drop_probability)
    with torch.no_grad():
        latents = components.vae.encode(batch.garments)  # (B, 4, hc, wc)
    noise, timesteps = noise_and_timesteps(latents, components.scheduler, generator)
    noisy = components.scheduler.add_noise(latents, noise, timesteps)
    prompts = [""] * len(batch.categories) if dropped else prompts_for(batch.categories)
    return NoisedGarments(dropped, noise, timesteps, noisy, encode_text(components, prompts))  # context (B, 77, C)


def igr_losses(components: BaseComponents, trainables: IGRTrainables, config: IGRConfig, encoder: ImageEncoder | None,
               batch: IGRBatch, generator: torch.Generator, drop_probability: float) -> dict[str, torch.Tensor]:
    """The step's ε-prediction loss ``ldm`` and ``dropped`` (1 when the condition was dropped)."""
    target = noised_garments(components, batch, generator, drop_probability)
    noisy, timesteps, context = target.noisy, target.timesteps, target.context
    if target.dropped:
        prediction = trainables.unet(noisy, timesteps, encoder_hidden_states=context).sample
    else:
        garmnet = trainables.garmnet if config.high_level else None
        ip_adapter = trainables.ip_adapter if config.low_level else None
        with DiffusersIGRHost(trainables.unet, garmnet, ip_adapter, reading_config(config)) as host:
            bank, tokens = garment_features(components, trainables, config, encoder, host, batch)
            run = host.new_run(bank, tokens, 1.0)
            try:
                prediction = host.forward(run, noisy, timesteps, context, cond_or_uncond=[0]).sample
            finally:
                run.release()
    loss = F.mse_loss(prediction.float(), target.noise.float())
    return {"ldm": loss, "dropped": torch.tensor(float(target.dropped))}


def base_losses(components: BaseComponents, unet: nn.Module, batch: IGRBatch, generator: torch.Generator,
                drop_probability: float) -> dict[str, torch.Tensor]:
    """``--stage base``: the whole tiny denoiser learns flat garments from their category prompts
    (the empty prompt with ``drop_probability``), plain ε-prediction."""
    target = noised_garments(components, batch, generator, drop_probability)
    prediction = unet(target.noisy, target.timesteps, encoder_hidden_states=target.context).sample
    return {"ldm": F.mse_loss(prediction.float(), target.noise.float()), "dropped": torch.tensor(float(target.dropped))}
