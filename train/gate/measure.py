"""The gate's measurements on a trained toy base, each on the same held-out people and noise.

- Entropy: mean normalised entropy H/log(T) of each attn1 site's attention rows (1 = uniform,
  i.e. mean pooling; a layer that moves content attends to few tokens).
- Self-attention ablation: the relative rise of the person-region ε-MSE when the self-attention
  outputs of a site group are zeroed.
- Reference shares: for a CONCAT read of the clean target, the attention mass its tokens get and
  the weight of the one at the query's own position relative to a uniform share (1 = the queries
  do not find the matching place; a content-carrying attention finds it).
- Self-reference oracle: the clean target itself, banked at t = 0 through the same UNet, read by
  the denoiser's self-attention (CONCAT: one joint softmax, reference-only; CROSS: AnyDressing's
  eq. 6 with W' = W, λ = 1). If the target itself cannot lower the garment-region ε-MSE, no
  garment bank can. Beside it, the same reads of the same person in its other pose: a reference
  that shares content but not layout, as a garment image or a pose source does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...models.diffusers_host import DiffusersReferenceHost
from ...models.reference_bank import ReferenceBank
from ...models.reference_config import ReadMode, ReferenceConfig
from ..anydressing.components import BaseComponents, encode_text
from ..anydressing.data import ToyDressing, collate
from .probes import ProbedUNet, ProbeState

HELD_OUT_START = 100_000
GATE_CATEGORIES = ("upper", "lower")


@dataclass
class GateData:
    """Held-out toy people as latents with their regions at latent size.

    Args:
        latents: (B, 4, h, w) clean latents.
        context: (B, 77, C) empty-prompt context.
        garment_region: (B, 1, h, w) area fraction covered by the worn garments.
        person_region: (B, 1, h, w) area fraction covered by the person.
        other_latents: (B, 4, h, w) the same people in their other pose.
    """

    latents: torch.Tensor
    context: torch.Tensor
    garment_region: torch.Tensor
    person_region: torch.Tensor
    other_latents: torch.Tensor


def gate_data(components: BaseComponents, size: int, count: int, world_seed: int = 0) -> GateData:
    """``count`` held-out people wearing an upper and a lower garment, at image side ``size``."""
    dataset = ToyDressing(size, HELD_OUT_START, 4 * count + 40, world_seed, GATE_CATEGORIES, other_view=True)
    positions = dataset.groups.get(GATE_CATEGORIES, [])[:count]
    batch = collate([dataset[i] for i in positions])
    latents = components.vae.encode(batch.persons)  # (B, 4, h, w)
    shape = tuple(latents.shape[-2:])
    person = torch.stack([torch.from_numpy(dataset.person(i).masks["person"]).float() for i in positions])  # (B, H, W)
    return GateData(
        latents=latents,
        context=encode_text(components, [""] * len(positions)),
        garment_region=F.interpolate(batch.garment_masks.amax(1, keepdim=True), size=shape, mode="area"),  # (B, 1, h, w)
        person_region=F.interpolate(person[:, None], size=shape, mode="area"),  # (B, 1, h, w)
        other_latents=components.vae.encode(batch.other_views),  # (B, 4, h, w)
    )


def region_error(prediction: torch.Tensor, noise: torch.Tensor, region: torch.Tensor) -> float:
    """ε-MSE averaged over channels, weighted by ``region`` (B, 1, h, w)."""
    squared = (prediction - noise).pow(2).mean(1, keepdim=True)  # (B, 1, h, w)
    return float((squared * region).sum() / region.sum().clamp_min(1e-8))


def noised(components: BaseComponents, data: GateData, timestep: int,
           seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy latents, ε, t) at ``timestep`` with noise fixed by ``seed``."""
    noise = torch.randn(data.latents.shape, generator=torch.Generator().manual_seed(seed))
    steps = torch.full((data.latents.shape[0],), timestep)
    return components.scheduler.add_noise(data.latents, noise, steps), noise, steps


@torch.no_grad()
def probed_error(components: BaseComponents, data: GateData, timestep: int, ablate: frozenset[str] = frozenset(),
                 reference: dict[str, torch.Tensor] | None = None, seed: int = 1) -> tuple[float, ProbeState]:
    """One probed UNet call at ``timestep``: the person-region ε-MSE and what the probes saw
    (entropy; with ``reference``, its shares), with the attn1 of the ``ablate`` sites zeroed."""
    state = ProbeState(ablate=ablate, reference=reference or {})
    noisy, noise, steps = noised(components, data, timestep, seed)
    with ProbedUNet(components.unet, state):
        prediction = components.unet(noisy, steps, encoder_hidden_states=data.context).sample
    return region_error(prediction, noise, data.person_region), state


@torch.no_grad()
def reference_banks(components: BaseComponents, data: GateData) -> dict[str, ReferenceBank]:
    """The clean target's and the other pose's attn1 inputs at all 16 sites, banked at t = 0 by
    the same UNet: ``""`` and ``" other pose"`` (the suffixes of the oracle's read names)."""
    banks = {}
    with DiffusersReferenceHost(components.unet, ReferenceConfig.for_group("all")) as host:
        for suffix, latents in (("", data.latents), (" other pose", data.other_latents)):
            banks[suffix] = host.capture(latents, torch.zeros(latents.shape[0], dtype=torch.long), data.context)
    return banks


def relative_rise(ablated: float, intact: float) -> float:
    """(ablated − intact) / intact: the self-attention ablation's effect."""
    return (ablated - intact) / intact


@torch.no_grad()
def self_reference_oracle(components: BaseComponents, data: GateData, timestep: int,
                          banks: dict[str, ReferenceBank], seed: int = 1) -> dict[str, float]:
    """Garment-region ε-MSE at ``timestep`` without a reference, and with the clean target
    (``concat``, ``cross``) or the other pose (``concat other pose``, ``cross other pose``) read
    through CONCAT and through CROSS (W' = W, λ = 1) at all 16 sites; ``banks`` from reference_banks."""
    noisy, noise, steps = noised(components, data, timestep, seed)
    unet = components.unet
    errors = {"none": region_error(unet(noisy, steps, encoder_hidden_states=data.context).sample, noise, data.garment_region)}
    for suffix, bank in banks.items():
        for mode in (ReadMode.CONCAT, ReadMode.CROSS):
            with DiffusersReferenceHost(unet, ReferenceConfig.for_group("all", mode=mode, strength=1.0)) as host:
                prediction = host.forward(host.new_run(bank), noisy, steps, data.context, cond_or_uncond=[0]).sample
            errors[mode.value + suffix] = region_error(prediction, noise, data.garment_region)
    return errors
