"""The shared training controls and checkpoints: accumulation equals a bigger batch, the warm-up
schedule's values, clipping bounds the norm, the EMA update formula and its export, validation
grids, checkpoints that hold only the trained parameters (and refuse another base), and exact resume
with every control on."""

import json

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image
from safetensors.torch import load_file

from atelier.train.checkpoints import (
    OPTIMIZERS_FILE,
    TRAINED_FILE,
    CheckpointBaseError,
    CheckpointStepError,
    TrainingState,
    load_checkpoint,
    save_checkpoint,
    trained_tensors,
)
from atelier.train.controls import ControlOptionError, ControlSettings
from atelier.train.ema import ExponentialMovingAverage
from atelier.train.loop import LoopSettings, run_steps
from atelier.train.optimisation import clip_gradients, lr_scheduler_for
from atelier.train.validation_grid import grid_array, write_grid

DATA = torch.linspace(-1, 1, 24).reshape(4, 6)  # 4 rows of 6 features
TARGET = torch.tensor([0.5, -1.0, 2.0, 0.0])


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))


def _run(tmp_path, steps: int, controls: ControlSettings, rows_per_micro: int = 4, resume: bool = False,
         model: torch.nn.Module | None = None, checkpoint_every: int = 0, validate=None):
    """run_steps on a tiny regression: micro-batch m uses rows (m mod 4/rows) · rows .. + rows."""
    model = model if model is not None else _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    accelerator = Accelerator(cpu=True)
    prepared, optimizer = accelerator.prepare(model, optimizer)
    parts = DATA.shape[0] // rows_per_micro

    def step_losses(index: int):
        first = (index % parts) * rows_per_micro
        rows = slice(first, first + rows_per_micro)
        loss = (prepared(DATA[rows]).squeeze(1) - TARGET[rows]).pow(2).mean()
        return {"loss": loss}, loss

    settings = LoopSettings(steps, 1, checkpoint_every, 5, resume, controls)
    history = run_steps(accelerator, prepared, optimizer, tmp_path, "toy", settings, step_losses, average=False,
                        validate=validate)
    return model, history


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_accumulating_two_half_batches_equals_one_full_batch(tmp_path):
    whole, _ = _run(tmp_path / "whole", 3, ControlSettings())
    halves, history = _run(tmp_path / "halves", 3, ControlSettings(accumulation=2), rows_per_micro=2)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_params(whole), _params(halves)))
    assert len(history) == 3
    single, _ = _run(tmp_path / "single", 3, ControlSettings(), rows_per_micro=2)
    assert any(not torch.allclose(a, b, atol=1e-4) for a, b in zip(_params(whole), _params(single)))


def test_warmup_schedules_rise_linearly_then_follow_the_schedule():
    parameter = torch.nn.Parameter(torch.zeros(1))
    rates = {}
    for name in ("constant", "linear"):
        optimizer = torch.optim.SGD([parameter], lr=1.0)
        scheduler = lr_scheduler_for(optimizer, ControlSettings(lr_schedule=name, warmup_steps=4), total_steps=8)
        values = []
        for _ in range(8):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        rates[name] = values
    assert rates["constant"] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0])
    assert rates["linear"] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25])
    optimizer = torch.optim.SGD([parameter], lr=0.3)
    plain = lr_scheduler_for(optimizer, ControlSettings(), total_steps=8)
    assert plain.get_last_lr() == [0.3]


def test_clipping_bounds_the_global_norm_and_zero_is_off():
    accelerator = Accelerator(cpu=True)
    parameters = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(4))]
    parameters[0].grad, parameters[1].grad = torch.full((3,), 3.0), torch.full((4,), 4.0)
    before = float(torch.cat([p.grad for p in parameters]).norm())
    assert clip_gradients(accelerator, parameters, 0.0) is None
    assert float(torch.cat([p.grad for p in parameters]).norm()) == pytest.approx(before)
    assert clip_gradients(accelerator, parameters, 1.0) == pytest.approx(before)
    assert float(torch.cat([p.grad for p in parameters]).norm()) == pytest.approx(1.0, rel=1e-4)


