"""Load the SD1.5 components a run trains on: a local diffusers folder, or the tiny random ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from ...models.errors import AtelierError
from .config import Text2GraphTrainConfig
from ..tiny import tiny_unet
from .tiny import tiny_text_encoder, tiny_tokenizer, tiny_vae

SD_VAE_SCALING = 0.18215


class PretrainedPathError(AtelierError, FileNotFoundError):
    """--pretrained is neither "tiny" nor a diffusers SD1.5 folder."""


@dataclass
class Components:
    """What a run uses. ``vae`` is None in pixel space."""

    unet: UNet2DConditionModel
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    vae: AutoencoderKL | None
    scheduler: DDPMScheduler
    latent_scale: float


def sd_scheduler() -> DDPMScheduler:
    """SD1.5's training noise schedule (scaled linear betas 0.00085..0.012, 1000 steps)."""
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


def load_components(config: Text2GraphTrainConfig) -> Components:
    """The tiny random models, or the diffusers folder's (``local_files_only``: nothing downloaded)."""
    if config.pretrained == "tiny":
        tokenizer = tiny_tokenizer()
        in_channels = 3 if config.space == "pixel" else 4
        unet = tiny_unet(config.seed, in_channels=in_channels, widths=config.widths)
        text_encoder = tiny_text_encoder(len(tokenizer), seed=config.seed + 1)
        vae = None if config.space == "pixel" else tiny_vae(config.seed + 2)
        return Components(unet, text_encoder, tokenizer, vae, sd_scheduler(), 1.0 if vae is None else SD_VAE_SCALING)
    folder = Path(config.pretrained)
    if not (folder / "unet").is_dir():
        raise PretrainedPathError(f"--pretrained {str(folder)!r} is not a diffusers SD1.5 folder (no unet/ inside)")
    options = {"local_files_only": True}
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", **options)
    return Components(
        unet=UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **options),
        text_encoder=CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **options),
        tokenizer=CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", **options),
        vae=vae,
        scheduler=DDPMScheduler.from_pretrained(folder, subfolder="scheduler", **options),
        latent_scale=float(getattr(vae.config, "scaling_factor", SD_VAE_SCALING)),
    )
