"""Tests for workflow_tools: checking UI-format workflows against /object_info and converting them to API prompts.

The fixture ``data/workflows/txt2img_core.json`` is a core-only SD1.5 txt2img graph in the format the
frontend saves (schema 0.4). Every broken variant below changes one thing and must produce exactly
the error for that thing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from workflow_tools import (
    ObjectInfoError,
    WorkflowFormatError,
    check_workflow,
    load_object_info,
    workflow_to_api,
)

TESTS_DIR = Path(__file__).resolve().parent
TXT2IMG = TESTS_DIR / "data" / "workflows" / "txt2img_core.json"
CORE_OBJECT_INFO = (
    TESTS_DIR / "snapshots" / "object_info_core-0.3.64.json",
    Path("/work/shared/comfyui/object_info-0.3.64.json"),
)

# Written by hand from the UI fixture: widget values by name (control value dropped), then links.
EXPECTED_TXT2IMG: dict[str, Any] = {
    "4": {
        "inputs": {"ckpt_name": "sd15_fashion_base.safetensors"},
        "class_type": "CheckpointLoaderSimple",
        "_meta": {"title": "Load Checkpoint"},
    },
    "6": {
        "inputs": {
            "text": "full-body photo of a model in a tailored linen blazer and wide-leg trousers, studio lighting",
            "clip": ["4", 1],
        },
        "class_type": "CLIPTextEncode",
        "_meta": {"title": "Positive prompt"},
    },
    "7": {
        "inputs": {"text": "blurry, lowres, deformed hands, watermark", "clip": ["4", 1]},
        "class_type": "CLIPTextEncode",
        "_meta": {"title": "Negative prompt"},
    },
    "5": {
        "inputs": {"width": 512, "height": 768, "batch_size": 1},
        "class_type": "EmptyLatentImage",
        "_meta": {"title": "Empty Latent Image"},
    },
    "3": {
        "inputs": {
            "seed": 123456789,
            "steps": 25,
            "cfg": 7.5,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "denoise": 1,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
        "class_type": "KSampler",
        "_meta": {"title": "KSampler"},
    },
    "8": {
        "inputs": {"samples": ["3", 0], "vae": ["4", 2]},
        "class_type": "VAEDecode",
        "_meta": {"title": "VAE Decode"},
    },
    "9": {
        "inputs": {"filename_prefix": "atelier/txt2img", "images": ["8", 0]},
        "class_type": "SaveImage",
        "_meta": {"title": "Save Image"},
    },
}


@pytest.fixture(scope="module")
def core_info() -> dict[str, Any]:
    """The /object_info of ComfyUI 0.3.64's core nodes."""
    for path in CORE_OBJECT_INFO:
        if path.is_file():
            return load_object_info(path)
    pytest.fail(f"core /object_info not found; looked in {[str(p) for p in CORE_OBJECT_INFO]}")


@pytest.fixture
def workflow() -> dict[str, Any]:
    """A fresh copy of the txt2img UI workflow."""
    with TXT2IMG.open(encoding="utf-8") as handle:
        return json.load(handle)


def node(workflow: dict[str, Any], node_id: int) -> dict[str, Any]:
    """The node with ``node_id``."""
    return next(n for n in workflow["nodes"] if n["id"] == node_id)


def set_link(workflow: dict[str, Any], link: list[Any]) -> None:
    """Add or replace a schema-0.4 link array and point its target input at it."""
    workflow["links"] = [old for old in workflow["links"] if old[0] != link[0]] + [link]
    node(workflow, link[3])["inputs"][link[4]]["link"] = link[0]


def drop_link(workflow: dict[str, Any], link_id: int) -> None:
    """Remove a link and clear the input that held it."""
    workflow["links"] = [old for old in workflow["links"] if old[0] != link_id]
    for n in workflow["nodes"]:
        for entry in n.get("inputs", []):
            if entry.get("link") == link_id:
                entry["link"] = None