def test_ema_update_follows_the_warmed_up_decay():
    parameter = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    ema = ExponentialMovingAverage([parameter], decay=0.9)
    with torch.no_grad():
        parameter.copy_(torch.tensor([3.0, 6.0]))
    ema.update()  # d1 = min(0.9, 2/11)
    d1 = 2 / 11
    expected = d1 * torch.tensor([1.0, 2.0]) + (1 - d1) * torch.tensor([3.0, 6.0])
    assert torch.allclose(ema.shadow[0], expected)
    ema.updates = 1000  # far on, the decay is the set one
    assert ema.current_decay() == 0.9
    ema.swap()
    assert torch.allclose(parameter.detach(), expected)
    ema.swap()
    assert torch.allclose(parameter.detach(), torch.tensor([3.0, 6.0]))


def test_controls_name_the_flag_when_out_of_range():
    with pytest.raises(ControlOptionError, match="--gradient-accumulation"):
        ControlSettings(accumulation=0)
    with pytest.raises(ControlOptionError, match="--ema-decay"):
        ControlSettings(ema_decay=1.0)
    assert ControlSettings(warmup_steps=3).schedule_name == "constant_with_warmup"


def test_ema_weights_are_returned_and_raw_weights_checkpointed(tmp_path):
    model, _ = _run(tmp_path, 3, ControlSettings(ema_decay=0.5))
    checkpoint = tmp_path / "checkpoints-toy" / "step-0000003"
    raw = load_file(str(checkpoint / TRAINED_FILE))
    shadow = torch.load(checkpoint / OPTIMIZERS_FILE, weights_only=False)["extras"]["ema"]["shadow"]
    names = [f"trained.{name}" for name, _ in model.named_parameters()]
    assert all(torch.equal(p.detach(), s) for p, s in zip(model.parameters(), shadow))
    assert any(not torch.equal(raw[n], s) for n, s in zip(names, shadow))


def test_resume_with_every_control_on_is_exact(tmp_path):
    controls = ControlSettings(accumulation=2, lr_schedule="cosine", warmup_steps=2, max_grad_norm=0.5, ema_decay=0.8)
    straight, history = _run(tmp_path / "straight", 4, controls, rows_per_micro=2)
    _run(tmp_path / "cut", 2, controls, rows_per_micro=2, checkpoint_every=1)
    # the second half: a fresh model, the newest checkpoint restores weights, Adam, schedule and EMA
    resumed, rest = _run(tmp_path / "cut", 4, controls, rows_per_micro=2, resume=True)
    assert [h["loss"] for h in rest] == [h["loss"] for h in history[2:]]
    assert all(torch.equal(a, b) for a, b in zip(_params(straight), _params(resumed)))


def test_validation_grids_are_written_every_n_steps(tmp_path):
    def validate(step):
        return [[torch.full((3, 8, 8), step / 4), torch.zeros(3, 8, 8)], [torch.ones(3, 8, 8), torch.ones(3, 4, 4)]]

    _run(tmp_path, 4, ControlSettings(validate_every=2), validate=validate)
    written = sorted(p.name for p in (tmp_path / "validation-toy").iterdir())
    assert written == ["step-0000002.png", "step-0000004.png"]
    image = np.asarray(Image.open(tmp_path / "validation-toy" / "step-0000002.png"))
    assert image.shape == (8 * 2 + 2, 8 * 2 + 2, 3)
    assert image[0, 0, 0] == 128 and image[0, 8, 0] == 255 and image[0, 10, 0] == 0 and image[17, 17, 0] == 255


