"""The frozen CLIP image encoder of IGR's low-level path: ``tiny`` (a small, seeded
``CLIPVisionModelWithProjection`` built from a config, nothing downloaded) or a local folder in the
transformers layout (e.g. the ViT-H/14 encoder of ip-adapter_sd15, read with ``local_files_only``).

The denoiser, VAE and text encoder come from AnyDressing's ``load_base`` (``--base tiny`` or a
diffusers SD1.5 folder), reused as is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from ...models.errors import AtelierError
from ...models.igr.garment_crop import CLIP_MEAN, CLIP_STD, clip_pixels, garment_crop

PREPROCESSOR_FILE = "preprocessor_config.json"
# Seed of the frozen tiny stand-ins (the tiny text encoder of ``load_base`` and the tiny image
# encoder): fixed, not the training seed, so evaluation rebuilds exactly the encoders a run saw,
# as a pretrained SD1.5 / CLIP would be the same files for every run.
FROZEN_SEED = 0


class ImageEncoderPathError(AtelierError, FileNotFoundError):
    """--image-encoder is neither "tiny" nor a folder holding a transformers CLIP vision model."""


@dataclass(frozen=True)
class TinyImageEncoderConfig:
    """Size of the tiny image encoder.

    Args:
        image_size: side of the square crop p_g it reads.
        patch_size: ViT patch side.
        hidden_size, layers, heads, intermediate_size: transformer size.
        projection_dim: E, width of ``image_embeds`` (the IP-Adapter's image_embed_dim).
    """

    image_size: int = 32
    patch_size: int = 8
    hidden_size: int = 32
    layers: int = 2
    heads: int = 2
    intermediate_size: int = 64
    projection_dim: int = 32


class ImageEncoder:
    """A frozen CLIP vision model with its crop size and pixel normalisation.

    Args:
        model: the CLIPVisionModelWithProjection (frozen here, eval mode).
        mean, std: per-channel pixel normalisation.
    """

    def __init__(self, model: CLIPVisionModelWithProjection, mean: tuple[float, ...] = CLIP_MEAN,
                 std: tuple[float, ...] = CLIP_STD) -> None:
        self.model = model.requires_grad_(False).eval()
        self.mean = tuple(mean)
        self.std = tuple(std)

    @property
    def image_size(self) -> int:
        """Side of the square crop the encoder reads."""
        return int(self.model.config.image_size)

    @property
    def embed_dim(self) -> int:
        """E, the width of ``image_embeds``."""
        return int(self.model.config.projection_dim)

    def to(self, device: torch.device | str) -> ImageEncoder:
        """Move the model to ``device``."""
        self.model.to(device)
        return self

    def embed_garments(self, persons: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """CLIP image_embeds (B, E) of p_g = Resize(Crop(p·m)) for persons (B, 3, H, W) in [0, 1]
        and garment masks (B, H, W)."""
        crops = garment_crop(persons.permute(0, 2, 3, 1), masks, self.image_size)  # (B, S, S, 3)
        return self.embed(clip_pixels(crops, self.mean, self.std))  # (B, E)

    @torch.no_grad()
    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 3, S, S) -> image_embeds (B, E)."""
        weight = next(self.model.parameters())
        return self.model(pixel_values=pixels.to(device=weight.device, dtype=weight.dtype)).image_embeds


def tiny_image_encoder(seed: int = FROZEN_SEED, config: TinyImageEncoderConfig = TinyImageEncoderConfig()) -> ImageEncoder:
    """The tiny, seeded image encoder (the same weights for the same seed, on any machine)."""
    vision = CLIPVisionConfig(
        image_size=config.image_size, patch_size=config.patch_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.layers, num_attention_heads=config.heads,
        intermediate_size=config.intermediate_size, projection_dim=config.projection_dim,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPVisionModelWithProjection(vision)
    return ImageEncoder(model)


def load_image_encoder(source: str, seed: int = FROZEN_SEED) -> ImageEncoder:
    """``"tiny"`` or a local transformers folder (config.json + weights, optional preprocessor_config.json
    for mean/std); nothing is downloaded."""
    if source == "tiny":
        return tiny_image_encoder(seed)
    folder = Path(source)
    if not (folder / "config.json").is_file():
        raise ImageEncoderPathError(
            f"--image-encoder {str(folder)!r} is not a transformers CLIP vision folder (no config.json); use 'tiny' or a folder"
        )
    model = CLIPVisionModelWithProjection.from_pretrained(folder, local_files_only=True)
    mean, std = CLIP_MEAN, CLIP_STD
    preprocessor = folder / PREPROCESSOR_FILE
    if preprocessor.is_file():
        settings = json.loads(preprocessor.read_text())
        mean = tuple(settings.get("image_mean", mean))
        std = tuple(settings.get("image_std", std))
    return ImageEncoder(model, mean, std)