def expected_with(**node_inputs: dict[str, Any]) -> dict[str, Any]:
    """EXPECTED_TXT2IMG with some nodes' inputs updated (None deletes an input)."""
    expected = copy.deepcopy(EXPECTED_TXT2IMG)
    for node_id, changes in node_inputs.items():
        inputs = expected[node_id.lstrip("n")]["inputs"]
        for name, value in changes.items():
            if value is None:
                del inputs[name]
            else:
                inputs[name] = value
    return expected


def reroute(node_id: int, in_link: int | None, out_links: list[int], out_type: str) -> dict[str, Any]:
    """A frontend Reroute node as the frontend saves it."""
    return {
        "id": node_id, "type": "Reroute", "pos": [700, 100 + node_id], "size": [75, 26], "flags": {},
        "order": 8, "mode": 0,
        "inputs": [{"name": "", "type": "*", "link": in_link}],
        "outputs": [{"name": "", "type": out_type, "links": out_links}],
        "properties": {"showOutputText": False, "horizontal": False},
    }


def lora_loader(mode: int) -> dict[str, Any]:
    """A core LoraLoader (node 22) between the checkpoint and its MODEL/CLIP consumers."""
    return {
        "id": 22, "type": "LoraLoader", "pos": [380, 600], "size": [315, 126], "flags": {},
        "order": 2, "mode": mode,
        "inputs": [
            {"name": "model", "type": "MODEL", "link": 1},
            {"name": "clip", "type": "CLIP", "link": 3},
        ],
        "outputs": [
            {"name": "MODEL", "type": "MODEL", "links": [12]},
            {"name": "CLIP", "type": "CLIP", "links": [13, 14]},
        ],
        "properties": {"Node name for S&R": "LoraLoader", "cnr_id": "comfy-core", "ver": "0.3.64"},
        "widgets_values": ["fashion_lora.safetensors", 0.8, 0.8],
    }


def insert_lora(workflow: dict[str, Any], mode: int) -> None:
    """Route MODEL and CLIP through a LoraLoader with the given mode."""
    workflow["nodes"].append(lora_loader(mode))
    drop_link(workflow, 5)
    workflow["links"] = [old for old in workflow["links"] if old[0] not in (1, 3)]
    workflow["links"] += [[1, 4, 0, 22, 0, "MODEL"], [3, 4, 1, 22, 1, "CLIP"]]
    set_link(workflow, [12, 22, 0, 3, 0, "MODEL"])
    set_link(workflow, [13, 22, 1, 6, 0, "CLIP"])
    set_link(workflow, [14, 22, 1, 7, 0, "CLIP"])


# ----------------------------------------------------------------------------- the valid workflow


