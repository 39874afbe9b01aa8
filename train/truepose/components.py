"""The source side of a TruePose batch: z_s = E(I_s), the selected parsing mask M, and CAA's region
masks with their CLIP image embeddings.

Frozen pieces are reused, not rebuilt: the UNet, VAE and text encoder come from AnyDressing's
``load_base`` (``--base tiny``: tiny SD1.5-layout UNet + pixel VAE; or a diffusers SD1.5 folder) and the
CLIP image encoder from IGR's ``load_image_encoder`` (``--image-encoder tiny``: a small, seeded, frozen
``CLIPVisionModelWithProjection`` built from a config; or a local transformers folder). The model's
``TruePoseConfig.clip_embed_dim`` is that encoder's ``projection_dim``.

Conditions per source (rule of models/truepose):
- M = ``selected_source_mask`` of the source's LIP map for the categories visible in the TARGET pose (§4.2);
- regions = ``caa_regions(LIP)`` in order; each present region's bounding box is cropped from the
  source image, zero-padded to a centred square, resized to the encoder's input and embedded
  (``models.truepose.region_crops``, shared with the nodes); an absent region gets a zero mask and a
  zero embedding (``TruePoseSource``'s convention), so it never ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...models.igr.garment_crop import clip_pixels
from ...models.parsing import LIP
from ...models.truepose.parsing_selection import selected_source_mask
from ...models.truepose.region_crops import scatter_embeddings, source_regions
from ...models.truepose.truepose_run import TruePoseSource
from ..anydressing.components import BaseComponents, encode_text
from ..igr.components import ImageEncoder
from .data import PoseTransferBatch


@dataclass(frozen=True)
class SourceConditions:
    """What the TargetNet is conditioned on besides the skeleton.

    Args:
        latents: z_s (B, 4, h, w), the SourceNet's input.
        source: M, the latent size, and (with CAA) region masks (B, R, H, W) and embeddings (B, R, E).
    """

    latents: torch.Tensor
    source: TruePoseSource


def selected_masks(batch: PoseTransferBatch) -> torch.Tensor:
    """M (B, H, W) float: each source's parsing regions of the categories visible in its target pose."""
    masks = [selected_source_mask(parsing, LIP, pose) for parsing, pose in zip(batch.parsings, batch.target_poses)]
    return torch.from_numpy(np.stack(masks).astype(np.float32))  # (B, H, W)


@torch.no_grad()
def region_conditions(encoder: ImageEncoder, images: torch.Tensor, parsings: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Region masks (B, R, H, W) and CLIP image embeddings (B, R, E) of each source's region box crops
    (``models.truepose.region_crops``, the nodes' layout); absent regions have zero masks and embeddings."""
    regions = [source_regions(image.permute(1, 2, 0), parsing, encoder.image_size)  # image (H, W, 3)
               for image, parsing in zip(images, parsings)]
    crops = torch.cat([r.crops for r in regions])  # (N, S, S, 3): every source's present regions, one batch
    embeds = encoder.embed(clip_pixels(crops, encoder.mean, encoder.std)).to(images)  # (N, E)
    counts = [int(r.present.sum()) for r in regions]
    rows = [scatter_embeddings(r.present, part) for r, part in zip(regions, embeds.split(counts))]  # (R, E) each
    return torch.stack([r.masks for r in regions]), torch.stack(rows)


@torch.no_grad()
def source_conditions(components: BaseComponents, batch: PoseTransferBatch, encoder: ImageEncoder | None) -> SourceConditions:
    """z_s, M and (when ``encoder`` is given, for CAA) the region masks and CLIP embeddings of ``batch``."""
    latents = components.vae.encode(batch.sources)  # (B, 4, h, w)
    device = batch.sources.device
    regions = embeds = None
    if encoder is not None:
        regions, embeds = region_conditions(encoder, batch.sources, batch.parsings)  # (B, R, H, W), (B, R, E)
    mask = selected_masks(batch).to(device)  # (B, H, W)
    return SourceConditions(latents, TruePoseSource(mask, tuple(latents.shape[-2:]), regions, embeds))


def empty_context(components: BaseComponents, rows: int) -> torch.Tensor:
    """The empty prompt's text embedding (rows, 77, C): PGPIS has no text, so both the SourceNet pass
    and the TargetNet (conditional and unconditional) read it, as the ComfyUI nodes do."""
    return encode_text(components, [""]).expand(rows, -1, -1)  # (rows, 77, C)
