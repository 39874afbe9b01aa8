"""AnyDressing training: samples from the toy world and the DressCode layout, two steps end to end
with export and load, exact resume, IGL/GTL gradients, full GarmentsNet and tiled-'Base' exports,
and the toy-world colour evaluation."""

import pytest
import torch
from atelier.models.anydressing.config import DressingConfig
from atelier.models.weights import load_weight_file
from atelier.train.anydressing.cli import GARMENTS_UNET_FILE, parse_args, train
from atelier.train.anydressing.components import load_base
from atelier.train.anydressing.data import (
    TILED_CATEGORY,
    DressCodeDressing,
    ToyDressing,
    batch_for_step,
    collate,
    tiled,
)
from atelier.train.anydressing.evaluate import evaluate, load_dressing
from atelier.train.anydressing.pixel_vae import PixelVAE
from atelier.train.anydressing.steps import (
    LossWeights,
    build_trainables,
    dressing_losses,
)
from atelier.train.loop import step_generator
from atelier.train.tiny import tiny_unet
from fake_datasets import build_dresscode
from safetensors.torch import load_file

TINY = ["--size", "32", "--people", "12", "--batch-size", "2", "--log-every", "1", "--garments", "upper,lower",
        "--rank", "2", "--lr", "1e-3", "--gtl-weight", "1", "--eta", "1000", "--igl-weight", "1"]


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory):
    """Two dressing steps, uninterrupted, with a checkpoint after each."""
    out = tmp_path_factory.mktemp("anydressing")
    result = train(parse_args([*TINY, "--steps", "2", "--checkpoint-every", "1", "--out", str(out)]))
    return out, result


def test_toy_samples_hold_person_garments_and_masks():
    data = ToyDressing(32, count=12, categories=("upper", "lower"))
    sample = data[0]
    count = len(sample.categories)
    assert sample.person.shape == (3, 32, 32) and sample.garments.shape == (count, 3, 32, 32)
    assert sample.garment_masks.shape == (count, 32, 32) and (sample.garment_masks.flatten(1).sum(1) > 0).all()
    assert set(data.groups) == {("upper", "lower")}
    again, other = batch_for_step(data, data.groups, 3, 2, 0), batch_for_step(data, data.groups, 4, 2, 0)
    assert torch.equal(again.persons, batch_for_step(data, data.groups, 3, 2, 0).persons)
    assert not torch.equal(again.persons, other.persons)


def test_tiled_base_input_is_one_image_with_the_union_mask():
    sample = ToyDressing(32, count=12, categories=("upper", "lower"))[0]
    joined = tiled(sample)
    assert joined.categories == (TILED_CATEGORY,) and joined.garments.shape == (1, 3, 32, 32)
    assert torch.equal(joined.garment_masks[0], sample.garment_masks.amax(0))
    with pytest.raises(ValueError, match="mixes garment categories"):
        collate([sample, joined])


def test_dresscode_pairs_become_upper_lower_triplets(tmp_path):
    build_dresscode(tmp_path)
    data = DressCodeDressing(tmp_path, (32, 24), folders=("upper_body", "dresses"))
    assert data.groups == {("upper", "lower"): [0, 1], ("dress",): [2]}
    sample = data[0]
    assert sample.categories == ("upper", "lower") and sample.garments.shape == (2, 3, 32, 24)
    assert sample.garment_masks[0].sum() > 0  # the fake parsing map has upper clothes
    assert data[2].garments.shape == (1, 3, 32, 24)


def test_pixel_vae_round_trips_flat_colours():
    image = torch.full((1, 3, 16, 16), 0.25)
    vae = PixelVAE(8)
    latents = vae.encode(image)
    assert latents.shape == (1, 4, 2, 2) and torch.allclose(vae.decode(latents), image)


