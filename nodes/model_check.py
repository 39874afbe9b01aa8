"""Checks that a MODEL / VAE is what a node needs, with errors that name the input to fix."""

from __future__ import annotations

import comfy.supported_models

from ..models.errors import UnsupportedModelError
from ..models.weight_format import BaseModel

LATENT_CHANNELS_SD15 = 4


def require_sd15(model, input_name: str = "model") -> None:
    """Raise unless ``model`` (a ModelPatcher) is a 4-channel SD1.5-family UNet."""
    base_model = getattr(model, "model", None)
    config = getattr(base_model, "model_config", None)
    if not isinstance(config, comfy.supported_models.SD15):
        found = type(config).__name__ if config is not None else type(model).__name__
        raise UnsupportedModelError(
            f"'{input_name}' must be an SD1.5 model; got a {found} model. Load an SD1.5 checkpoint "
            f"(Load Checkpoint) and connect its MODEL output here."
        )
    in_channels = getattr(base_model.diffusion_model, "in_channels", LATENT_CHANNELS_SD15)
    if in_channels != LATENT_CHANNELS_SD15:
        raise UnsupportedModelError(
            f"'{input_name}' is an SD1.5 UNet with {in_channels} input channels (an inpainting or "
            f"instruct-pix2pix model); Atelier needs a plain 4-channel SD1.5 UNet."
        )


def require_sd15_vae(vae, input_name: str = "vae") -> None:
    """Raise unless ``vae`` encodes to SD1.5's 4-channel latent space."""
    channels = getattr(vae, "latent_channels", None)
    if channels != LATENT_CHANNELS_SD15:
        raise UnsupportedModelError(
            f"'{input_name}' encodes to {channels} latent channels; connect the VAE of an SD1.5 "
            f"checkpoint (4 channels)."
        )


def base_of(model) -> BaseModel:
    """The ``BaseModel`` (family, model_channels, context_dim) of an SD1.5 MODEL, to check weight files against."""
    unet_config = model.model.model_config.unet_config
    return BaseModel(family="sd15", model_channels=int(unet_config["model_channels"]), context_dim=int(unet_config["context_dim"]))


def require_base(model, base: BaseModel, weights_input: str, input_name: str = "model") -> None:
    """Raise unless weights made for ``base`` fit ``model``; the message names both inputs."""
    found = base_of(model)
    if found != base:
        raise UnsupportedModelError(
            f"'{weights_input}' was made for an SD1.5 UNet with model_channels {base.model_channels} and "
            f"context_dim {base.context_dim}, but '{input_name}' has model_channels {found.model_channels} and "
            f"context_dim {found.context_dim}; use weights trained for this model size"
        )
