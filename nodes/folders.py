"""The pack's model folder, registered with ComfyUI's folder_paths."""

from __future__ import annotations

import os

import folder_paths

FOLDER_NAME = "atelier"


def register_model_folder() -> None:
    """Register ``models/atelier/`` (and keep paths a user's extra_model_paths.yaml already added).

    A folder registered through ``add_model_folder_path`` alone gets an empty extension set, which
    ComfyUI reads as "every file"; we register the usual weight extensions explicitly.
    """
    default = os.path.join(folder_paths.models_dir, FOLDER_NAME)
    paths, _ = folder_paths.folder_names_and_paths.get(FOLDER_NAME, ([], set()))
    if default not in paths:
        paths = [default, *paths]
    folder_paths.folder_names_and_paths[FOLDER_NAME] = (paths, set(folder_paths.supported_pt_extensions))
