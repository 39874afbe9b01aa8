"""Model files the garment network workflows (imagdressing_dressing.json, magic_clothing_dressing.json,
dress_a_photo.json) name, written for the workflow execution test in their PUBLISHED layouts at the
tiny checkpoint's width (model_channels 32, context_dim 64), random weights:

* ``IMAGDressing-v1_512.pt``: the pickled ``{"module": …}`` dict (``ref_unet.*``, ``proj.*``,
  ``adapter_modules.{i}.to_{k,v}_ref.weight``), its Resampler reading 1024-wide states: the width of
  the random ViT-L/14 that workflow_assets_igr writes under the ViT-H/14 file name;
* ``magic_clothing_768_vitonhd_joint.safetensors``: a bare, complete diffusers UNet.

Each goes into a fresh folder registered as an Atelier model folder. The CLIP vision file and the
SegFormer parser folder come from workflow_assets_igr and workflow_assets_parsing."""

from __future__ import annotations

import tempfile
from pathlib import Path

IMAGDRESSING_FILE = "IMAGDressing-v1_512.pt"
MAGIC_FILE = "magic_clothing_768_vitonhd_joint.safetensors"
CLIP_VISION_WIDTH = 1024  # ViT-L/14's hidden size
RESAMPLER = {"dim": 64, "depth": 1, "dim_head": 64, "heads": 1, "num_queries": 4, "embedding_dim": CLIP_VISION_WIDTH,
             "output_dim": 64, "ff_mult": 4}


def _registered_folder(comfy_node_registry, prefix: str) -> Path:
    from atelier.nodes.folders import FOLDER_NAME

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    return folder


def write_imagdressing(comfy_node_registry) -> None:
    """``IMAGDRESSING_FILE`` in the published pickled layout, for the tiny base."""
    import torch
    from atelier.train.tiny import tiny_unet
    from garment_network_files import imagdressing_state

    denoiser = tiny_unet(seed=0)
    state = imagdressing_state(tiny_unet(seed=21).state_dict(), denoiser, RESAMPLER, seed=3)
    torch.save({"module": state}, _registered_folder(comfy_node_registry, "atelier_imagdressing_") / IMAGDRESSING_FILE)


def write_magic_clothing(comfy_node_registry) -> None:
    """``MAGIC_FILE``: a bare diffusers UNet for the tiny base, as MagicClothing publishes it."""
    from atelier.train.tiny import tiny_unet
    from safetensors.torch import save_file

    state = {key: value.contiguous() for key, value in tiny_unet(seed=22).state_dict().items()}
    save_file(state, str(_registered_folder(comfy_node_registry, "atelier_magic_clothing_") / MAGIC_FILE))


ASSETS = {IMAGDRESSING_FILE: write_imagdressing, MAGIC_FILE: write_magic_clothing}
