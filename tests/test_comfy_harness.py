"""Tests of the ComfyUI test harness itself (tests/comfy_fixtures.py); skipped without COMFYUI_PATH."""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from comfy_fixtures import (
    REPO_ROOT,
    count_attn1_sites,
    diffusers_unet_from_comfy,
    empty_latent,
    encode_prompt,
    execute_prompt,
    load_pack,
    new_prompt_executor,
    pack_object_info,
    requires_comfyui,
    sample,
)

pytestmark = [requires_comfyui, pytest.mark.comfyui]

PROBE_NODES_SOURCE = '''
"""Throwaway V3 pack for the harness tests."""
from comfy_api.latest import ComfyExtension, io


class ProbeScaleImage(io.ComfyNode):
    """IMAGE -> IMAGE: multiply by a factor, or invert."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarnessProbe_ScaleImage",
            display_name="Harness probe: scale image",
            category="harness_probe",
            inputs=[
                io.Image.Input("image"),
                io.Float.Input("factor", default=1.0, min=0.0, max=4.0, step=0.05),
                io.Combo.Input("mode", options=["multiply", "invert"]),
            ],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(cls, image, factor, mode) -> io.NodeOutput:
        out = 1.0 - image if mode == "invert" else (image * factor).clamp(0.0, 1.0)
        return io.NodeOutput(out)


class ProbeFail(io.ComfyNode):
    """Output node that always raises."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarnessProbe_Fail",
            category="harness_probe",
            inputs=[io.Latent.Input("samples")],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, samples) -> io.NodeOutput:
        raise ValueError("probe failure on purpose")


class ProbeExtension(ComfyExtension):
    async def get_node_list(self):
        return [ProbeScaleImage, ProbeFail]
'''

PROBE_INIT_SOURCE = '''
from .probe_nodes import ProbeExtension


async def comfy_entrypoint():
    return ProbeExtension()
'''

SNAPSHOT_VERSION = "0.3.64"
OBJECT_INFO_SNAPSHOT = REPO_ROOT.parent / "shared" / "comfyui" / f"object_info-{SNAPSHOT_VERSION}.json"


@pytest.fixture(scope="module")
def probe_pack_ids(comfy_node_registry, tmp_path_factory) -> list[str]:
    """Node ids of the throwaway V3 pack, loaded under a random ``harness_probe_<hex>`` name."""
    pack_dir = tmp_path_factory.mktemp("probe_pack_src")
    (pack_dir / "__init__.py").write_text(textwrap.dedent(PROBE_INIT_SOURCE))
    (pack_dir / "probe_nodes.py").write_text(textwrap.dedent(PROBE_NODES_SOURCE))
    return load_pack(pack_dir, custom_nodes_dir=comfy_node_registry.custom_nodes_dir, name_prefix="harness_probe")


