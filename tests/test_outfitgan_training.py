"""OutfitGAN training: data sources, two steps on tiny sizes, export, node-side load with every key
consumed, and exact resume from a checkpoint."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from atelier.models.outfitgan.spec import OUTFITGAN
from atelier.models.weight_format import META_BASE_MODEL, META_SYSTEM
from atelier.models.weights import load_weight_file, recognise_system
from atelier.train.outfitgan.cli import parse_args, train
from atelier.train.outfitgan.colors import dominant_color
from atelier.train.outfitgan.data import (
    FashionMNISTCompletion,
    PolyvoreCompletion,
    ToyWorldOutfits,
    WithNegatives,
    batch_for_step,
    outfit_dataset,
)
from atelier.train.toyworld import ToyWorld, ToyWorldConfig
from fake_datasets import write_idx, write_rgb

TINY = ["--size", "32", "--base-channels", "8", "--residual-blocks", "1", "--ccm-channels", "8",
        "--ccm-image-size", "32", "--disc-channels", "8", "--disc-layers", "2", "--outfits", "12",
        "--batch-size", "2", "--log-every", "1"]


def test_toy_world_outfits_are_items_masks_and_the_world_label():
    data = ToyWorldOutfits(32, count=12)
    sample = data[0]
    assert sample["items"].shape == (4, 3, 32, 32) and sample["masks"].shape == (4, 1, 32, 32)
    world = ToyWorld(ToyWorldConfig(height=32, width=32, num_outfits=12))
    assert [float(data[i]["label"]) for i in range(12)] == [float(world.design_outfit(i).compatible) for i in range(12)]
    compatible = ToyWorldOutfits(32, count=12, compatible_only=True)
    assert 0 < len(compatible) < 12 and all(compatible[i]["label"] == 1.0 for i in range(len(compatible)))
    assert torch.equal(data[0]["items"], ToyWorldOutfits(32, count=12)[0]["items"])


def test_negatives_swap_items_in_from_other_outfits():
    base = ToyWorldOutfits(32, count=6, compatible_only=True)
    data = WithNegatives(base, seed=0)
    assert len(data) == 2 * len(base)
    negative = data[len(base)]
    assert negative["label"] == 0.0
    changed = [not torch.equal(negative["items"][k], base[0]["items"][k]) for k in range(4)]
    assert 1 <= sum(changed) <= 2


def test_batches_depend_only_on_seed_and_step():
    data = ToyWorldOutfits(32, count=12)
    first, again, other = batch_for_step(data, 5, 3, 0), batch_for_step(data, 5, 3, 0), batch_for_step(data, 6, 3, 0)
    assert first["items"].shape == (3, 4, 3, 32, 32)
    assert torch.equal(first["items"], again["items"]) and not torch.equal(first["items"], other["items"])


def test_polyvore_outfits_in_outfit_order_with_masks(tmp_path):
    base = tmp_path / "polyvore_outfits"
    categories = {"t": "tops", "g": "bags", "b": "bottoms", "s": "shoes", "x": "hats"}
    outfits = [{"set_id": "1", "items": [{"item_id": i, "index": n} for n, i in enumerate("sbxtg")]},
               {"set_id": "2", "items": [{"item_id": "t", "index": 1}, {"item_id": "s", "index": 2}]}]
    (base / "nondisjoint").mkdir(parents=True)
    (base / "nondisjoint" / "train.json").write_text(json.dumps(outfits))
    (base / "polyvore_item_metadata.json").write_text(json.dumps({k: {"semantic_category": v} for k, v in categories.items()}))
    colours = {"t": (200, 0, 0), "g": (0, 200, 0), "b": (0, 0, 200), "s": (10, 10, 10), "x": (90, 90, 90)}
    for item, rgb in colours.items():
        write_rgb(base / "images" / f"{item}.jpg", 16, 16, rgb)
    data = PolyvoreCompletion(tmp_path, 32)
    assert len(data) == 1, "only outfits with a top, a bag, a bottom and shoes"
    items = data[0]["items"]
    assert items.shape == (4, 3, 32, 32)
    assert items[0, 0].mean() > 0.7 and items[1, 1].mean() > 0.7 and items[2, 2].mean() > 0.7
    assert data[0]["masks"].mean() == 1.0  # no white in these pictures
    assert len(outfit_dataset("polyvore", 32, root=str(tmp_path), for_ccm=True)) == 2


def test_fashion_mnist_outfits(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 8, 7, 0, 1, 8, 9], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (8, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    data = FashionMNISTCompletion(32, count=3, root=tmp_path)
    assert data[0]["items"].shape == (4, 3, 32, 32) and data[0]["label"] == 1.0


def test_dominant_color_reads_the_palette_colour_of_a_ground_truth_item():
    outfit = ToyWorld(ToyWorldConfig(height=64, width=64)).outfit(3)
    for item in outfit.items.values():
        assert dominant_color(item.shop_image, item.shop_mask) == item.spec.color


def _keys(path) -> set[str]:
    with safe_open(str(path), framework="pt") as handle:
        return set(handle.keys())


def _tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is not iterable)


@pytest.mark.parametrize("variant", [[], ["--shared-generator", "--no-sam"]], ids=["per_item_sam", "shared_no_sam"])
def test_two_steps_export_and_load_with_every_key_consumed(tmp_path, variant):
    out = train(parse_args([*TINY, *variant, "--ccm-steps", "1", "--steps", "2", "--out", str(tmp_path)]))
    assert out == tmp_path / "outfitgan.safetensors"
    loaded = load_weight_file(str(out), expected_system="outfitgan")
    expected = {OUTFITGAN.prefixes[c] + k for c, m in loaded.modules.items() for k in m.state_dict()}
    assert _keys(out) == expected
    with safe_open(str(out), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata[META_SYSTEM] == "outfitgan"
    assert json.loads(metadata[META_BASE_MODEL]) == {"family": "outfitgan", "model_channels": 8, "context_dim": 0}
    assert loaded.config["shared_generator"] == bool(variant) and loaded.config["image_size"] == 32
    assert recognise_system({}, _keys(out)) is OUTFITGAN, "recognised by key signature without metadata"
    generator = loaded.modules["generator"]
    with torch.no_grad():
        items = generator(torch.rand(1, 3, 32, 32), {s: torch.ones(1, 1, 32, 32) for s in generator.slots})
    assert set(items) == {"bag", "lower", "shoes"}


def test_resume_continues_exactly_where_the_checkpoint_left_off(tmp_path):
    common = [*TINY, "--ccm-steps", "1", "--checkpoint-every", "1", "--keep-checkpoints", "1"]
    train(parse_args([*common, "--steps", "1", "--checkpoint-dir", str(tmp_path / "ck"), "--out", str(tmp_path / "a")]))
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["step-0000002"]
    train(parse_args([*common, "--steps", "2", "--resume", "--checkpoint-dir", str(tmp_path / "ck"),
                      "--out", str(tmp_path / "resumed")]))
    train(parse_args([*common, "--steps", "2", "--checkpoint-dir", str(tmp_path / "fresh"),
                      "--out", str(tmp_path / "straight")]))
    resumed, straight = _tensors(tmp_path / "resumed/outfitgan.safetensors"), _tensors(tmp_path / "straight/outfitgan.safetensors")
    first = _tensors(tmp_path / "a/outfitgan.safetensors")
    assert any(not torch.equal(first[k], straight[k]) for k in straight), "the extra step changed the weights"
    assert all(torch.allclose(resumed[k], straight[k], atol=1e-6) for k in straight)


def test_bad_flags_are_named():
    with pytest.raises(ValueError, match="--data polyvore needs --data-root"):
        parse_args(["--data", "polyvore", "--out", "x"])
    with pytest.raises(ValueError, match="--batch-size"):
        parse_args(["--batch-size", "0", "--out", "x"])
    with pytest.raises(ValueError, match="--out is the output folder"):
        parse_args(["--out", "x.safetensors"])
