"""TruePose's source side in ComfyUI: SourceNet's pass over the source latent and CAA's region inputs.

SourceNet is the connected MODEL itself (TargetNet and SourceNet share weights, LoRA included; see
models/truepose/diffusers_truepose.py): one UNet call at timestep 0 over z_s = E(I_s) with the empty
prompt, banking every site's attn1 input F' (all 16 sites, so one SOURCE serves weight files with
any site list). Equal to ``DiffusersTruePoseHost.source_pass`` for the same UNet (tested). The
CLIP image embeddings of the parsing regions' box crops (``models.truepose.region_crops``) come from
the core CLIP_VISION. Encode Pose Source runs this once per source (ComfyUI caches the node);
Apply TruePose computes the per-target-pose part (M, HPFA's K'_h/V'_h, CAA's ranking) once per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import torch

from ..models.reference_bank import ReferenceBank
from ..models.sites import SITES_BY_NAME
from ..models.truepose.diffusers_truepose import SOURCE_TIMESTEP
from ..models.truepose.region_crops import scatter_embeddings, source_regions
from .reference_source import RunInputs, write_bank

ALL_SITES: tuple[str, ...] = tuple(SITES_BY_NAME)


@dataclass(frozen=True)
class PoseSource:
    """What Encode Pose Source hands to Apply TruePose (the SOURCE socket).

    Attributes:
        bank: SourceNet's F' at every site, (B_s, T', C) each, on the intermediate device.
        latent: (B_s, 4, h, w) raw VAE latent of the source image(s) (for a recomputed pass).
        context: (1, L, C) the empty prompt's text context SourceNet read.
        labels: (B_s, H, W) LIP label maps of the sources, at the cropped image size.
        region_masks: (B_s, R, H, W) CAA region masks (``region_crops.REGION_NAMES`` order).
        clip_embeds: (B_s, R, E) CLIP embeddings of the region crops, or None without CLIP vision.
    """

    bank: ReferenceBank
    latent: torch.Tensor
    context: torch.Tensor
    labels: torch.Tensor
    region_masks: torch.Tensor
    clip_embeds: torch.Tensor | None

    @property
    def batch(self) -> int:
        """B_s, the number of source images."""
        return self.latent.shape[0]

    @property
    def latent_hw(self) -> tuple[int, int]:
        """(h, w) of the source latent (the bank's token grids)."""
        return tuple(self.latent.shape[-2:])


def run_sourcenet(base_model, latent: torch.Tensor, context: torch.Tensor, site_names: tuple[str, ...] = ALL_SITES) -> ReferenceBank:
    """SourceNet's bank of F' for raw source latents (B_s, 4, h, w) already on the model's device."""
    sigma = torch.full((latent.shape[0],), SOURCE_TIMESTEP, device=latent.device)  # sigma 0 is timestep 0
    return write_bank(base_model, base_model.process_latent_in(latent), sigma, context, ReferenceBank(), site_names)


class SourceNetReference:
    """A ``ReferenceSource`` that reruns SourceNet whenever the attachment asks (Refresh.EVERY_STEP is
    only the benchmark's "no cache" baseline: SourceNet at t = 0 gives the same bank every step).

    Args:
        source: the encoded source.
        site_names: sites to bank.
        rows: rows of the bank the run reads (a single source is repeated for several target poses).
    """

    def __init__(self, source: PoseSource, site_names: tuple[str, ...], rows: int) -> None:
        self.source = source
        self.site_names = site_names
        self.rows = rows

    def capture(self, base_model, x: torch.Tensor, sigma: torch.Tensor, inputs: RunInputs, context_like: torch.Tensor) -> ReferenceBank:
        bank = run_sourcenet(base_model, self.source.latent.to(x.device), self.source.context.to(x.device), self.site_names)
        return bank if bank.batch == self.rows else bank.expanded(self.rows)


def region_embeddings(clip_vision, pixels: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Region masks (B, R, H, W) and, with ``clip_vision``, the CLIP embeddings (B, R, E) of the region crops."""
    size = int(clip_vision.image_size) if clip_vision is not None else 1
    masks, embeds = [], []
    for row in range(pixels.shape[0]):
        regions = source_regions(pixels[row], labels[row].numpy(), size)
        masks.append(regions.masks)
        if clip_vision is not None:
            with torch.no_grad():
                image_embeds = clip_vision.encode_image(regions.crops).image_embeds  # (P, E)
            embeds.append(scatter_embeddings(regions.present, image_embeds.float().cpu()))
    return torch.stack(masks), (torch.stack(embeds) if clip_vision is not None else None)


def encode_source(model, vae, context: torch.Tensor, pixels: torch.Tensor, labels: torch.Tensor, clip_vision) -> PoseSource:
    """SourceNet's bank and the CAA inputs for source pixels (B, H8, W8, 3) and LIP labels (B, H8, W8)."""
    latent = vae.encode(pixels).to(torch.float32)  # (B, 4, H/8, W/8)
    comfy.model_management.load_models_gpu([model])
    device = model.load_device
    bank = run_sourcenet(model.model, latent.to(device), context.to(device))
    region_masks, clip_embeds = region_embeddings(clip_vision, pixels.cpu().float(), labels)
    offload = comfy.model_management.intermediate_device()
    return PoseSource(bank=bank.to(offload), latent=latent.to(offload), context=context[:1].to(offload),
                      labels=labels, region_masks=region_masks, clip_embeds=clip_embeds)