def _pipeline_prompt(ckpt_name: str, *, seed: int, factor: float, mode: str = "multiply") -> dict:
    """Checkpoint -> text encode x2 -> 64x64 KSampler (2 steps) -> VAEDecode -> probe node -> SaveImage."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red dress", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
                "seed": seed, "steps": 2, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "HarnessProbe_ScaleImage", "inputs": {"image": ["6", 0], "factor": factor, "mode": mode}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "harness_probe"}},
    }


def test_tiny_checkpoint_loads_as_sd15_family_with_16_self_attention_sites(comfyui, tiny_sd15):
    model_patcher, clip, vae = tiny_sd15
    model_config = model_patcher.model.model_config
    assert isinstance(model_config, comfyui.supported_models.SD15)
    assert type(model_config).__name__ == "TinySD15"
    assert model_config.unet_config["model_channels"] == 32
    assert model_config.unet_config["context_dim"] == 64
    assert count_attn1_sites(model_patcher) == 16
    assert type(vae.first_stage_model).__name__ == "TAESD"
    conditioning = encode_prompt(clip, "a red dress")
    assert conditioning[0][0].shape == (1, 77, 64)
    assert torch.isfinite(conditioning[0][0]).all()


def test_sampling_is_finite_deterministic_and_seed_dependent(tiny_sd15):
    model_patcher, clip, _ = tiny_sd15
    positive, negative = encode_prompt(clip, "a red dress"), encode_prompt(clip, "")
    latent = empty_latent(1, 64, 64)

    first = sample(model_patcher, positive, negative, latent, steps=2, cfg=7.0, seed=11)
    again = sample(model_patcher, positive, negative, latent, steps=2, cfg=7.0, seed=11)
    other_seed = sample(model_patcher, positive, negative, latent, steps=2, cfg=7.0, seed=12)

    assert first.shape == (1, 4, 8, 8)
    assert torch.isfinite(first).all()
    assert first.std() > 0
    assert torch.equal(first, again)
    assert not torch.equal(first, other_seed)


def test_diffusers_copy_matches_comfyui_unet_forward(comfyui, tiny_sd15):
    model_patcher = tiny_sd15[0]
    comfyui.model_management.load_models_gpu([model_patcher])
    unet = diffusers_unet_from_comfy(model_patcher)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 16, generator=generator)  # (B, 4, H/8, W/8)
    context = torch.randn(2, 77, 64, generator=generator)  # (B, tokens, context_dim)
    timesteps = torch.tensor([10.0, 700.0])

    with torch.inference_mode():
        comfy_out = model_patcher.model.diffusion_model(x, timesteps, context)
        diffusers_out = unet(x, timesteps, encoder_hidden_states=context).sample

    assert comfy_out.shape == diffusers_out.shape == x.shape
    assert comfy_out.abs().mean() > 0.1
    torch.testing.assert_close(diffusers_out, comfy_out, atol=1e-4, rtol=1e-4)


def test_throwaway_pack_loads_under_a_random_name(probe_pack_ids):
    assert sorted(probe_pack_ids) == ["HarnessProbe_Fail", "HarnessProbe_ScaleImage"]
    info = pack_object_info(probe_pack_ids)
    modules = {entry["python_module"] for entry in info.values()}
    assert len(modules) == 1
    assert re.fullmatch(r"custom_nodes\.harness_probe_[0-9a-f]{8}", modules.pop())


def test_pack_object_info_reports_the_probe_node_inputs(probe_pack_ids):
    info = pack_object_info(["HarnessProbe_ScaleImage"])["HarnessProbe_ScaleImage"]
    required = info["input"]["required"]
    assert list(required) == ["image", "factor", "mode"]
    assert required["image"][0] == "IMAGE"
    assert required["factor"][0] == "FLOAT"
    assert {k: required["factor"][1][k] for k in ("default", "min", "max", "step")} == {
        "default": 1.0, "min": 0.0, "max": 4.0, "step": 0.05,
    }
    assert required["mode"][0] == "COMBO"
    assert required["mode"][1]["options"] == ["multiply", "invert"]
    assert info["output"] == ["IMAGE"]
    assert info["output_node"] is False
    assert info["display_name"] == "Harness probe: scale image"


def test_pack_object_info_matches_the_core_object_info_snapshot(comfyui, comfy_node_registry):
    version = (comfyui.path / "comfyui_version.py").read_text()
    if not OBJECT_INFO_SNAPSHOT.is_file() or f'"{SNAPSHOT_VERSION}"' not in version:
        pytest.skip(f"needs {OBJECT_INFO_SNAPSHOT} and a ComfyUI {SNAPSHOT_VERSION} checkout")
    snapshot = json.loads(OBJECT_INFO_SNAPSHOT.read_text())
    core_ids = ["KSampler", "CLIPTextEncode", "EmptyLatentImage", "VAEDecode", "SaveImage",
                "PerturbedAttentionGuidance", "LatentAdd"]
    assert pack_object_info(core_ids) == {node_id: snapshot[node_id] for node_id in core_ids}


def test_probe_node_executes_in_a_full_prompt_like_the_direct_helpers(
    comfy_node_registry, probe_pack_ids, tiny_sd15, tiny_sd15_checkpoint
):
    executor = new_prompt_executor()
    prompt = _pipeline_prompt(tiny_sd15_checkpoint.name, seed=5, factor=0.5)

    history = execute_prompt(prompt, executor=executor)

    assert history["status"]["completed"] is True
    assert "7" in history["executed_nodes"]
    saved = history["outputs"]["8"]["images"]
    assert len(saved) == 1 and saved[0]["type"] == "output"
    png_path = comfy_node_registry.output_dir / saved[0]["subfolder"] / saved[0]["filename"]
    pixels = np.asarray(Image.open(png_path).convert("RGB"))  # (H, W, 3) uint8

    model_patcher, clip, vae = tiny_sd15
    samples = sample(model_patcher, encode_prompt(clip, "a red dress"), encode_prompt(clip, ""),
                     empty_latent(1, 64, 64), steps=2, cfg=7.0, seed=5)
    with torch.inference_mode():
        image = (vae.decode(samples) * 0.5).clamp(0.0, 1.0)  # (1, 64, 64, 3)
    expected = np.clip(255.0 * image[0].cpu().numpy(), 0, 255).astype(np.uint8)
    assert pixels.shape == (64, 64, 3)
    assert pixels.std() > 0
    np.testing.assert_array_equal(pixels, expected)

    rerun = execute_prompt(prompt, executor=executor)
    assert rerun["executed_nodes"] == []
    changed = execute_prompt(_pipeline_prompt(tiny_sd15_checkpoint.name, seed=5, factor=0.25), executor=executor)
    assert changed["executed_nodes"] == ["7", "8"]


def test_execute_prompt_reports_validation_errors(probe_pack_ids, tiny_sd15_checkpoint):
    prompt = _pipeline_prompt(tiny_sd15_checkpoint.name, seed=5, factor=9.0)
    with pytest.raises(AssertionError, match=r"node 7 \(HarnessProbe_ScaleImage\): Value 9.0 bigger than max of 4.0"):
        execute_prompt(prompt)


def test_execute_prompt_reports_node_exceptions(probe_pack_ids):
    prompt = {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {"class_type": "HarnessProbe_Fail", "inputs": {"samples": ["1", 0]}},
    }
    with pytest.raises(AssertionError, match=r"node 2 \(HarnessProbe_Fail\) failed: ValueError: probe failure on purpose"):
        execute_prompt(prompt)
