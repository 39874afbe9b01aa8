"""StableGarment as a garment-network family: its published folder read by ``read_garment_network``
(the pruned file by its keys; a whole-UNet file by its ``config.json``), the ``GarmentNetwork`` it gives,
and the public scripts' garment image fit. Pure torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from atelier.models.errors import WeightFileError
from atelier.models.garment_networks import magic_clothing as mc
from atelier.models.garment_networks import stable_garment as sg
from atelier.models.garment_networks.families import (
    convert_to_safetensors,
    describe,
    read_garment_network,
)
from atelier.models.garment_networks.network import GarmentContext
from atelier.models.garment_networks.stable_garment_fit import (
    center_crop_box,
    public_garment_pixels,
    shorter_side_size,
)
from atelier.models.reference_config import ReadMode, UncondPolicy
from atelier.models.sites import SITE_GROUPS
from atelier.models.weight_format import BaseModel
from PIL import Image
from safetensors.torch import save_file

SMALL = BaseModel(family="sd15", model_channels=32, context_dim=64)
CONFIG = {"_class_name": "GarmentEncoderModel", "_diffusers_version": "0.25.0", "block_out_channels": [32, 64, 128, 128],
          "cross_attention_dim": 64, "attention_head_dim": 8, "disable_last": True}


def whole_unet(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) for key, shape in mc.sd15_unet_shapes(SMALL).items()}


def write_folder(root, state, config=CONFIG, name="diffusion_pytorch_model.safetensors"):
    folder = root / "garment_encoder"
    folder.mkdir(exist_ok=True)
    save_file(state, str(folder / name))
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder / name


def test_the_published_pruned_file_is_stable_garment_by_its_keys(tmp_path):
    pruned = {key: value for key, value in whole_unet().items() if key not in sg.PRUNED_KEYS}
    assert len(pruned) == 662
    path = write_folder(tmp_path, pruned, config=None)  # no config.json: the keys alone decide
    network = read_garment_network(str(path))
    assert network.family == "stable_garment" and network.every_step
    assert network.mode == ReadMode.CROSS and network.projections is None and network.strength == 1.0
    assert network.no_garment == UncondPolicy.NONE and network.context == GarmentContext.PROMPT
    assert network.sites == SITE_GROUPS["middle+output"] and len(network.sites) == 10
    assert "non-commercial" in network.licence and network.resampler is None
    assert list(network.garment_unet) == list(mc.sd15_unet_shapes(SMALL))
    assert all(torch.equal(network.garment_unet[key], pruned[key]) for key in pruned)
    assert all(not network.garment_unet[key].any() for key in sg.PRUNED_KEYS)
    assert describe(pruned) == "StableGarment (text2img)"


def test_a_whole_unet_is_stable_garment_only_when_its_config_says_so(tmp_path):
    state = whole_unet()
    with_config = write_folder(tmp_path, state)
    assert read_garment_network(str(with_config)).family == "stable_garment"
    other = tmp_path / "other"
    other.mkdir()
    plain = write_folder(other, state, config={"_class_name": "UNet2DConditionModel"})
    assert read_garment_network(str(plain)).family == "magic_clothing"
    bare = tmp_path / "bare"
    bare.mkdir()
    assert read_garment_network(str(write_folder(bare, state, config=None))).family == "magic_clothing"
    broken = tmp_path / "broken"
    broken.mkdir()
    path = write_folder(broken, state, config=None)
    (path.parent / "config.json").write_text("{not json")
    assert read_garment_network(str(path)).family == "magic_clothing"  # an unreadable config says nothing


def test_errors_name_the_file_and_the_family(tmp_path):
    pruned = {key: value for key, value in whole_unet().items() if key not in sg.PRUNED_KEYS}
    truncated = dict(pruned)
    truncated.pop("mid_block.attentions.0.transformer_blocks.0.attn1.to_k.weight")
    path = write_folder(tmp_path, truncated)  # config.json says StableGarment: its layout check names the key
    with pytest.raises(WeightFileError, match="diffusion_pytorch_model.safetensors.*stable_garment.*attn1.to_k"):
        read_garment_network(str(path))
    with pytest.raises(WeightFileError, match="holds StableGarment .text2img., but magic_clothing was expected"):
        read_garment_network(str(write_folder(tmp_path, pruned)), expected="magic_clothing")


def test_a_pickled_encoder_converts_to_the_same_tensors(tmp_path):
    pruned = {key: value for key, value in whole_unet(seed=1).items() if key not in sg.PRUNED_KEYS}
    torch.save(pruned, tmp_path / "diffusion_pytorch_model.bin")
    assert convert_to_safetensors(str(tmp_path / "diffusion_pytorch_model.bin"), str(tmp_path / "converted.safetensors")) \
        == "StableGarment (text2img)"
    again = read_garment_network(str(tmp_path / "converted.safetensors"))
    assert again.family == "stable_garment" and all(torch.equal(again.garment_unet[key], pruned[key]) for key in pruned)


# --- the garment image fit of infer_t2i.py / app.py -----------------------------------------------

def test_fit_geometry_is_torchvision_resize_then_center_crop():
    assert shorter_side_size(512, 384, 512) == (682, 512)  # Resize(512) of a 384 × 512 image
    assert shorter_side_size(384, 512, 512) == (512, 682)
    assert center_crop_box(682, 512, 512, 384) == (85, 64)
    assert center_crop_box(64, 64, 64, 64) == (0, 0)


def pil_public(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """infer_t2i.py's preparation on a PIL image, with torchvision's Resize/CenterCrop written in PIL."""
    garment = Image.fromarray(image).resize((width, height))
    new_h, new_w = shorter_side_size(height, width, max(height, width))
    garment = garment.resize((new_w, new_h), Image.BILINEAR)
    top, left = center_crop_box(new_h, new_w, height, width)
    return np.array(garment.crop((left, top, left + width, top + height)))


@pytest.mark.parametrize("size", [(48, 32), (32, 48), (40, 40)])
def test_fit_follows_the_public_scripts(size):
    height, width = size
    y, x = np.mgrid[0:60, 0:44] / 60.0
    smooth = np.stack([np.sin(3 * x + 1) * 0.4 + 0.5, np.cos(2 * y) * 0.4 + 0.5, (x + y) * 0.45], axis=-1)
    image = (smooth * 255).round().astype(np.uint8)  # (60, 44, 3)
    ours = public_garment_pixels(torch.from_numpy(image).float().div(255)[None], height, width)  # (1, H, W, 3)
    assert ours.shape == (1, height, width, 3) and 0.0 <= ours.min() and ours.max() <= 1.0
    theirs = torch.from_numpy(pil_public(image, height, width)).float().div(255)
    assert (ours[0] - theirs).abs().mean() < 0.01  # PIL's 8-bit bicubic (a = −0.5) vs torch's (a = −0.75)


def test_a_square_output_is_only_stretched():
    image = torch.rand(1, 30, 20, 4)
    stretched = torch.nn.functional.interpolate(image[..., :3].movedim(-1, 1), size=(24, 24), mode="bicubic",
                                                align_corners=False, antialias=True).clamp(0, 1).movedim(1, -1)
    assert torch.equal(public_garment_pixels(image, 24, 24), stretched)
    same = torch.rand(1, 24, 32, 3)
    zoomed = public_garment_pixels(same, 24, 32)  # already 24 × 32: only the zoom by 32/24 and the crop
    assert not torch.equal(zoomed, same)
