"""What a TruePose run trains, the conditioned TargetNet call, and one training step (§4.4).

SourceNet = the TargetNet's own UNet (tied weights, a Siamese pair): it runs once per batch at t = 0
over z_s = E(I_s) with the empty prompt and banks its attn1 inputs F'. "SourceNet and TargetNet
updates" are therefore one update of the shared UNet: a peft LoRA on the attention projections
(``--unet lora``, default; exported for the core LoraLoader) or every UNet weight (``--unet full``, the
paper's). Always trained as well: the pose encoder, and per variant the HPFA projections (initialised
from each site's attn1 Wq, Wk, Wv so that, untrained, eq. 8 is that layer's attention over H' = a
softmax mix of F': ``HPFAProjections.initialise_from``) and the CAA projections.

Variants (``--variant``):
- ``full``: HPFA + CAA + pose encoder.
- ``no-hpfa`` (paper's B4): ``TruePoseConfig(parsing_guidance=False)``, eq. 7 without the parsing
  reweighting; CAA kept.
- ``no-caa`` (B3): CAA is neither built nor trained (the run has no CAA term).
- ``concat`` (B2, "w/. Dual-UNet"): the plain concatenation baseline: SourceNet's bank appended to the
  TargetNet's self-attention K/V at the same (decoder) sites (the foundation's ReadMode.CONCAT through
  ``DiffusersReferenceHost`` with ``capture`` at t = 0), plus the same pose encoder; no HPFA/CAA.

The TargetNet's text condition is the empty prompt too; the condition C = SourceNet's bank + CLIP region
embeddings + pose features. Condition dropout η (``--condition-dropout``, paper 30%): with that
probability the whole **batch** drops C together, by running the TargetNet call with
``cond_or_uncond=[1]``: the unconditional chunk, which under UncondPolicy.NONE gets neither source terms
nor pose features, exactly what ComfyUI's uncond chunk sees at inference. Per batch rather than per
sample because the foundation's row plan routes whole CFG chunks (as IGR's condition drop). The source
side of a dropped batch runs without gradient (it cannot reach the loss).

Loss: ε-prediction MSE on the target latent. ``--stage base`` (tiny base only) instead trains the whole
tiny UNet unconditionally on toy-world people, so the stand-in for SD1.5 already draws people.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from peft import LoraConfig
from torch import nn

from ...models.diffusers_host import DiffusersReferenceHost
from ...models.errors import AtelierError
from ...models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from ...models.reference_run import ReferenceRun
from ...models.sites import sites_named
from ...models.truepose.caa import CAAProjections
from ...models.truepose.config import TruePoseConfig
from ...models.truepose.diffusers_truepose import (
    SOURCE_TIMESTEP,
    DiffusersTruePoseHost,
    default_reference_config,
)
from ...models.truepose.hpfa import HPFAProjections
from ...models.truepose.pose_encoder import PoseEncoder
from ...models.truepose.truepose_run import add_pose_features
from ..anydressing.components import BaseComponents
from ..igr.components import ImageEncoder
from ..igr.steps import DENOISER_LORA_TARGETS, DenoiserUpdate, drops_condition
from ..loop import noise_and_timesteps
from .components import SourceConditions, empty_context, source_conditions
from .data import PoseTransferBatch
from .options import VARIANTS  # noqa: F401  (defined with the options, which import nothing heavy)

UNET_LORA_TARGETS = DENOISER_LORA_TARGETS
# (noisy latents, timesteps, text context, cond_or_uncond) -> predicted ε
Predict = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Sequence[int]], torch.Tensor]


class VariantError(AtelierError, ValueError):
    """An unknown ``--variant``."""


def uses_caa(variant: str) -> bool:
    """Whether the variant builds and trains CAA."""
    return variant in ("full", "no-hpfa")


def uses_hpfa(variant: str) -> bool:
    """Whether the variant builds and trains the HPFA projections (everything but ``concat``)."""
    return variant != "concat"


def truepose_config_for(variant: str, clip_embed_dim: int, latent_factor: int = 8) -> TruePoseConfig:
    """The TruePoseConfig of ``variant`` with the image encoder's width and the VAE's factor."""
    if variant not in VARIANTS:
        raise VariantError(f"--variant {variant!r} is unknown; choose one of {list(VARIANTS)}")
    caa_sites = TruePoseConfig.caa_sites if uses_caa(variant) else ()
    return TruePoseConfig(clip_embed_dim=clip_embed_dim, parsing_guidance=variant != "no-hpfa", caa_sites=caa_sites,
                          latent_factor=latent_factor)


class TruePoseTrainables(nn.Module):
    """Everything one run optimises, in one module (one accelerate model, one checkpoint).

    Args:
        unet: SourceNet = TargetNet (with its peft LoRA in lora mode).
        pose_encoder: the pose encoder.
        hpfa: HPFA projections, None for ``concat``.
        caa: CAA projections, None for ``no-caa`` and ``concat``.
    """

    def __init__(self, unet: nn.Module, pose_encoder: PoseEncoder, hpfa: HPFAProjections | None,
                 caa: CAAProjections | None) -> None:
        super().__init__()
        self.unet = unet
        self.pose_encoder = pose_encoder
        self.hpfa = hpfa
        self.caa = caa


def attn1_weights(unet: nn.Module, site_names: tuple[str, ...]) -> dict[str, tuple[torch.Tensor, ...]]:
    """(Wq, Wk, Wv) of each site's attn1 (the base weights, read before any LoRA is added)."""
    modules = dict(unet.named_modules())
    return {site.name: tuple(getattr(modules[site.diffusers_attn1], name).weight.detach().clone()
                             for name in ("to_q", "to_k", "to_v")) for site in sites_named(site_names)}


