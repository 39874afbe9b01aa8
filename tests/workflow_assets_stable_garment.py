"""Model files the StableGarment workflow (stable_garment_text2img.json) names, written for the workflow
execution test: ``garment_encoder/diffusion_pytorch_model.safetensors``, a garment encoder in the published
layout (the pruned 662-tensor diffusers state dict, with the folder's config.json) at the tiny SD1.5 width
(model_channels 32, context_dim 64), in a fresh folder registered as an Atelier model folder. The test
writes a random garment image for LoadImage."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

GARMENT_ENCODER = "garment_encoder/diffusion_pytorch_model.safetensors"


def write_garment_encoder(comfy_node_registry) -> None:
    """A seeded random garment encoder (diffusers' own init of a tiny SD1.5-layout UNet, less the pruned tail)."""
    from atelier.models.garment_networks.stable_garment import (
        CONFIG_CLASS_NAME,
        PRUNED_KEYS,
    )
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.train.tiny import tiny_unet
    from safetensors.torch import save_file

    root = Path(tempfile.mkdtemp(prefix="atelier_stable_garment_"))
    path = root / GARMENT_ENCODER
    path.parent.mkdir(parents=True)
    unet = tiny_unet(seed=4)
    state = {key: value.contiguous() for key, value in unet.state_dict().items() if key not in PRUNED_KEYS}
    save_file(state, str(path))
    config = {"_class_name": CONFIG_CLASS_NAME, **{key: value for key, value in unet.config.items() if not key.startswith("_")}}
    (path.parent / "config.json").write_text(json.dumps(config, default=list))
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(root))


ASSETS = {GARMENT_ENCODER: write_garment_encoder}
