"""Files the AnimateAnyone workflow (animate_anyone_pose_transfer.json) names, written for the
workflow execution test in their PUBLISHED layouts, random weights:

* ``denoising_unet.pth``, ``reference_unet.pth`` (without conv_norm_out / conv_out, as published)
  and ``pose_guider.pth``: pickled flat state dicts of SD1.5-layout UNets at the tiny width
  (model_channels 32) whose cross-attention reads 768-wide context, the projection width of the
  random ViT-L/14 below, as the real files read sd-image-variations' ViT-L/14 image embeddings.
  ComfyUI has no model config for that width pair, so the writer registers a test-only one
  (``TinySD15ImageContext``, matching only model_channels 32 with context_dim 768);
* ``sd_image_variations_image_encoder.safetensors``: a random ViT-L/14 CLIP vision model with
  projection (workflow_assets_igr's ``random_vitl_state``) in a clip_vision folder;
* ``vae-ft-mse-840000-ema-pruned.safetensors``: the tiny checkpoint's TAESD-format VAE, same seed,
  in a vae folder.

The target pose file is workflow_assets_truepose's ``atelier_target_pose.json``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

DENOISING_UNET = "denoising_unet.pth"
REFERENCE_UNET = "reference_unet.pth"
POSE_GUIDER = "pose_guider.pth"
IMAGE_ENCODER = "sd_image_variations_image_encoder.safetensors"
VAE = "vae-ft-mse-840000-ema-pruned.safetensors"
MODEL_CHANNELS = 32
IMAGE_CONTEXT_DIM = 768  # ViT-L/14's projection_dim
TEST_CONFIG_MARKER = "_atelier_tiny_image_context"


def register_image_context_config() -> None:
    """TEST CODE ONLY: a model config ComfyUI's detection matches for model_channels 32 with
    context_dim 768 (the tiny AnimateAnyone UNets), inserted once at the front of its list."""
    from comfy import supported_models

    if any(getattr(existing, TEST_CONFIG_MARKER, False) for existing in supported_models.models):
        return

    class TinySD15ImageContext(supported_models.SD15):
        """Test double of SD15: model_channels 32, context_dim 768."""

        unet_config: ClassVar[dict] = {"context_dim": IMAGE_CONTEXT_DIM, "model_channels": MODEL_CHANNELS,
                       "use_linear_in_transformer": False, "adm_in_channels": None, "use_temporal_attention": False}

    setattr(TinySD15ImageContext, TEST_CONFIG_MARKER, True)
    supported_models.models.insert(0, TinySD15ImageContext)


def _tiny_unet_state(seed: int) -> dict:
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(32, 64, 128, 128), cross_attention_dim=IMAGE_CONTEXT_DIM,
                                attention_head_dim=8)
    return {key: value.detach().clone() for key, value in unet.state_dict().items()}


def _registered_folder(comfy_node_registry, kind: str | None, prefix: str) -> Path:
    from atelier.nodes.folders import FOLDER_NAME

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    comfy_node_registry.folder_paths.add_model_folder_path(kind or FOLDER_NAME, str(folder))
    return folder


def write_denoising_unet(comfy_node_registry) -> None:
    import torch

    register_image_context_config()
    torch.save(_tiny_unet_state(31), _registered_folder(comfy_node_registry, None, "atelier_aa_denoising_") / DENOISING_UNET)


def write_reference_unet(comfy_node_registry) -> None:
    import torch
    from animate_anyone_files import published_reference_state

    register_image_context_config()
    state = published_reference_state(_tiny_unet_state(32))
    torch.save(state, _registered_folder(comfy_node_registry, None, "atelier_aa_reference_") / REFERENCE_UNET)


def write_pose_guider(comfy_node_registry) -> None:
    import torch
    from animate_anyone_files import published_pose_guider_state

    state = published_pose_guider_state(MODEL_CHANNELS, seed=33)
    torch.save(state, _registered_folder(comfy_node_registry, None, "atelier_aa_pose_guider_") / POSE_GUIDER)


def write_image_encoder(comfy_node_registry) -> None:
    from safetensors.torch import save_file
    from workflow_assets_igr import random_vitl_state

    folder = Path(comfy_node_registry.output_dir).parent / "aa_clip_vision"
    path = folder / IMAGE_ENCODER
    if not path.is_file():
        folder.mkdir(exist_ok=True)
        save_file(random_vitl_state(34), str(path))
    comfy_node_registry.folder_paths.add_model_folder_path("clip_vision", str(folder))


def write_vae(comfy_node_registry) -> None:
    import comfy.taesd.taesd
    from comfy_fixtures import TINY_SD15, init_weights_
    from safetensors.torch import save_file

    vae = comfy.taesd.taesd.TAESD()
    init_weights_(vae, TINY_SD15.seed + 2)  # the tiny checkpoint's VAE
    state = {key: value.detach().contiguous().clone() for key, value in vae.state_dict().items()}
    save_file(state, str(_registered_folder(comfy_node_registry, "vae", "atelier_aa_vae_") / VAE))


ASSETS = {
    DENOISING_UNET: write_denoising_unet,
    REFERENCE_UNET: write_reference_unet,
    POSE_GUIDER: write_pose_guider,
    IMAGE_ENCODER: write_image_encoder,
    VAE: write_vae,
}