def test_txt2img_checks_clean(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    assert check_workflow(workflow, core_info) == []


def test_txt2img_converts_to_the_expected_prompt(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    prompt = workflow_to_api(workflow, core_info)
    assert prompt == EXPECTED_TXT2IMG
    # graphToPrompt writes widget values first, then links, in slot order.
    assert list(prompt["3"]["inputs"]) == list(EXPECTED_TXT2IMG["3"]["inputs"])
    assert "12" not in prompt  # the MarkdownNote is frontend-only


def test_link_objects_convert_like_link_arrays(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    workflow["links"] = [dict(zip(keys, link)) for link in workflow["links"]]
    assert check_workflow(workflow, core_info) == []
    assert workflow_to_api(workflow, core_info) == EXPECTED_TXT2IMG


# ----------------------------------------------------------------------------- broken variants


def test_unknown_node_type(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    node(workflow, 8)["type"] = "VAEDecodeTypo"
    assert check_workflow(workflow, core_info) == ["node 8 (VAEDecodeTypo): unknown node type 'VAEDecodeTypo'"]
    with pytest.raises(WorkflowFormatError, match="VAEDecodeTypo"):
        workflow_to_api(workflow, core_info)


def test_input_name_that_the_node_does_not_have(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    node(workflow, 6)["inputs"][0]["name"] = "clip_model"
    assert check_workflow(workflow, core_info) == [
        "node 6 (CLIPTextEncode): input 'clip_model' does not exist on CLIPTextEncode",
        "node 6 (CLIPTextEncode): required input 'clip' is not connected",
    ]


def test_link_whose_output_type_does_not_fit_the_input(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    set_link(workflow, [1, 4, 2, 3, 0, "VAE"])
    assert check_workflow(workflow, core_info) == [
        "link 1 (node 4 slot 2 -> node 3 slot 0): output type VAE does not fit input 'model' of type MODEL"
    ]


def test_link_whose_recorded_type_disagrees(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    set_link(workflow, [1, 4, 0, 3, 0, "LATENT"])
    assert check_workflow(workflow, core_info) == [
        "link 1 (node 4 slot 0 -> node 3 slot 0): "
        "link type LATENT disagrees with output type MODEL / input 'model' type MODEL"
    ]


def test_link_from_a_missing_node(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    set_link(workflow, [9, 99, 0, 9, 0, "IMAGE"])
    assert check_workflow(workflow, core_info) == ["link 9 (node 99 slot 0 -> node 9 slot 0): node 99 does not exist"]
    with pytest.raises(WorkflowFormatError, match="99"):
        workflow_to_api(workflow, core_info)


def test_link_from_a_missing_output_slot(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    set_link(workflow, [8, 4, 7, 8, 1, "VAE"])
    assert check_workflow(workflow, core_info) == [
        "link 8 (node 4 slot 7 -> node 8 slot 1): node 4 (CheckpointLoaderSimple) has no output slot 7"
    ]


def test_input_referring_to_a_missing_link(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["links"] = [link for link in workflow["links"] if link[0] != 7]
    assert check_workflow(workflow, core_info) == ["node 8 (VAEDecode): input 'samples' refers to missing link 7"]


def test_missing_required_input(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    drop_link(workflow, 2)
    assert check_workflow(workflow, core_info) == ["node 3 (KSampler): required input 'latent_image' is not connected"]


def test_widgets_values_with_an_extra_value(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    node(workflow, 5)["widgets_values"] = [512, 768, 1, 1]
    assert check_workflow(workflow, core_info) == [
        "node 5 (EmptyLatentImage): widgets_values has 4 values, expected 3 (width, height, batch_size)"
    ]


def test_ksampler_values_without_the_control_after_generate_value(
    workflow: dict[str, Any], core_info: dict[str, Any]
) -> None:
    node(workflow, 3)["widgets_values"] = [123456789, 25, 7.5, "dpmpp_2m", "karras", 1]
    errors = check_workflow(workflow, core_info)
    assert (
        "node 3 (KSampler): widgets_values has 6 values, expected 7 "
        "(seed, seed:control_after_generate, steps, cfg, sampler_name, scheduler, denoise)"
    ) in errors
    # Every later value is read one position early, which the value checks also report.
    assert "node 3 (KSampler): control_after_generate for seed is 25, expected one of " \
        "['fixed', 'increment', 'decrement', 'randomize']" in errors
    assert "node 3 (KSampler): required input 'denoise' has no link and no widget value" in errors


def test_widgets_values_as_an_object(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    node(workflow, 5)["widgets_values"] = {"width": 640, "height": 960}
    assert check_workflow(workflow, core_info) == [
        "node 5 (EmptyLatentImage): required input 'batch_size' has no link and no widget value",
        "node 5 (EmptyLatentImage): widgets_values is an object; write a list (frontends restore widgets by position)",
    ]
    # Read by name, as recent frontends do; the missing value falls back to the widget default.
    expected = expected_with(n5={"width": 640, "height": 960, "batch_size": 1})
    assert workflow_to_api(workflow, core_info) == expected


def test_unknown_control_after_generate_mode(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    node(workflow, 3)["widgets_values"][1] = "sometimes"
    assert check_workflow(workflow, core_info) == [
        "node 3 (KSampler): control_after_generate for seed is 'sometimes', "
        "expected one of ['fixed', 'increment', 'decrement', 'randomize']"
    ]


def test_combo_value_not_among_the_options(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    node(workflow, 3)["widgets_values"][4] = "euler_fancy"
    assert check_workflow(workflow, core_info) == [
        "node 3 (KSampler): sampler_name 'euler_fancy' is not one of its options"
    ]


def test_numbers_outside_min_max(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    node(workflow, 3)["widgets_values"] = [123456789, "fixed", 0, 150, "dpmpp_2m", "karras", 1.5]
    node(workflow, 5)["widgets_values"] = [512, 768.5, 1]
    assert check_workflow(workflow, core_info) == [
        "node 5 (EmptyLatentImage): height 768.5 is not an integer",
        "node 3 (KSampler): steps 0 is below min 1",
        "node 3 (KSampler): cfg 150 is above max 100.0",
        "node 3 (KSampler): denoise 1.5 is above max 1.0",
    ]


def test_image_upload_combo_saves_an_upload_value(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    load_image = {
        "id": 26, "type": "LoadImage", "pos": [40, 800], "size": [315, 314], "flags": {}, "order": 8, "mode": 0,
        "inputs": [],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": None}, {"name": "MASK", "type": "MASK", "links": None}],
        "properties": {"Node name for S&R": "LoadImage"},
        "widgets_values": ["garment_front.png", "image"],
    }
    workflow["nodes"].append(load_image)
    assert check_workflow(workflow, core_info) == []
    # The snapshot's file list is the snapshot machine's input folder, so names are checked only on request.
    assert check_workflow(workflow, core_info, check_files=True) == [
        "node 26 (LoadImage): image 'garment_front.png' is not one of its options"
    ]
    assert workflow_to_api(workflow, core_info)["26"] == {
        "inputs": {"image": "garment_front.png"}, "class_type": "LoadImage", "_meta": {"title": "Load Image"},
    }
    load_image["widgets_values"] = ["garment_front.png"]
    assert check_workflow(workflow, core_info) == [
        "node 26 (LoadImage): widgets_values has 1 values, expected 2 (image, upload)"
    ]


# ----------------------------------------------------------------------------- frontend-only nodes and modes


def test_reroute_chain_resolves_to_the_real_origin(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["nodes"] += [reroute(20, 1, [10], "MODEL"), reroute(21, 10, [11], "MODEL")]
    set_link(workflow, [1, 4, 0, 20, 0, "MODEL"])
    set_link(workflow, [10, 20, 0, 21, 0, "MODEL"])
    set_link(workflow, [11, 21, 0, 3, 0, "*"])
    assert check_workflow(workflow, core_info) == []
    assert workflow_to_api(workflow, core_info) == EXPECTED_TXT2IMG


def test_reroute_chain_carrying_the_wrong_type(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["nodes"] += [reroute(20, 1, [10], "VAE"), reroute(21, 10, [11], "VAE")]
    set_link(workflow, [1, 4, 2, 20, 0, "VAE"])
    set_link(workflow, [10, 20, 0, 21, 0, "VAE"])
    set_link(workflow, [11, 21, 0, 3, 0, "*"])
    assert check_workflow(workflow, core_info) == [
        "link 11 (node 21 slot 0 -> node 3 slot 0): output type VAE does not fit input 'model' of type MODEL"
    ]


def test_unconnected_reroute_leaves_the_input_empty(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["nodes"].append(reroute(20, None, [11], "*"))
    drop_link(workflow, 1)
    set_link(workflow, [11, 20, 0, 3, 0, "*"])
    assert check_workflow(workflow, core_info) == [
        "node 3 (KSampler): required input 'model' resolves to nothing "
        "(unconnected Reroute or bypassed node without a matching input)"
    ]
    assert workflow_to_api(workflow, core_info) == expected_with(n3={"model": None})


def test_reroute_loop_is_reported_as_a_cycle(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["nodes"] += [reroute(20, 11, [10], "MODEL"), reroute(21, 10, [11, 12], "MODEL")]
    drop_link(workflow, 1)
    set_link(workflow, [10, 20, 0, 21, 0, "MODEL"])
    set_link(workflow, [11, 21, 0, 20, 0, "MODEL"])
    set_link(workflow, [12, 21, 0, 3, 0, "MODEL"])
    assert check_workflow(workflow, core_info) == [
        "workflow: links form a cycle among or downstream of nodes 3, 8, 9, 20, 21"
    ]
    with pytest.raises(WorkflowFormatError, match="cycle"):
        workflow_to_api(workflow, core_info)


def test_bypassed_node_passes_matching_inputs_through(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    insert_lora(workflow, mode=4)
    assert check_workflow(workflow, core_info) == []
    assert workflow_to_api(workflow, core_info) == EXPECTED_TXT2IMG


def test_bypassed_sampler_passes_its_latent_through(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    # KSampler's output 0 is LATENT but its input 0 is MODEL, so the first LATENT input is used.
    node(workflow, 3)["mode"] = 4
    assert check_workflow(workflow, core_info) == []
    expected = expected_with(n8={"samples": ["5", 0]})
    del expected["3"]
    assert workflow_to_api(workflow, core_info) == expected


def test_active_lora_is_converted(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    insert_lora(workflow, mode=0)
    assert check_workflow(workflow, core_info) == []
    expected = expected_with(n3={"model": ["22", 0]}, n6={"clip": ["22", 1]}, n7={"clip": ["22", 1]})
    expected["22"] = {
        "inputs": {
            "lora_name": "fashion_lora.safetensors", "strength_model": 0.8, "strength_clip": 0.8,
            "model": ["4", 0], "clip": ["4", 1],
        },
        "class_type": "LoraLoader",
        "_meta": {"title": "Load LoRA"},
    }
    assert workflow_to_api(workflow, core_info) == expected


def test_muted_node_drops_the_links_it_feeds(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    insert_lora(workflow, mode=2)
    assert check_workflow(workflow, core_info) == [
        "node 6 (CLIPTextEncode): required input 'clip' comes from muted node 22 (LoraLoader)",
        "node 7 (CLIPTextEncode): required input 'clip' comes from muted node 22 (LoraLoader)",
        "node 3 (KSampler): required input 'model' comes from muted node 22 (LoraLoader)",
    ]
    expected = expected_with(n3={"model": None}, n6={"clip": None}, n7={"clip": None})
    assert workflow_to_api(workflow, core_info) == expected


def primitive_node(value: Any) -> dict[str, Any]:
    """A frontend PrimitiveNode (node 23) feeding KSampler's seed widget."""
    return {
        "id": 23, "type": "PrimitiveNode", "pos": [600, 700], "size": [210, 82], "flags": {}, "order": 0, "mode": 0,
        "inputs": [],
        "outputs": [{"name": "INT", "type": "INT", "widget": {"name": "seed"}, "links": [15]}],
        "title": "seed",
        "properties": {"Run widget replace on values": False},
        "widgets_values": [value, "fixed"],
    }


def test_primitive_node_value_replaces_the_widget_value(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["nodes"].append(primitive_node(42))
    set_link(workflow, [15, 23, 0, 3, 4, "INT"])
    assert check_workflow(workflow, core_info) == []
    assert workflow_to_api(workflow, core_info) == expected_with(n3={"seed": 42})


def test_primitive_node_value_out_of_range(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["nodes"].append(primitive_node(-1))
    set_link(workflow, [15, 23, 0, 3, 4, "INT"])
    assert check_workflow(workflow, core_info) == [
        "node 23 (PrimitiveNode): value for node 3 (KSampler): seed -1 is below min 0"
    ]


def value_node(node_type: str, values: list[Any]) -> dict[str, Any]:
    """A core primitive node (node 24) whose output feeds KSampler's steps widget."""
    out_type = "INT" if node_type == "PrimitiveInt" else "FLOAT"
    return {
        "id": 24, "type": node_type, "pos": [600, 800], "size": [270, 82], "flags": {}, "order": 0, "mode": 0,
        "inputs": [],
        "outputs": [{"name": out_type, "type": out_type, "links": [16]}],
        "properties": {"Node name for S&R": node_type, "cnr_id": "comfy-core", "ver": "0.3.64"},
        "widgets_values": values,
    }


def test_widget_converted_to_an_input_takes_the_link(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["nodes"].append(value_node("PrimitiveInt", [30, "fixed"]))
    set_link(workflow, [16, 24, 0, 3, 5, "INT"])
    assert check_workflow(workflow, core_info) == []
    prompt = workflow_to_api(workflow, core_info)
    expected = expected_with(n3={"steps": ["24", 0]})
    expected["24"] = {"inputs": {"value": 30}, "class_type": "PrimitiveInt", "_meta": {"title": "Int"}}
    assert prompt == expected
    assert list(prompt["3"]["inputs"]) == list(EXPECTED_TXT2IMG["3"]["inputs"])


def test_widget_converted_to_an_input_with_the_wrong_type(workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    workflow["nodes"].append(value_node("PrimitiveFloat", [30.0]))
    set_link(workflow, [16, 24, 0, 3, 5, "FLOAT"])
    assert check_workflow(workflow, core_info) == [
        "link 16 (node 24 slot 0 -> node 3 slot 5): output type FLOAT does not fit input 'steps' of type INT"
    ]


# ----------------------------------------------------------------------------- object_info files


def test_pack_snapshot_merges_with_core(tmp_path: Path, workflow: dict[str, Any], core_info: dict[str, Any]) -> None:
    core_path = tmp_path / "core.json"
    core_path.write_text(json.dumps(core_info), encoding="utf-8")
    pack_node = {
        "input": {"required": {"model": ["MODEL", {}], "weight": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0}]}},
        "input_order": {"required": ["model", "weight"]},
        "output": ["MODEL"], "output_is_list": [False], "output_name": ["MODEL"],
        "name": "AtelierTestPatch", "display_name": "Atelier Test Patch", "description": "", "category": "atelier",
        "output_node": False, "python_module": "custom_nodes.atelier",
    }
    pack_path = tmp_path / "pack.json"
    pack_path.write_text(json.dumps({"AtelierTestPatch": pack_node}), encoding="utf-8")
    workflow["nodes"].append({
        "id": 30, "type": "AtelierTestPatch", "pos": [600, 40], "size": [300, 60], "flags": {}, "order": 2, "mode": 0,
        "inputs": [{"name": "model", "type": "MODEL", "link": 1}],
        "outputs": [{"name": "MODEL", "type": "MODEL", "links": [17]}],
        "properties": {}, "widgets_values": [0.6],
    })
    workflow["links"] = [link for link in workflow["links"] if link[0] != 1] + [[1, 4, 0, 30, 0, "MODEL"]]
    set_link(workflow, [17, 30, 0, 3, 0, "MODEL"])

    merged = load_object_info(core_path, pack_path)
    assert set(merged) == set(core_info) | {"AtelierTestPatch"}
    assert check_workflow(workflow, merged) == []
    assert check_workflow(workflow, core_info) == ["node 30 (AtelierTestPatch): unknown node type 'AtelierTestPatch'"]
    assert workflow_to_api(workflow, merged)["30"]["inputs"] == {"weight": 0.6, "model": ["4", 0]}


def test_conflicting_definitions_are_rejected(tmp_path: Path, core_info: dict[str, Any]) -> None:
    core_path = tmp_path / "core.json"
    core_path.write_text(json.dumps({"KSampler": core_info["KSampler"]}), encoding="utf-8")
    clash = copy.deepcopy(core_info["KSampler"])
    clash["output"] = ["MODEL"]
    clash_path = tmp_path / "pack.json"
    clash_path.write_text(json.dumps({"KSampler": clash}), encoding="utf-8")
    same_path = tmp_path / "same.json"
    same_path.write_text(json.dumps({"KSampler": core_info["KSampler"]}), encoding="utf-8")

    assert set(load_object_info(core_path, same_path)) == {"KSampler"}
    with pytest.raises(ObjectInfoError, match="pack.json"):
        load_object_info(core_path, clash_path)
