"""AnyDressing's training losses beyond L_LDM: IGL's localisation term (eq. 9) and GTL (eq. 10–13).

Choices the paper leaves open, made here:
- ``||A_k − M_k||₂`` is taken as the mean squared difference over the site's tokens, averaged over
  garments and over the m Dressing-Attention sites (§4.4 averages L_loc over the m layers, eq. 15's
  λ1/m), so the trainer weighs it with λ1 alone.
- A_k is averaged over attention heads (dressing_attention.py).
- GTL's perceptual term uses VGG-16 feature distances (the paper uses DISTS, itself built on
  VGG-16) from a user-supplied weights file; without one only the high-frequency term runs, and one
  log line says so (``build_perceptual_loss``).
- M'_k of eq. 13 is the Canny edge map of the ground-truth image inside garment k's mask, dilated
  by ``edge_dilation`` pixels so the term also covers the pixels either side of an edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import cv2
import numpy as np
import torch

from ..masks import mask_to_tokens
from ..sites import SITES_BY_NAME

CANNY_LOW = 100
CANNY_HIGH = 200


def localization_loss(maps: Mapping[str, torch.Tensor], garment_masks: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
    """L_loc (eq. 9) over every site's maps.

    Args:
        maps: site name -> A (R, T, N), the rows' per-garment attention maps.
        garment_masks: (R, N, H, W) each garment's segmentation mask M_k in the target image.
        latent_hw: the latent size the maps were computed at.
    """
    if not maps:
        raise ValueError("no Dressing-Attention maps were recorded; create the run with record_maps=True")
    rows, count = garment_masks.shape[:2]
    losses = []
    for name, attention in maps.items():
        if attention.shape[0] != rows or attention.shape[2] != count:
            raise ValueError(
                f"maps at {name} are {tuple(attention.shape)} (rows, tokens, garments) but garment_masks are "
                f"{tuple(garment_masks.shape)}: give one mask per garment for every reading row"
            )
        grid = SITES_BY_NAME[name].token_grid(*latent_hw)
        target = mask_to_tokens(garment_masks.flatten(0, 1).to(attention), grid)  # (R·N, T, 1)
        target = target.reshape(rows, count, -1).transpose(1, 2)  # (R, T, N)
        losses.append((attention - target).pow(2).mean())
    return torch.stack(losses).mean()


def predicted_x0(noisy: torch.Tensor, noise_pred: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """ẑ_0 = (z_t − √(1−ᾱ_t)·ε_θ) / √ᾱ_t (eq. 10); ``alphas_cumprod`` is ᾱ_t per row (B,)."""
    alpha = alphas_cumprod.to(noisy).view(-1, 1, 1, 1)
    return (noisy - (1 - alpha).sqrt() * noise_pred) / alpha.sqrt()


def high_frequency_masks(images: torch.Tensor, garment_masks: torch.Tensor, edge_dilation: int = 1) -> torch.Tensor:
    """M'_k: Canny edges of the ground truth inside each garment mask.

    Args:
        images: (B, 3, H, W) ground truth in [0, 1].
        garment_masks: (B, N, H, W) M_k.
    Returns:
        (B, N, H, W) float masks.
    """
    kernel = np.ones((2 * edge_dilation + 1,) * 2, np.uint8)
    edges = []
    for image in images.detach().cpu():
        gray = cv2.cvtColor((image.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        edge = cv2.Canny(gray, CANNY_LOW, CANNY_HIGH)
        if edge_dilation > 0:
            edge = cv2.dilate(edge, kernel)
        edges.append(torch.from_numpy(edge > 0))
    edge_map = torch.stack(edges).to(garment_masks.device).unsqueeze(1)  # (B, 1, H, W)
    return garment_masks * edge_map.to(garment_masks.dtype)


def texture_loss(
    generated: torch.Tensor,
    target: torch.Tensor,
    garment_masks: torch.Tensor,
    timesteps: torch.Tensor,
    eta: int,
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    edge_dilation: int = 1,
) -> torch.Tensor:
    """L_texture (eq. 11): L_perc + L_high-freq on rows with t ≤ η, 0 on the others.

    Args:
        generated: Î = D(ẑ_0), (B, 3, H, W) in [0, 1].
        target: I, (B, 3, H, W) in [0, 1].
        garment_masks: (B, N, H, W) M_k.
        timesteps: (B,) training timesteps t.
        eta: η.
        perceptual: a (generated, target) -> scalar distance, or None (high-frequency term only).
    """
    near = timesteps.to(generated.device) <= eta
    if not bool(near.any()):
        return generated.new_zeros(())
    generated, target, masks = generated[near], target[near], garment_masks[near].to(generated)
    edges = high_frequency_masks(target, masks, edge_dilation)
    count = masks.shape[1]
    loss = generated.new_zeros(())
    for garment in range(count):
        edge = edges[:, garment:garment + 1]
        # eq. 13: ||Î ⊙ M'_k − I ⊙ M'_k||₂, as a mean over the edge pixels (zero where there are none)
        loss = loss + ((generated - target).pow(2) * edge).sum() / (edge.sum() * 3).clamp(min=1.0)
        if perceptual is not None:
            region = masks[:, garment:garment + 1]
            loss = loss + perceptual(generated * region, target * region)  # eq. 12
    return loss * near.float().mean() / count
