"""Text2Graph training side: config checks, data (toy world, outfit grids, H&M detail_desc parsed
into triples), two LoRA steps on the tiny SD1.5-layout models and the kohya export ComfyUI loads
(the load itself is checked in test_text2graph_comfy.py)."""

import pytest
import torch
from atelier.models.text2graph import Triple
from atelier.train.text2graph import (
    Text2GraphTrainConfig,
    TrainConfigError,
    kohya_unet_lora,
    train,
)
from atelier.train.text2graph.__main__ import parse_args
from atelier.train.text2graph.data import (
    HMTriplePairs,
    ToyWorldOutfitGrid,
    ToyWorldPeople,
    hm_triples,
)
from atelier.train.text2graph.lora_export import LoraExportError, read_metadata
from atelier.train.tiny import tiny_unet
from fake_datasets import build_hm
from safetensors.torch import load_file


@pytest.mark.parametrize("overrides,flag", [
    ({"data": "imagenet"}, "--data"), ({"prompt_mode": "poem"}, "--prompt-mode"), ({"data": "hm"}, "--hm-root"),
    ({"resolution": 36}, "--resolution"), ({"steps": 0}, "--steps"), ({"space": "pixel"}, "--space latent"),
])
def test_config_errors_name_the_flag(overrides, flag):
    with pytest.raises(TrainConfigError, match=flag):
        Text2GraphTrainConfig(**overrides)


def test_cli_flags_map_onto_the_config():
    config = parse_args(["--data", "toyworld_outfits", "--prompt-mode", "bound", "--steps", "7", "--lr",
                         "1e-4", "--train-text-encoder", "--adapter", "full", "--widths", "32", "32", "64", "64"])
    assert (config.data, config.prompt_mode, config.steps, config.learning_rate) == ("toyworld_outfits", "bound", 7, 1e-4)
    assert config.train_text_encoder and config.widths == (32, 32, 64, 64)
    assert parse_args([]).learning_rate == 1e-6  # the paper's learning rate is the default


def test_tiny_unet_has_the_shapes_of_the_tiny_comfyui_checkpoint_layout():
    unet = tiny_unet(0)
    assert tuple(unet.config.block_out_channels) == (32, 64, 128, 128)
    assert unet.config.cross_attention_dim == 64
    attn1 = [m for name, m in unet.named_modules() if name.endswith("attn1")]
    assert len(attn1) == 16 and all(m.heads == 8 for m in attn1)


def test_toy_world_samples_carry_image_caption_and_triples():
    person = ToyWorldPeople(32, 2)[1]
    assert person["image"].shape == (3, 32, 32) and person["caption"].startswith("a person wearing")
    grid = ToyWorldOutfitGrid(64, 2)[0]
    assert grid["image"].shape == (3, 64, 64) and 0.0 <= float(grid["image"].min()) <= float(grid["image"].max()) <= 1.0
    assert all(len(triple) == 3 for triple in grid["triples"])


def test_hm_detail_desc_is_parsed_into_triples_with_the_colour_column(tmp_path):
    build_hm(tmp_path / "hm")
    pairs = HMTriplePairs(tmp_path / "hm", 32)
    sample = pairs[0]
    assert sample["image"].shape == (3, 32, 32)
    assert Triple("top", "has-material", "jersey") in sample["triples"]
    assert Triple("top", "has-color", "black") in sample["triples"]
    assert hm_triples("", "Vest top", "White") == [Triple("vest top", "has-color", "white")]
    assert hm_triples("Red cotton shirt", "Shirt", "Blue") == [Triple("shirt", "has-color", "red"),
                                                                Triple("shirt", "has-material", "cotton")]


def test_two_lora_steps_export_kohya_keys_for_every_attention_projection(tmp_path):
    output = tmp_path / "lora.safetensors"
    config = Text2GraphTrainConfig(steps=2, batch_size=2, resolution=32, num_samples=4, learning_rate=1e-3,
                                   prompt_mode="bound", output=str(output))
    result = train(config)
    assert len(result.losses) == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    state = load_file(str(output))
    assert len(state) == 16 * 2 * 4 * 3  # sites x (attn1, attn2) x (q, k, v, out) x (down, up, alpha)
    assert all(key.startswith("lora_unet_") and key.endswith((".lora_down.weight", ".lora_up.weight", ".alpha"))
               for key in state)
    ups = [value for key, value in state.items() if key.endswith("lora_up.weight")]
    assert all(float(up.abs().max()) > 0 for up in ups)  # trained away from peft's zero init
    assert state["lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"].shape == (4, 64)
    assert read_metadata(output)["atelier_prompt_mode"] == "bound"


def test_export_refuses_keys_that_are_not_lora_weights():
    with pytest.raises(LoraExportError, match="conv_in.weight"):
        kohya_unet_lora({"conv_in.weight": torch.zeros(1)}, alpha=1.0)
    with pytest.raises(LoraExportError, match="lacks its down or up"):
        kohya_unet_lora({"a.to_q.lora_A.weight": torch.zeros(1, 1)}, alpha=1.0)
