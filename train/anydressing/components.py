"""The base model a run trains against: a toy substrate's tiny SD1.5-layout UNet with the pixel VAE
and a tiny text encoder (``--base tiny`` or ``--base toy32``, see ``train/substrate.py``), or a local
diffusers SD1.5 folder (``--base DIR``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import CLIPTextModel, CLIPTokenizer

from ...models.errors import AtelierError
from ...models.weight_format import BaseModel
from ...models.weights import describe_file
from ..substrate import is_substrate, substrate, vae_factor_for
from ..text2graph.models import sd_scheduler
from ..text2graph.tiny import tiny_text_encoder, tiny_tokenizer
from ..tiny import tiny_unet
from .pixel_vae import PixelVAE

SD_VAE_SCALING = 0.18215


class BaseModelPathError(AtelierError, FileNotFoundError):
    """--base is neither "tiny" nor a diffusers SD1.5 folder, or --init-unet is missing."""


class InitUnetError(AtelierError, ValueError):
    """--init-unet is not a UNet state dict of the base's layout; the message names the file and what it is."""


class SDVAE:
    """A diffusers AutoencoderKL with SD's latent scaling, in the PixelVAE interface (images in [0, 1])."""

    def __init__(self, vae: AutoencoderKL, scale: float) -> None:
        self.vae = vae.requires_grad_(False).eval()
        self.scale = scale

    def to(self, device: torch.device | str) -> SDVAE:
        """Move the VAE to ``device``."""
        self.vae.to(device)
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> scaled latent means (B, 4, H/8, W/8)."""
        return self.vae.encode(images * 2.0 - 1.0).latent_dist.mean * self.scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, 4, h, w) -> images (B, 3, 8h, 8w) in [0, 1] (unclamped)."""
        return (self.vae.decode(latents / self.scale).sample + 1.0) / 2.0


@dataclass
class BaseComponents:
    """The frozen pieces around the trained modules."""

    unet: UNet2DConditionModel
    vae: PixelVAE | SDVAE
    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    scheduler: DDPMScheduler

    @property
    def base_model(self) -> BaseModel:
        """The weight file's BaseModel (model_channels and context_dim of the UNet)."""
        config = self.unet.config
        return BaseModel(family="sd15", model_channels=int(config.block_out_channels[0]),
                         context_dim=int(config.cross_attention_dim))

    def to(self, device: torch.device) -> BaseComponents:
        """Move the UNet, VAE and text encoder to ``device``."""
        self.unet.to(device)
        self.vae.to(device)
        self.text_encoder.to(device)
        return self


def load_base(base: str, seed: int = 0, init_unet: str | None = None, vae_factor: int | None = None) -> BaseComponents:
    """A toy substrate's name (``"tiny"``, ``"toy32"``): its tiny UNet (seeded), PixelVAE (the
    substrate's factor unless ``vae_factor`` is given), tiny tokenizer/text encoder; else a diffusers
    folder read with ``local_files_only`` (nothing is downloaded). ``init_unet`` replaces the UNet's
    weights with a diffusers-format state dict (stage 0's ``base_unet.safetensors``)."""
    if is_substrate(base):
        toy = substrate(base)
        tokenizer = tiny_tokenizer()
        components = BaseComponents(
            unet=tiny_unet(seed, head_dim=toy.head_dim, tied_qk_gain=toy.tied_qk_gain),
            vae=PixelVAE(vae_factor_for(base, vae_factor)), tokenizer=tokenizer,
            text_encoder=tiny_text_encoder(len(tokenizer), seed=seed + 1), scheduler=sd_scheduler(),
        )
    else:
        folder = Path(base)
        if not (folder / "unet").is_dir():
            raise BaseModelPathError(f"--base {str(folder)!r} is not a diffusers SD1.5 folder (no unet/ inside); "
                                     "use 'tiny', 'toy32' or a folder")
        options = {"local_files_only": True}
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", **options)
        components = BaseComponents(
            unet=UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **options),
            vae=SDVAE(vae, float(getattr(vae.config, "scaling_factor", SD_VAE_SCALING))),
            tokenizer=CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", **options),
            text_encoder=CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **options),
            scheduler=DDPMScheduler.from_pretrained(folder, subfolder="scheduler", **options),
        )
    if init_unet is not None:
        load_init_unet(components.unet, Path(init_unet), base)
    components.text_encoder.requires_grad_(False).eval()
    return components


def load_init_unet(unet: torch.nn.Module, path: Path, base: str) -> None:
    """``--init-unet``: a diffusers-format UNet state dict of ``base``'s layout, loaded strictly; any
    other file is one error naming the file, what it is and what was expected."""
    if not path.is_file():
        raise BaseModelPathError(f"--init-unet {str(path)!r} does not exist (write it with --stage base)")
    expected = f"a diffusers-format UNet state dict for --base {base} (base_unet.safetensors of --stage base)"
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata, keys = handle.metadata() or {}, set(handle.keys())
    except Exception as error:  # safetensors raises its own error types for a non-safetensors file
        raise InitUnetError(f"--init-unet {path} is not a safetensors file ({error}); expected {expected}") from None
    wanted = set(unet.state_dict())
    if keys != wanted:
        missing, unexpected = len(wanted - keys), len(keys - wanted)
        raise InitUnetError(f"--init-unet {path} is {describe_file(metadata, keys)}, not {expected}: {missing} UNet "
                            f"keys missing, {unexpected} unexpected")
    try:
        unet.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as error:
        first = str(error).split("\n\t")[1] if "\n\t" in str(error) else ""
        raise InitUnetError(f"--init-unet {path} has the UNet's keys but other shapes (another substrate than "
                            f"--base {base}?); expected {expected}. {first}".strip()) from None


@torch.no_grad()
def encode_text(components: BaseComponents, captions: Sequence[str]) -> torch.Tensor:
    """Context (B, 77, C) of the captions through the frozen text encoder."""
    tokens = components.tokenizer(list(captions), padding="max_length", truncation=True,
                                  max_length=components.tokenizer.model_max_length, return_tensors="pt")
    ids = tokens.input_ids.to(components.text_encoder.device)  # (B, 77)
    return components.text_encoder(ids).last_hidden_state  # (B, 77, C)
