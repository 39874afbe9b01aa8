"""Dress an existing photo (workflows/dress_a_photo.json) in a real ComfyUI: parsing → agnostic mask →
the core inpaint path (SetLatentNoiseMask) with the garment read from a reference network →
ImageCompositeMasked. Outside the mask the saved picture equals the input photo exactly, and inside
it the picture changed. Needs COMFYUI_PATH."""

from __future__ import annotations

import numpy as np
from comfy_fixtures import execute_prompt, requires_comfyui
from PIL import Image
from test_workflows import REPO, prepared_prompt

pytestmark = [requires_comfyui]

SIDE = 96


def person_photo(seed: int = 3) -> np.ndarray:
    """A 96×96 RGB picture with smooth structure (a figure on a plain background) and some noise."""
    rng = np.random.default_rng(seed)
    pixels = np.full((SIDE, SIDE, 3), 225, dtype=np.float64)
    pixels[20:90, 30:66] = (40, 70, 150)  # body
    pixels[4:22, 38:58] = (220, 180, 150)  # head
    pixels += rng.normal(0, 12, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def test_dress_a_photo_keeps_everything_outside_the_mask(comfy_server_nodes, comfy_node_registry, tiny_sd15_checkpoint):
    photo = person_photo()

    def picture(name: str) -> np.ndarray:
        return photo if name == "person.png" else person_photo(seed=4)[::-1]

    prompt = prepared_prompt(REPO / "workflows" / "dress_a_photo.json", comfy_node_registry, tiny_sd15_checkpoint, picture)
    execute_prompt(prompt)
    output_dir = comfy_node_registry.output_dir
    dressed = np.asarray(Image.open(sorted(output_dir.glob("atelier_dress_a_photo_0*.png"))[-1]).convert("RGB"))
    mask = np.asarray(Image.open(sorted(output_dir.glob("atelier_dress_a_photo_mask_*.png"))[-1]).convert("L")) > 0
    assert dressed.shape == photo.shape
    assert 0 < mask.mean() < 1, "the parsing gave a mask with both regions"
    assert np.array_equal(dressed[~mask], photo[~mask]), "outside the mask the photo is unchanged, pixel for pixel"
    assert np.abs(dressed[mask].astype(int) - photo[mask].astype(int)).mean() > 1, "inside the mask it was repainted"