def build_trainables(components: BaseComponents, config: TruePoseConfig, variant: str,
                     update: DenoiserUpdate) -> TruePoseTrainables:
    """Fresh modules of ``variant``: HPFA from the sites' attn1, CAA (W^{V^clip} = 0), the pose encoder
    (last conv = 0), and the UNet update (peft LoRA with B = 0, or the whole UNet)."""
    unet = components.unet
    channels = components.base_model.model_channels
    hpfa = caa = None
    if uses_hpfa(variant):
        hpfa = HPFAProjections.for_sd15(channels, config.hpfa_sites)
        hpfa.initialise_from(attn1_weights(unet, config.hpfa_sites))
    if uses_caa(variant):
        caa = CAAProjections.for_sd15(channels, config.caa_sites, config.clip_embed_dim)
    pose_encoder = PoseEncoder(channels, config.pose_encoder_widths, config.pose_channels, config.latent_factor)
    unet.requires_grad_(update.mode == "full")
    if update.mode == "lora":
        unet.add_adapter(LoraConfig(r=update.rank, lora_alpha=update.alpha, init_lora_weights=True,
                                    target_modules=UNET_LORA_TARGETS))
    return TruePoseTrainables(unet, pose_encoder, hpfa, caa)


def concat_config(config: TruePoseConfig) -> ReferenceConfig:
    """B2's read: CONCAT at the HPFA sites (s = 1), the unconditional chunk reads nothing."""
    return ReferenceConfig(mode=ReadMode.CONCAT, strength=1.0, site_weights={name: 1.0 for name in config.hpfa_sites},
                           uncond=UncondPolicy.NONE)


class ConcatPoseHook:
    """conv_in forward hook of the ``concat`` variant: adds the pose features (B_p, C, h, w) to the
    rows of the current call that read the source (B_p = 1 or one per latent), as TruePoseRun does."""

    def __init__(self, run: ReferenceRun, pose_features: torch.Tensor) -> None:
        self.run = run
        self.pose_features = pose_features

    def __call__(self, module, inputs, output: torch.Tensor) -> torch.Tensor:
        return add_pose_features(self.run.call, output, self.pose_features)


