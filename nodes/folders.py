"""The pack's model folders, registered with ComfyUI's folder_paths: ``models/atelier/`` (Atelier
weight files) and ``models/segformer/`` (human parser folders)."""

from __future__ import annotations

import os

import folder_paths

FOLDER_NAME = "atelier"
PARSER_FOLDER_NAME = "segformer"


def register_folder(name: str) -> None:
    """Register ``models/<name>/`` (and keep paths a user's extra_model_paths.yaml already added).

    A folder registered through ``add_model_folder_path`` alone gets an empty extension set, which
    ComfyUI reads as "every file"; we register the usual weight extensions explicitly.
    """
    default = os.path.join(folder_paths.models_dir, name)
    paths, _ = folder_paths.folder_names_and_paths.get(name, ([], set()))
    if default not in paths:
        paths = [default, *paths]
    folder_paths.folder_names_and_paths[name] = (paths, set(folder_paths.supported_pt_extensions))


def register_model_folder() -> None:
    """Register ``models/atelier/`` and ``models/segformer/`` (one transformers folder per parser)."""
    register_folder(FOLDER_NAME)
    register_folder(PARSER_FOLDER_NAME)