def test_grid_pads_short_rows_white(tmp_path):
    grid = grid_array([[torch.zeros(3, 4, 4)], [torch.zeros(3, 4, 4), torch.zeros(3, 4, 4)]])
    assert grid.shape == (10, 10, 3) and grid[0, 9, 0] == 255 and grid[9, 9, 0] == 0
    assert write_grid([[torch.zeros(3, 4, 4)]], tmp_path / "g" / "grid.png").is_file()


@pytest.fixture(scope="module")
def igr_lora_state():
    """IGR's trainables in LoRA mode on the tiny base: a frozen UNet with a peft LoRA inside."""
    from atelier.train.anydressing.components import load_base
    from atelier.train.igr.steps import DenoiserUpdate, build_trainables, igr_config_for

    components = load_base("tiny", 0)
    trainables = build_trainables(components, igr_config_for("both", 16, 2, 2.0, 2), DenoiserUpdate("lora", 2, 2.0))
    optimizer = torch.optim.AdamW([p for p in trainables.parameters() if p.requires_grad], lr=1e-3)
    return trainables, TrainingState({"trained": trainables}, {"optimizer": optimizer}, base_files={"--base": "tiny"})


def test_checkpoint_holds_the_trained_parameters_only(igr_lora_state, tmp_path):
    trainables, state = igr_lora_state
    tensors = trained_tensors(state)
    trained = {f"trained.{name}" for name, p in trainables.named_parameters() if p.requires_grad}
    assert set(tensors) == trained
    assert any("lora_A" in key for key in tensors) and not any(key.endswith("unet.conv_in.weight") for key in tensors)
    path = save_checkpoint(Accelerator(cpu=True), tmp_path, 1, 1, state)
    stored = load_file(str(path / TRAINED_FILE))
    frozen = sum(p.numel() for p in trainables.parameters() if not p.requires_grad)
    assert sum(t.numel() for t in stored.values()) == sum(p.numel() for p in trainables.parameters() if p.requires_grad)
    assert (path / TRAINED_FILE).stat().st_size < 4 * frozen / 2  # far smaller than the frozen UNet
    record = json.loads((path / "base.json").read_text())
    assert record["frozen"]["count"] == frozen and record["base"]["--base"]["value"] == "tiny"


def test_resume_refuses_another_frozen_base(igr_lora_state, tmp_path):
    trainables, state = igr_lora_state
    accelerator = Accelerator(cpu=True)
    path = save_checkpoint(accelerator, tmp_path, 3, 1, state)
    assert load_checkpoint(accelerator, path, state) == 3
    frozen = next(p for p in trainables.parameters() if not p.requires_grad)
    with torch.no_grad():
        frozen.add_(1.0)
    try:
        with pytest.raises(CheckpointBaseError, match="frozen weights differ"):
            load_checkpoint(accelerator, path, state)
    finally:
        with torch.no_grad():
            frozen.sub_(1.0)


def test_a_trainer_exports_the_ema_and_writes_its_validation_grid(tmp_path):
    from atelier.models.weights import load_weight_file
    from atelier.train.anydressing.cli import WEIGHT_FILE, parse_args, train

    result = train(parse_args(["--size", "32", "--people", "6", "--batch-size", "1", "--garments", "upper,lower",
                               "--rank", "2", "--lr", "1e-2", "--gtl-weight", "0", "--steps", "2",
                               "--checkpoint-every", "0", "--ema-decay", "0.9", "--validate-every", "2",
                               "--validation-samples", "2", "--out", str(tmp_path)]))
    checkpoint = tmp_path / "checkpoints-dressing" / "step-0000002"
    raw = load_file(str(checkpoint / TRAINED_FILE))
    shadow = torch.load(checkpoint / OPTIMIZERS_FILE, weights_only=False)["extras"]["ema"]["shadow"]
    names = [f"trained.{n}" for n, p in result.modules["trained"].named_parameters() if p.requires_grad]
    ema = dict(zip(names, shadow))  # the shadows are in the optimizer's parameter order
    exported = load_weight_file(str(tmp_path / WEIGHT_FILE)).modules["garment_lora"].state_dict()
    key = next(k for k in raw if k.startswith("trained.garment_lora.up."))
    value = exported[key[len("trained.garment_lora."):]]
    assert torch.equal(value, ema[key]) and not torch.equal(value, raw[key])
    grid = Image.open(tmp_path / "validation-dressing" / "step-0000002.png")
    assert grid.size[1] == 2 * 32 + 2  # two rows: garments, greyed person, output, truth