@contextmanager
def conditioned_unet(trainables: TruePoseTrainables, variant: str, config: TruePoseConfig,
                     conditions: SourceConditions, skeletons: torch.Tensor, source_context: torch.Tensor,
                     keep_grad: bool = True) -> Iterator[Predict]:
    """SourceNet's pass over ``conditions`` and the pose features of ``skeletons`` (B, 3, H, W), done once;
    yields the TargetNet call ``predict(noisy, t, context, cond_or_uncond)``. ``keep_grad`` = False runs
    the source side without gradient (a dropped batch, or sampling)."""
    unet = trainables.unet
    latents = conditions.latents
    grad = torch.enable_grad() if keep_grad and torch.is_grad_enabled() else torch.no_grad()
    if variant == "concat":
        with DiffusersReferenceHost(unet, concat_config(config)) as host:
            with grad:
                timestep = torch.full((latents.shape[0],), SOURCE_TIMESTEP, device=latents.device)
                bank = host.capture(latents, timestep, source_context, keep_grad=keep_grad)
                pose = trainables.pose_encoder(skeletons)  # (B, C, h, w)
            run = host.new_run(bank)
            hook = unet.conv_in.register_forward_hook(ConcatPoseHook(run, pose))
            try:
                yield lambda noisy, t, context, chunks: host.forward(run, noisy, t, context, chunks).sample
            finally:
                hook.remove()
                run.release()
        return
    caa = trainables.caa if uses_caa(variant) else None
    with DiffusersTruePoseHost(unet, config, trainables.hpfa, caa, trainables.pose_encoder,
                               default_reference_config(config)) as host:
        with grad:
            bank = host.source_pass(latents, source_context, keep_grad=keep_grad)
            run = host.new_run(bank, conditions.source, skeletons, caa_strength=1.0 if caa is not None else 0.0)
        try:
            yield lambda noisy, t, context, chunks: host.forward(run, noisy, t, context, chunks).sample
        finally:
            run.release()


def noised_targets(components: BaseComponents, batch: PoseTransferBatch,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ε, t and z_t of the batch's target images (noise and timesteps from the step's generator)."""
    with torch.no_grad():
        latents = components.vae.encode(batch.targets)  # (B, 4, h, w)
    noise, timesteps = noise_and_timesteps(latents, components.scheduler, generator)
    return noise, timesteps, components.scheduler.add_noise(latents, noise, timesteps)


def truepose_losses(components: BaseComponents, trainables: TruePoseTrainables, variant: str, config: TruePoseConfig,
                    encoder: ImageEncoder | None, batch: PoseTransferBatch, generator: torch.Generator,
                    dropout: float) -> dict[str, torch.Tensor]:
    """The step's ε-prediction loss ``ldm`` and ``dropped`` (1 when C was dropped for the batch)."""
    dropped = drops_condition(generator, dropout)
    noise, timesteps, noisy = noised_targets(components, batch, generator)
    context = empty_context(components, noisy.shape[0])  # (B, 77, C)
    conditions = source_conditions(components, batch, encoder if uses_caa(variant) else None)
    with conditioned_unet(trainables, variant, config, conditions, batch.skeletons, context,
                          keep_grad=not dropped) as predict:
        prediction = predict(noisy, timesteps, context, [1] if dropped else [0])
    loss = F.mse_loss(prediction.float(), noise.float())
    return {"ldm": loss, "dropped": torch.tensor(float(dropped))}


def base_losses(components: BaseComponents, unet: nn.Module, batch: PoseTransferBatch,
                generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``--stage base``: the whole tiny UNet learns toy people (sources and targets) with the empty prompt."""
    images = torch.cat([batch.sources, batch.targets])  # (2B, 3, H, W)
    with torch.no_grad():
        latents = components.vae.encode(images)  # (2B, 4, h, w)
    noise, timesteps = noise_and_timesteps(latents, components.scheduler, generator)
    noisy = components.scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(noisy, timesteps, encoder_hidden_states=empty_context(components, noisy.shape[0])).sample
    return {"ldm": F.mse_loss(prediction.float(), noise.float())}
