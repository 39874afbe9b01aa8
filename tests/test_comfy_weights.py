"""The node-side weight loader inside ComfyUI: the pack folder, name resolution, managed modules. Needs COMFYUI_PATH."""

import pytest
import torch

from comfy_fixtures import requires_comfyui

pytestmark = [requires_comfyui]


def test_weight_file_in_the_pack_folder_loads_with_every_key(comfy_server_nodes, comfy_node_registry, tmp_path):
    from atelier.models.errors import WeightFileError
    from atelier.models.weight_format import BaseModel
    from atelier.models.weight_systems import REFERENCE
    from atelier.models.weights import export_untrained
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.nodes.weights_loader import load_atelier_weights, managed_module, weight_file_names

    folder_paths = comfy_node_registry.folder_paths
    assert FOLDER_NAME in folder_paths.folder_names_and_paths, "loading the pack registers models/atelier/"
    paths, extensions = folder_paths.folder_names_and_paths[FOLDER_NAME]
    assert paths[0].endswith("atelier") and ".safetensors" in extensions
    folder_paths.add_model_folder_path(FOLDER_NAME, str(tmp_path))
    base = BaseModel(model_channels=32, context_dim=64)
    export_untrained(str(tmp_path / "reference_tiny.safetensors"), REFERENCE, base)
    (tmp_path / "notes.txt").write_text("not a weight file")

    assert "reference_tiny.safetensors" in weight_file_names()
    assert "notes.txt" not in weight_file_names()
    loaded = load_atelier_weights("reference_tiny.safetensors", "reference", base)
    assert len(loaded.modules["projections"].state_dict()) == 32
    with pytest.raises(WeightFileError, match="this node needs a 'anydressing' file"):
        load_atelier_weights("reference_tiny.safetensors", "anydressing")
    with pytest.raises(FileNotFoundError):
        load_atelier_weights("missing.safetensors", "reference")

    patcher = managed_module(loaded.modules["projections"])
    assert patcher.model is loaded.modules["projections"]
    assert all(p.device == torch.device("cpu") for p in patcher.model.parameters())
