"""Text2Graph in a real ComfyUI (needs COMFYUI_PATH): the nodes' CONDITIONING samples with KSampler
and a ControlNet like any other, input errors are named before execution, and a LoRA trained two
steps by ``train.text2graph`` loads in the core LoRA loader with every key."""

import logging

import pytest
import torch
from comfy_fixtures import (
    empty_latent,
    encode_prompt,
    execute_prompt,
    requires_comfyui,
    sample,
)
from workflow_assets_text2graph import write_tiny_controlnet

pytestmark = [requires_comfyui]

PAPER_PROMPT = "a navy blue jacket with a red straight-point collar and a blue belted waist"


def _nodes():
    from atelier.nodes.text2graph_nodes import (
        Text2GraphEncodeNode,
        Text2GraphParseNode,
        Text2GraphRenderNode,
    )

    return Text2GraphParseNode, Text2GraphEncodeNode, Text2GraphRenderNode


def _parse(text, edited_json=""):
    parse, _, _ = _nodes()
    return parse.execute(text, "auto", "paper", "rules", "", edited_json).result


def _encode(clip, triples, mode):
    _, encode, _ = _nodes()
    return encode.execute(clip, triples, mode).result[0]


def test_parse_outputs_triples_editable_json_and_the_triple_prompt(comfyui):
    triples, text, triple_prompt = _parse(PAPER_PROMPT)
    assert ("collar", "has-color", "red") in triples
    assert triple_prompt.startswith("(jacket, has-color, navy blue), (jacket, has-feature, collar)")
    edited = text.replace('"red"', '"green"')
    assert ("collar", "has-color", "green") in _parse(PAPER_PROMPT, edited_json=edited)[0]


def test_bound_encoding_is_one_window_per_entity_and_linearized_matches_clip_text_encode(tiny_sd15):
    _, clip, _ = tiny_sd15
    triples = _parse(PAPER_PROMPT)[0]
    bound = _encode(clip, triples, "bound")
    assert bound[0][0].shape == (1, 77 * 3, 64)
    linearized = _encode(clip, triples, "linearized")
    reference = encode_prompt(clip, _parse(PAPER_PROMPT)[2])
    assert torch.equal(linearized[0][0], reference[0][0])


def test_render_gives_one_rgb_image(comfyui):
    _, _, render = _nodes()
    image = render.execute(_parse(PAPER_PROMPT)[0], 256, 192).result[0]
    assert image.shape == (1, 192, 256, 3) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert float(image.std()) > 0.01


def test_conditioning_samples_with_ksampler_and_a_controlnet(tiny_sd15, comfy_node_registry):
    import comfy.controlnet

    from nodes import ControlNetApplyAdvanced

    model, clip, _ = tiny_sd15
    positive = _encode(clip, _parse(PAPER_PROMPT)[0], "bound")
    negative = encode_prompt(clip, "blurry")
    latent = empty_latent(1, 64, 64)
    plain = sample(model, positive, negative, latent, steps=2, cfg=7.0, seed=1)
    control = comfy.controlnet.load_controlnet(str(write_tiny_controlnet(comfy_node_registry)))
    pose = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    controlled_pos, controlled_neg = ControlNetApplyAdvanced().apply_controlnet(positive, negative, control, pose, 1.0, 0.0, 1.0)
    controlled = sample(model, controlled_pos, controlled_neg, latent, steps=2, cfg=7.0, seed=1)
    assert plain.shape == controlled.shape == (1, 4, 8, 8)
    assert torch.isfinite(controlled).all() and not torch.equal(plain, controlled)


def _api_prompt(parse_inputs, mode="bound"):
    inputs = {"text": PAPER_PROMPT, "entity_names": "auto", "relation_set": "paper", "backend": "rules",
              "llm_path": "", "edited_json": "", **parse_inputs}
    return {
        "1": {"class_type": "AtelierText2GraphParse", "inputs": inputs},
        "2": {"class_type": "AtelierText2GraphRender", "inputs": {"triples": ["1", 0], "width": 128, "height": 128}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "atelier_tiny_sd15.safetensors"}},
        "5": {"class_type": "AtelierText2GraphEncode", "inputs": {"clip": ["4", 1], "triples": ["1", 0], "mode": mode}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "blurry"}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "positive": ["5", 0], "negative": ["6", 0], "latent_image": ["7", 0], "seed": 0,
            "steps": 1, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["4", 2]}},
        "10": {"class_type": "PreviewImage", "inputs": {"images": ["9", 0]}},
    }


@pytest.mark.parametrize("mode", ["bound", "linearized"])
def test_the_graph_runs_as_a_prompt(comfy_server_nodes, tiny_sd15_checkpoint, mode):
    result = execute_prompt(_api_prompt({}, mode=mode))
    assert {"3", "10"} <= set(result["outputs"])


@pytest.mark.parametrize("inputs,message", [
    ({"entity_names": "sideways"}, "'entity_names' is 'sideways'"),
    ({"backend": "local_llm", "llm_path": " "}, "'llm_path' is empty"),
    ({"edited_json": '[["jacket", "has-color" "red"]]'}, "edited_json: invalid JSON at line 1, column 25"),
    ({"edited_json": '[["jacket", "wears", "red"]]'}, "edited_json: triple 0 has relation 'wears'"),
])
def test_bad_inputs_are_refused_by_name_before_execution(comfy_server_nodes, tiny_sd15_checkpoint, inputs, message):
    with pytest.raises(AssertionError, match=message):
        execute_prompt(_api_prompt(inputs))


def test_unknown_encode_mode_is_refused_by_name(comfy_server_nodes, tiny_sd15_checkpoint):
    with pytest.raises(AssertionError, match="'mode' is 'sideways'"):
        execute_prompt(_api_prompt({}, mode="sideways"))


def test_two_step_lora_loads_every_key_in_the_core_lora_loader(tiny_sd15, tmp_path, caplog):
    import comfy.lora
    import comfy.sd
    import comfy.utils
    from atelier.train.text2graph import Text2GraphTrainConfig, train

    config = Text2GraphTrainConfig(steps=2, batch_size=1, resolution=32, num_samples=2, learning_rate=1e-2,
                                   output=str(tmp_path / "kg_lora.safetensors"))
    lora = comfy.utils.load_torch_file(str(train(config).output), safe_load=True)
    model, clip, _ = tiny_sd15
    with caplog.at_level(logging.WARNING):
        patched_model, _ = comfy.sd.load_lora_for_models(model, clip, lora, 1.0, 1.0)
    not_loaded = [r.getMessage() for r in caplog.records if "lora key not loaded" in r.getMessage()]
    assert not_loaded == []
    patches = comfy.lora.load_lora(lora, comfy.lora.model_lora_keys_unet(model.model, {}))
    assert len(patches) * 3 == len(lora) == 384  # 16 blocks x (attn1, attn2) x (q, k, v, out): down, up, alpha
    latent = empty_latent(1, 64, 64)
    cond, uncond = encode_prompt(clip, "(jacket, has-color, red)"), encode_prompt(clip, "")
    before = sample(model, cond, uncond, latent, steps=2, cfg=1.0, seed=3)
    after = sample(patched_model, cond, uncond, latent, steps=2, cfg=1.0, seed=3)
    assert not torch.allclose(before, after)
