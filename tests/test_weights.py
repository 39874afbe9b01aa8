"""Weight files: round trip, recognition, and the errors for wrong files."""

import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from atelier.models.diffusers_host import DiffusersReferenceHost
from atelier.models.errors import WeightFileError
from atelier.models.reference_config import ReadMode, ReferenceConfig
from atelier.models.weight_format import META_SYSTEM, BaseModel
from atelier.models.weight_systems import REFERENCE
from atelier.models.weights import export_untrained, load_weight_file, save_weight_file
from atelier.train.tiny import TINY_CONTEXT_DIM, TINY_MODEL_CHANNELS, tiny_unet

TINY = BaseModel(model_channels=TINY_MODEL_CHANNELS, context_dim=TINY_CONTEXT_DIM)


def _tensors(path):
    with safe_open(path, framework="pt") as handle:
        return handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}


def test_untrained_file_loads_with_every_key_consumed(tmp_path):
    path = str(tmp_path / "reference.safetensors")
    export_untrained(path, REFERENCE, TINY)
    loaded = load_weight_file(path, expected_system="reference", expected_base=TINY)
    metadata, tensors = _tensors(path)
    state = {"reference_proj." + k: v for k, v in loaded.modules["projections"].state_dict().items()}
    assert set(state) == set(tensors) and len(tensors) == 32
    assert all(torch.equal(state[k], tensors[k]) for k in tensors)
    assert loaded.base == TINY and metadata[META_SYSTEM] == "reference"


def test_two_training_steps_then_export_then_load(tmp_path):
    unet = tiny_unet().eval()
    unet.requires_grad_(False)
    weight_file = load_weight_file(_exported(tmp_path), expected_system="reference")
    projections = weight_file.modules["projections"]
    optimizer = torch.optim.AdamW(projections.parameters(), lr=1e-2)
    before = {k: v.clone() for k, v in projections.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    with DiffusersReferenceHost(unet, ReferenceConfig(mode=ReadMode.CROSS), projections) as host:
        for _ in range(2):
            latents, reference = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
            text = torch.randn(2, 7, TINY_CONTEXT_DIM, generator=g)
            with torch.no_grad():
                bank = host.capture(reference, torch.zeros(2), text)
            pred = host.forward(host.new_run(bank), latents, torch.tensor([10.0, 900.0]), text).sample
            loss = torch.nn.functional.mse_loss(pred, torch.randn(pred.shape, generator=g))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    trained = str(tmp_path / "trained.safetensors")
    save_weight_file(trained, REFERENCE, TINY, weight_file.config, {"projections": projections})
    reloaded = load_weight_file(trained, expected_system="reference", expected_base=TINY).modules["projections"]
    for key, value in projections.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value)
    assert any(not torch.equal(before[k], v) for k, v in projections.state_dict().items())


def _exported(tmp_path, name="reference.safetensors"):
    path = str(tmp_path / name)
    export_untrained(path, REFERENCE, TINY)
    return path


def test_wrong_system_is_named(tmp_path):
    with pytest.raises(WeightFileError, match="is a 'reference' weight file; this node needs a 'anydressing' file"):
        load_weight_file(_exported(tmp_path), expected_system="anydressing")


def test_other_base_size_is_named(tmp_path):
    with pytest.raises(WeightFileError, match="model_channels 32.*connected model has model_channels 320"):
        load_weight_file(_exported(tmp_path), expected_base=BaseModel())


def test_missing_keys_are_counted_and_named(tmp_path):
    metadata, tensors = _tensors(_exported(tmp_path))
    del tensors["reference_proj.to_v.output_11.weight"]
    broken = str(tmp_path / "broken.safetensors")
    save_file(tensors, broken, metadata=metadata)
    with pytest.raises(WeightFileError, match=r"1 missing key\(s\).*to_v\.output_11"):
        load_weight_file(broken)


def test_shape_mismatch_is_named_with_numbers(tmp_path):
    metadata, tensors = _tensors(_exported(tmp_path))
    metadata["atelier.base_model"] = json.dumps({"family": "sd15", "model_channels": 320, "context_dim": 768})
    broken = str(tmp_path / "mislabelled.safetensors")
    save_file(tensors, broken, metadata=metadata)
    with pytest.raises(WeightFileError, match=r"32 tensor\(s\) have the wrong shape.*expected \(320, 320\)"):
        load_weight_file(broken)


def test_file_without_metadata_is_recognised_by_its_keys(tmp_path):
    _, tensors = _tensors(_exported(tmp_path))
    bare = str(tmp_path / "bare.safetensors")
    save_file(tensors, bare)
    assert load_weight_file(bare, expected_base=TINY).system == "reference"


def test_foreign_and_missing_files(tmp_path):
    foreign = str(tmp_path / "lora.safetensors")
    save_file({"lora_unet_down.weight": torch.zeros(2, 2)}, foreign)
    with pytest.raises(WeightFileError, match="not an Atelier weight file"):
        load_weight_file(foreign)
    with pytest.raises(WeightFileError, match="does not exist"):
        load_weight_file(os.path.join(tmp_path, "nope.safetensors"))
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(WeightFileError, match="not a readable safetensors file"):
        load_weight_file(str(text))