def test_two_steps_export_a_file_that_loads(two_steps):
    out, result = two_steps
    path = out / "anydressing.safetensors"
    assert result.outputs == [path] and len(result.losses) == 2
    assert all(torch.isfinite(torch.tensor(list(step.values()))).all() for step in result.losses)
    assert {"ldm", "loc", "texture", "total"} <= set(result.losses[0])
    loaded = load_weight_file(str(path), expected_system="anydressing")
    config = DressingConfig.from_dict(loaded.config)
    assert config.rank == 2 and loaded.base.model_channels == 32 and loaded.base.context_dim == 64
    trained = result.modules["trained"]
    for name, tensor in trained.garment_lora.state_dict().items():
        assert torch.equal(loaded.modules["garment_lora"].state_dict()[name], tensor)
    upper = config.slot_index("upper")
    assert any(bool(up[upper].abs().sum() > 0) for up in trained.garment_lora.up.values())  # B left zero-init
    assert (out / "losses-dressing.jsonl").read_text().count("\n") == 2


def test_resume_continues_exactly(two_steps, tmp_path):
    _, uninterrupted = two_steps
    args = [*TINY, "--checkpoint-every", "1", "--out", str(tmp_path)]
    train(parse_args([*args, "--steps", "1"]))
    resumed = train(parse_args([*args, "--steps", "2", "--resume"]))
    assert len(resumed.losses) == 1 and resumed.losses[0] == uninterrupted.losses[1]
    expected, got = _state(uninterrupted.modules["trained"]), _state(resumed.modules["trained"])
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[key], got[key]) for key in expected)


def test_igl_and_gtl_send_gradient_to_lora_and_projections():
    components = load_base("tiny")
    components.unet.requires_grad_(False)
    config = DressingConfig(slots=("upper", "lower"), rank=2)
    trainables = build_trainables(config, components, full_garments_net=False)
    with torch.no_grad():
        for up in trainables.garment_lora.up.values():
            up.normal_(0.0, 0.1)  # past zero-init, so the LoRA's A also gets gradient
    data = ToyDressing(32, count=12, categories=("upper", "lower"))
    batch = batch_for_step(data, data.groups, 0, 2, 0)
    losses = dressing_losses(components, trainables, config, batch, step_generator(0, 0),
                             LossWeights(igl=1.0, gtl=1.0, eta=1000), batch.captions)
    params = {"lora_up": trainables.garment_lora.up["input_1"], "lora_down": trainables.garment_lora.down["input_1"],
              "wk": trainables.projections.to_k["input_1"].weight, "wv": trainables.projections.to_v["input_1"].weight}
    loc = torch.autograd.grad(losses["loc"], list(params.values()), retain_graph=True, allow_unused=True)
    texture = torch.autograd.grad(losses["texture"], list(params.values()), allow_unused=True)
    assert all(g is not None and bool(g.abs().sum() > 0) for g in loc)
    assert all(g is not None and bool(g.abs().sum() > 0) for g in texture)


def test_full_garments_net_and_tiled_base_exports(tmp_path):
    args = [*TINY, "--steps", "1", "--checkpoint-every", "0", "--garments-net", "full", "--reference", "tiled",
            "--out", str(tmp_path)]
    result = train(parse_args(args))
    assert [p.name for p in result.outputs] == ["anydressing.safetensors", GARMENTS_UNET_FILE]
    config = DressingConfig.from_dict(load_weight_file(str(result.outputs[0]), expected_system="anydressing").config)
    assert config.slots == (TILED_CATEGORY,)
    unet = tiny_unet()
    original = _state(unet)
    state = load_file(str(result.outputs[1]))
    unet.load_state_dict(state, strict=True)  # a diffusers-format UNet state dict
    assert any(not torch.equal(original[key], state[key]) for key in state)  # the copy was trained


def test_evaluation_measures_the_garments(two_steps):
    out, _ = two_steps
    components = load_base("tiny")
    data = ToyDressing(32, start=500, count=6, categories=("upper", "lower"))
    dressed = evaluate(components, data, 1, load_dressing(str(out / "anydressing.safetensors")), steps=4)
    plain = evaluate(components, data, 1, None, steps=4)
    assert dressed["garments"] == plain["garments"] == 2
    for result in (dressed, plain):
        assert 0.0 <= result["fidelity"] <= 1.0 and 0.0 <= result["leak_background"] <= 1.0 and result["color_error"] >= 0
    assert dressed != plain
