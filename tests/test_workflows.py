"""Every shipped workflow validates against ComfyUI 0.3.64's core nodes plus the pack's snapshot, and
executes in a real ComfyUI on the tiny SD1.5-shaped checkpoint (the latter needs COMFYUI_PATH)."""

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from comfy_fixtures import execute_prompt, requires_comfyui
from PIL import Image
from workflow_tools import check_workflow, load_object_info, workflow_to_api

REPO = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).parent / "snapshots"
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
# Smaller than the shipped defaults so a CPU test run takes seconds; everything else as shipped.
FAST_WIDGETS = {"EmptyLatentImage": {"width": 64, "height": 64}, "KSampler": {"steps": 2},
                "AtelierGarmentRestoration": {"width": 64, "height": 64}, "ImageScale": {"width": 64, "height": 64}}


def workflow_assets() -> dict:
    """File name -> writer(path, comfy_node_registry) for the model files workflows reference.

    Each system contributes a ``tests/workflow_assets_<system>.py`` with an ``ASSETS`` dict (e.g. an
    untrained Atelier weight file, a tiny ControlNet), so no shared file needs editing.
    """
    assets = {}
    for module_path in sorted(Path(__file__).parent.glob("workflow_assets_*.py")):
        assets.update(importlib.import_module(module_path.stem).ASSETS)
    return assets


def object_info():
    return load_object_info(SNAPSHOTS / "object_info_core-0.3.64.json", SNAPSHOTS / "object_info_atelier.json")


def prepared_prompt(path: Path, comfy_node_registry, tiny_sd15_checkpoint: Path, picture) -> dict:
    """The API prompt of a shipped workflow, ready to run on the tiny checkpoint: its model files
    written by the workflow assets, each LoadImage's file written from ``picture(name)`` (an (H, W, 3)
    uint8 array) unless an asset wrote it, and FAST_WIDGETS applied."""
    comfy_node_registry.folder_paths.add_model_folder_path("checkpoints", str(tiny_sd15_checkpoint.parent))
    prompt = workflow_to_api(json.loads(path.read_text()), object_info())
    assets = workflow_assets()
    for node in prompt.values():
        inputs = node["inputs"]
        if "ckpt_name" in inputs:
            inputs["ckpt_name"] = tiny_sd15_checkpoint.name
        for value in inputs.values():
            if isinstance(value, str) and value in assets:
                assets[value](comfy_node_registry)
        if node["class_type"] == "LoadImage" and inputs["image"] not in assets:  # an asset wrote its own file
            Image.fromarray(np.ascontiguousarray(picture(inputs["image"]))).save(comfy_node_registry.input_dir / inputs["image"])
        inputs.update(FAST_WIDGETS.get(node["class_type"], {}))
    return prompt


def test_workflows_are_shipped():
    assert WORKFLOWS, "workflows/ holds no example workflow"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_offline(path):
    workflow = json.loads(path.read_text())
    assert check_workflow(workflow, object_info()) == []
    used = {node["type"] for node in workflow["nodes"]}
    assert any(node_type.startswith("Atelier") for node_type in used), f"{path.name} uses no Atelier node"


@requires_comfyui
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_executes_in_comfyui(path, comfy_server_nodes, comfy_node_registry, tiny_sd15_checkpoint):
    rng = np.random.default_rng(0)

    def random_picture(name: str) -> np.ndarray:
        return (rng.random((96, 96, 3)) * 255).astype(np.uint8)

    prompt = prepared_prompt(path, comfy_node_registry, tiny_sd15_checkpoint, random_picture)
    result = execute_prompt(prompt)
    saved = list(comfy_node_registry.output_dir.glob("atelier_*.png"))
    assert saved, f"{path.name} ran but saved no image (outputs: {result})"


@requires_comfyui
def test_unknown_combo_value_is_refused_before_execution(comfy_server_nodes, comfy_node_registry, tiny_sd15_checkpoint):
    comfy_node_registry.folder_paths.add_model_folder_path("checkpoints", str(tiny_sd15_checkpoint.parent))
    prompt = workflow_to_api(json.loads((REPO / "workflows" / "reference_attention.json").read_text()), object_info())
    for node in prompt.values():
        if node["class_type"] == "AtelierReferenceAttention":
            node["inputs"]["mode"] = "sideways"
        if "ckpt_name" in node["inputs"]:
            node["inputs"]["ckpt_name"] = tiny_sd15_checkpoint.name
    with pytest.raises(AssertionError, match="'mode' is 'sideways'"):
        execute_prompt(prompt)
