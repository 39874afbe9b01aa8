"""Turning a reference IMAGE into the latent the reference pass runs on."""

from __future__ import annotations

import torch

from ..models.errors import ReferenceInputError

MIN_REFERENCE_SIDE = 64
LATENT_FACTOR = 8


def crop_to_multiple_of_8(image: torch.Tensor) -> torch.Tensor:
    """Center-crop a (B, H, W, C) IMAGE so H and W are multiples of 8 (drops at most 7 px per side)."""
    height, width = image.shape[1], image.shape[2]
    new_h, new_w = height - height % LATENT_FACTOR, width - width % LATENT_FACTOR
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return image[:, top:top + new_h, left:left + new_w, :]


def check_reference_image(image: torch.Tensor, input_name: str = "reference") -> None:
    """Raise an error naming ``input_name`` unless it is an IMAGE of at least 64×64 with RGB channels."""
    if image.ndim != 4 or image.shape[-1] < 3:
        raise ReferenceInputError(
            f"'{input_name}' must be an IMAGE (batch, height, width, 3); got shape {tuple(image.shape)}"
        )
    if min(image.shape[1], image.shape[2]) < MIN_REFERENCE_SIDE:
        raise ReferenceInputError(
            f"'{input_name}' is {image.shape[2]}×{image.shape[1]} px; it must be at least "
            f"{MIN_REFERENCE_SIDE}×{MIN_REFERENCE_SIDE} (upscale it first)"
        )


def encode_reference(vae, image: torch.Tensor, input_name: str = "reference") -> torch.Tensor:
    """VAE-encode a reference IMAGE (B, H, W, C) to a raw latent (B, 4, H/8, W/8) on the CPU."""
    check_reference_image(image, input_name)
    pixels = crop_to_multiple_of_8(image)[..., :3]
    return vae.encode(pixels).to("cpu", torch.float32)