def _igr_rows():
    from atelier.train.anydressing.components import load_base
    from atelier.train.igr.cli import _dataset, parse_args
    from atelier.train.igr.components import load_image_encoder
    from atelier.train.igr.steps import DenoiserUpdate, build_trainables, igr_config_for
    from atelier.train.igr.validation import validation_for

    args = parse_args(["--person-size", "32", "--people", "3", "--out", "x"])
    components, encoder = load_base("tiny", 0), load_image_encoder("tiny")
    config = igr_config_for("both", encoder.embed_dim, 2, 2.0, 2)
    trainables = build_trainables(components, config, DenoiserUpdate("lora", 2, 2.0))
    return validation_for(components, _dataset(args), [0, 1], 2, config, trainables, encoder)(1), 4


def _truepose_rows():
    from atelier.train.anydressing.components import load_base
    from atelier.train.igr.components import load_image_encoder
    from atelier.train.igr.steps import DenoiserUpdate
    from atelier.train.truepose.cli import _dataset, parse_args
    from atelier.train.truepose.steps import build_trainables, truepose_config_for
    from atelier.train.truepose.validation import validation_for

    args = parse_args(["--size", "32x32", "--people", "3", "--out", "x"])
    components, encoder = load_base("tiny", 0), load_image_encoder("tiny")
    config = truepose_config_for("full", encoder.embed_dim)
    trainables = build_trainables(components, config, "full", DenoiserUpdate("lora", 2, 2.0))
    return validation_for(components, _dataset(args), 2, "full", config, trainables, encoder)(1), 4


def _outfitgan_rows():
    from atelier.models.outfitgan.config import OutfitGANConfig
    from atelier.models.outfitgan.generator import OutfitGenerator
    from atelier.train.outfitgan.data import outfit_dataset
    from atelier.train.outfitgan.validation import validation_for

    config = OutfitGANConfig(image_size=32, base_channels=8, residual_blocks=1)
    generator = OutfitGenerator(config)
    rows = validation_for(generator, outfit_dataset("toyworld", 32, count=12, seed=0), 2)(1)
    return rows, 1 + 2 * len(config.target_slots)


def _text2graph_rows():
    from atelier.train.text2graph.config import Text2GraphTrainConfig
    from atelier.train.text2graph.models import load_components
    from atelier.train.text2graph.trainer import build_dataset
    from atelier.train.text2graph.validation import validation_for

    config = Text2GraphTrainConfig(resolution=32, num_samples=3)
    return validation_for(load_components(config), build_dataset(config), 2, config.prompt_mode, 32)(1), 2


@pytest.mark.parametrize("rows_of", [_igr_rows, _truepose_rows, _outfitgan_rows, _text2graph_rows],
                         ids=["igr", "truepose", "outfitgan", "text2graph"])
def test_every_trainer_has_validation_rows_for_the_grid(rows_of, tmp_path):
    rows, columns = rows_of()
    assert len(rows) == 2 and all(len(row) == columns for row in rows)
    assert all(tile.dim() == 3 and tile.shape[0] == 3 and float(tile.min()) >= 0 and float(tile.max()) <= 1
               for row in rows for tile in row)
    assert write_grid(rows, tmp_path / "grid.png").is_file()


def test_resume_refuses_a_checkpoint_past_the_last_step(tmp_path):
    _run(tmp_path, 4, ControlSettings(), checkpoint_every=2)
    with pytest.raises(CheckpointStepError, match="--steps"):
        _run(tmp_path, 2, ControlSettings(), resume=True)
