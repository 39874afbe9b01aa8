"""The Text2Graph binding ablation's machinery at toy sizes: the binding read-back, the encodings,
resumable training and the gate that stops the command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atelier.train.ablations import text2graph
from atelier.train.ablations.binding_eval import binding_scores, erode
from atelier.train.ablations.binding_train import (
    BindingCheckpointError,
    BindingTrainConfig,
    encode_prompts,
    train_denoiser,
    window_tokens,
)
from atelier.train.ablations.binding_world import BindingWorldConfig, BindingWorldError, evaluation_samples

COLORS = ("red", "green", "blue")


@pytest.fixture
def one_thread():
    """Training steps on one thread: two threads on a busy 2-core machine wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def eval_set():
    return evaluation_samples(BindingWorldConfig(size=32, colors=COLORS), repeats=2)


def test_truth_reads_right_and_swapped_truth_reads_as_swaps(eval_set):
    truth = np.stack([sample.image for sample in eval_set])
    right = binding_scores(truth, eval_set, COLORS, erosion=2)
    swapped = binding_scores(text2graph.swapped_truth(eval_set), eval_set, COLORS, erosion=2)
    assert right["binding_accuracy"] == 1.0 and right["swap_rate"] == 0.0 and right["both_right"] == 1.0
    assert swapped["binding_accuracy"] == 0.0 and swapped["swap_rate"] == 1.0


def test_region_mean_not_median_decides_the_colour(eval_set):
    sample = eval_set[0]  # bodice red
    image = sample.image.copy()
    stripes = erode(sample.body_mask, 2) & (np.arange(32)[:, None] % 2 == 0)  # every other row of the bodice
    image[stripes] = (35, 85, 200)  # blue stripes on about half of it: the mean is purple-ish, not red
    assert binding_scores(image[None], [sample], ("red", "blue", "purple"), erosion=2)["accuracy_body"] == 0.0


def test_every_ordered_pair_and_both_caption_orders_are_evaluated(eval_set):
    assert len({(s.body, s.part) for s in eval_set}) == 6 and all(s.body != s.part for s in eval_set)
    assert {s.caption.split()[2] for s in eval_set} == {"dress", "skirt"}
    assert eval_set[0].triples == [("dress", "has-color", "red"), ("dress", "has-feature", "skirt"),
                                   ("skirt", "has-color", "green")]
    with pytest.raises(BindingWorldError, match="--colors"):
        BindingWorldConfig(colors=("red", "nope"))


def test_encodings_share_the_frozen_encoder_and_bound_has_a_window_per_entity(eval_set):
    from atelier.train.text2graph.tiny import tiny_text_encoder, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    encoder = tiny_text_encoder(len(tokenizer), seed=0)
    shapes = {v: encode_prompts(v, eval_set[:3], tokenizer, encoder) for v in ("plain", "linearised", "bound", "oracle-slots")}
    assert shapes["plain"][0].shape == (3, 77, 64) and shapes["bound"][0].shape == (3, 154, 64)
    assert shapes["bound"][1].shape == (1, 154, 64)
    assert torch.equal(shapes["plain"][1], shapes["linearised"][1])  # the same empty prompt
    assert not torch.allclose(shapes["plain"][0], shapes["linearised"][0])
    keep = window_tokens("bound", eval_set, tokenizer)  # "blue skirt of the dress": 5 words + start, end
    trimmed, empty = encode_prompts("bound", eval_set[:3], tokenizer, encoder, keep)
    assert keep == 7 and trimmed.shape == (3, 14, 64) and empty.shape == (1, 14, 64)
    assert torch.equal(trimmed[:, 7:], shapes["bound"][0][:, 77:84])  # the second window's own tokens


def test_training_resumes_to_the_same_losses(tmp_path, one_thread):
    from atelier.train.text2graph.models import sd_scheduler
    from atelier.train.tiny import tiny_unet

    latents = torch.randn(4, 4, 8, 8)
    contexts, empty = torch.randn(4, 77, 64), torch.zeros(1, 77, 64)

    def run(folder, steps, lr=1e-3):
        unet = tiny_unet(0, widths=(32, 32, 32, 32), head_dim=32)
        config = BindingTrainConfig(steps=steps, batch_size=2, lr=lr, checkpoint_every=2)
        return train_denoiser(unet, latents, contexts, empty, sd_scheduler(), config, seed=3, folder=folder)

    straight = run(tmp_path / "a", 3)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 3)
    assert resumed[:2] == straight[:2] and resumed[2] == pytest.approx(straight[2], rel=1e-4)
    with pytest.raises(BindingCheckpointError, match="pass another --out"):
        run(tmp_path / "b", 3, lr=5e-4)


def test_gate_stops_the_command_when_the_oracle_cannot_bind(tmp_path, capsys, one_thread):
    argv = ["--out", str(tmp_path), "--steps", "1", "--warmup-steps", "1", "--pictures", "4", "--size", "32", "--eval-repeats", "1",
            "--ddim-steps", "1", "--colors", "red,blue", "--seeds", "0,1", "--threads", "1"]
    with pytest.raises(SystemExit):
        text2graph.main(argv)
    assert "the instrument gate fails, so no table is made" in capsys.readouterr().err
    assert "oracle: colours in fixed slots" in (tmp_path / "instrument.md").read_text()
    assert not (tmp_path / "table.md").exists()
    assert (tmp_path / "warmup" / "checkpoint.pt").is_file()
    with pytest.raises(SystemExit):
        text2graph.main([*argv[:6], "--size", "40"])
    assert "--size 40 must be a multiple of 32" in capsys.readouterr().err


def test_gate_rule():
    good = {"truth": {"binding_accuracy": 1.0, "swap_rate": 0.0}, "swapped": {"binding_accuracy": 0.0, "swap_rate": 1.0},
            "oracle": {"binding_accuracy": 0.9, "swap_rate": 0.0}, "none": {"binding_accuracy": 0.2, "swap_rate": 0.2}}
    assert text2graph.gate_passes(good, colors=6)
    assert not text2graph.gate_passes({**good, "oracle": {"binding_accuracy": 0.5, "swap_rate": 0.0}}, colors=6)
    assert not text2graph.gate_passes({**good, "none": {"binding_accuracy": 0.6, "swap_rate": 0.0}}, colors=6)
    weaker = {**good, "oracle": {"binding_accuracy": 0.7, "swap_rate": 0.0}}
    weaker = {name: {**row, "both_right": 0.0} for name, row in weaker.items()}
    assert text2graph.gate_passes(weaker, colors=6) and not text2graph.gate_passes(weaker, colors=6, oracle_least=0.8)
    assert "oracle ≥ 0.8" in text2graph.gate_report(weaker, colors=6, oracle_least=0.8)
