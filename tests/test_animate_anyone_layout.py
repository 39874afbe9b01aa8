"""AnimateAnyone's stage-1 files (pure torch, small width): key-based detection, the conversion of
both UNets into complete SD1.5 diffusers state dicts, the PoseGuider's key names and math, the
safetensors conversion, and errors that name the file and the key."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from animate_anyone_files import (
    OUTPUT_KEYS,
    published_pose_guider_state,
    published_reference_state,
)
from atelier.models.errors import WeightFileError
from atelier.models.garment_networks.sd15_layout import sd15_diffusers_unet_keys
from atelier.models.pose_networks.animate_anyone import (
    AnimateAnyoneFile,
    complete_reference_unet,
    convert_to_safetensors,
    denoising_unet_state,
    file_kind,
    read_denoising_unet,
    read_pose_guider,
    read_reference_unet,
)
from atelier.models.pose_networks.pose_guider import (
    PUBLISHED_WIDTHS,
    PoseGuider,
    pose_guider_from_state,
)


@pytest.fixture(scope="module")
def unet_state():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64, 128, 128), cross_attention_dim=64, attention_head_dim=8)
    return {key: value.detach().clone() for key, value in unet.state_dict().items()}


def test_the_diffusers_layout_is_the_sd15_key_set_and_the_reference_lacks_only_the_output(unet_state):
    assert set(unet_state) == sd15_diffusers_unet_keys()
    reference = published_reference_state(unet_state)
    assert sd15_diffusers_unet_keys() - set(reference) == set(OUTPUT_KEYS)


def test_detection_reads_the_keys_not_the_name(unet_state):
    assert file_kind(unet_state) == AnimateAnyoneFile.DENOISING_UNET
    assert file_kind(published_reference_state(unet_state)) == AnimateAnyoneFile.REFERENCE_UNET
    assert file_kind(published_pose_guider_state(32)) == AnimateAnyoneFile.POSE_GUIDER
    assert file_kind({"lora_unet_down.weight": torch.zeros(1)}) is None


def test_reference_unet_is_completed_with_an_identity_norm_and_a_zero_conv_out(unet_state):
    reference = published_reference_state(unet_state)
    filled = complete_reference_unet(reference, "reference_unet.pth")
    assert set(filled) == sd15_diffusers_unet_keys()
    assert all(torch.equal(filled[key], value) for key, value in reference.items())
    assert torch.equal(filled["conv_norm_out.weight"], torch.ones(32))
    assert not filled["conv_out.weight"].any() and filled["conv_out.weight"].shape == (4, 32, 3, 3)


def test_denoising_unet_keeps_every_key_and_drops_motion_modules(unet_state):
    stage2 = dict(unet_state)
    stage2["down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight"] = torch.zeros(2, 2)
    kept = denoising_unet_state(stage2, "denoising_unet.pth")
    assert set(kept) == set(unet_state)


def test_pose_guider_has_the_published_keys_and_math():
    guider = PoseGuider()
    assert guider.config.block_out_channels == PUBLISHED_WIDTHS
    state = published_pose_guider_state(320)
    assert set(guider.state_dict()) == set(state)
    assert not PoseGuider().conv_out.weight.any()  # zero-initialised, as zero_module in the public code
    loaded = pose_guider_from_state(state, "pose_guider.pth")
    drawing = torch.rand(1, 3, 64, 48)
    h = F.silu(F.conv2d(drawing, state["conv_in.weight"], state["conv_in.bias"], padding=1))
    for index in range(6):
        stride = 2 if index % 2 else 1  # blocks alternate a same-width conv and a stride-2 conv
        h = F.silu(F.conv2d(h, state[f"blocks.{index}.weight"], state[f"blocks.{index}.bias"], padding=1, stride=stride))
    expected = F.conv2d(h, state["conv_out.weight"], state["conv_out.bias"], padding=1)  # (1, 320, 8, 6)
    out = loaded(drawing)
    assert out.shape == (1, 320, 8, 6)
    torch.testing.assert_close(out, expected)


def test_published_pickles_load_and_convert_to_safetensors(unet_state, tmp_path):
    torch.save(published_reference_state(unet_state), tmp_path / "reference_unet.pth")
    torch.save(unet_state, tmp_path / "denoising_unet.pth")
    torch.save(published_pose_guider_state(32), tmp_path / "pose_guider.pth")
    reference = read_reference_unet(str(tmp_path / "reference_unet.pth"))
    denoising = read_denoising_unet(str(tmp_path / "denoising_unet.pth"))
    guider = read_pose_guider(str(tmp_path / "pose_guider.pth"))
    assert guider.config.embedding_channels == 32
    for name in ("reference_unet", "denoising_unet", "pose_guider"):
        kind = convert_to_safetensors(str(tmp_path / f"{name}.pth"), str(tmp_path / f"{name}.safetensors"))
        assert kind.value == name
    again = read_reference_unet(str(tmp_path / "reference_unet.safetensors"))
    assert all(torch.equal(again[key], value) for key, value in reference.items())
    assert set(read_denoising_unet(str(tmp_path / "denoising_unet.safetensors"))) == set(denoising)


def test_errors_name_the_input_the_file_and_the_key(unet_state, tmp_path):
    torch.save(unet_state, tmp_path / "denoising_unet.pth")
    with pytest.raises(WeightFileError, match="'reference_unet' is denoising_unet.pth.*denoising_unet"):
        read_reference_unet(str(tmp_path / "denoising_unet.pth"))
    truncated = {key: value for key, value in unet_state.items() if "mid_block.attentions.0.proj_out" not in key}
    torch.save(truncated, tmp_path / "truncated.pth")
    with pytest.raises(WeightFileError, match="truncated.pth: the denoising UNet misses 2 key.*mid_block.attentions.0.proj_out"):
        read_denoising_unet(str(tmp_path / "truncated.pth"))
    guider = published_pose_guider_state(32)
    guider["blocks.3.weight"] = guider["blocks.3.weight"][:, :8]
    torch.save(guider, tmp_path / "pose_guider.pth")
    with pytest.raises(WeightFileError, match="pose_guider.pth: the pose guider's 'blocks.3.weight'"):
        read_pose_guider(str(tmp_path / "pose_guider.pth"))
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightFileError, match="'pose_guider' is other.pth, which is not an AnimateAnyone"):
        read_pose_guider(str(tmp_path / "other.pth"))


def test_target_skeleton_is_drawn_like_dwpose_draw_bodypose():
    import numpy as np
    from atelier.models.pose import OPENPOSE_COLORS, pose_from_array
    from atelier.models.pose_networks.drawing import draw_dwpose_body

    points = [(32, 10), (32, 18), (25, 19), (20, 29), (17, 38), (39, 19), (44, 29), (47, 38), (28, 38), (27, 50),
              (27, 61), (36, 38), (37, 50), (37, 61), (30, 8), (34, 8), (28, 9), (36, 9)]
    array = np.array([[x, y, 1.0] for x, y in points], dtype=np.float32)
    pose = pose_from_array(array, 64, 64)
    drawing = draw_dwpose_body(pose, 64, 64)
    assert drawing.shape == (64, 64, 3) and drawing.dtype == np.uint8
    assert tuple(drawing[61, 27]) == OPENPOSE_COLORS[10]  # a joint disc (radius 4): its full colour
    assert tuple(drawing[44, 27]) == tuple(int(c * 0.6) for c in OPENPOSE_COLORS[7])  # mid-thigh (limb 7): 0.6 × its colour
    assert not drawing[0:4, 0:4].any() and not drawing[60:, 55:].any()  # black elsewhere
