"""The ablation commands' statistics and the AnyDressing protocol end to end on tiny sizes."""

import json

import pytest
from atelier.train.ablations import anydressing
from atelier.train.ablations.dressing_eval import (
    SWAP_CATEGORIES,
    gate_passes,
    gate_report,
    instrument_gate,
)
from atelier.train.ablations.runs import read_result, run_dir
from atelier.train.anydressing.data import ToyDressing
from atelier.train.anydressing.evaluate import HELD_OUT_START
from atelier.train.ablations.stats import (
    format_mean_sd,
    markdown_table,
    mean_sd,
    separated,
    verdict,
)


def test_mean_sd_and_verdicts_follow_the_seed_spread():
    assert mean_sd([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert format_mean_sd([1.0, 2.0, 3.0], 1) == "2.0 ± 1.0"
    assert separated([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) and not separated([1.0, 2.0, 3.0], [2.5, 3.0, 3.5])
    assert verdict([2.0, 2.1, 1.9], [1.0, 1.1, 0.9], higher_is_better=True) == "reproduced"
    assert verdict([2.0, 2.1, 1.9], [1.0, 1.1, 0.9], higher_is_better=False) == "contradicted"
    assert verdict([1.0, 2.0, 3.0], [2.5, 3.0, 3.5], higher_is_better=True).startswith("unresolved")
    assert verdict([1.0], [2.0], higher_is_better=True).startswith("unresolved")
    table = markdown_table({"a": {"x": [1.0, 3.0]}, "b": {}}, [("x", "X")], digits=1)
    assert "| a | 2 | 2.0 ± 1.4 |" in table and "| b | 0 | – |" in table


def test_anydressing_ablation_trains_evaluates_and_reuses_runs(tmp_path, capsys):
    argv = ["--base", "tiny", "--size", "32", "--people", "12", "--out", str(tmp_path), "--seeds", "1", "--steps", "1",
            "--batch-size", "2", "--count", "2", "--igl-sweep", "", "--ddim-steps", "2", "--variants", "base-tiled,gfe"]
    anydressing.main(argv)
    printed = capsys.readouterr().out
    assert "| base-tiled | 1 |" in printed and "| gfe | 1 |" in printed
    assert "GFE lowers garment confusion vs Base (swap out ↓): unresolved (fewer than 2 seeds)" in printed
    stored = json.loads((run_dir(tmp_path, "gfe", 1) / "eval.json").read_text())
    metrics = stored["metrics"]
    assert {"eps_fall_300", "eps_fall_500", "color_error", "swap_in", "swap_out", "loc", "loc_chance"} <= set(metrics)
    assert 0.0 <= metrics["loc"] <= 1.0
    assert "loc" not in json.loads((run_dir(tmp_path, "base-tiled", 1) / "eval.json").read_text())["metrics"]
    assert read_result(run_dir(tmp_path, "gfe", 1), {**stored["settings"], "steps": 2}) is None
    anydressing.main([*argv, "--table-only"])
    assert capsys.readouterr().out.splitlines()[:4] == printed.splitlines()[:4]
    with pytest.raises(SystemExit, match="--variants"):
        anydressing.main([*argv, "--variants", "nope"])


def test_anydressing_instrument_gate_separates_the_truth_from_wrong_pictures():
    dataset = ToyDressing(32, HELD_OUT_START, 12, 0, SWAP_CATEGORIES)
    gate = instrument_gate(dataset, 3)
    assert gate_passes(gate)
    assert gate["truth itself"]["color_error"] < 1e-6
    assert gate["img2img start"]["color_error"] > 10.0 and gate["another person"]["color_error"] > 10.0
    assert gate["oracle swap"]["swap_in"] >= 0.9 and gate["swap ignored"]["swap_in"] == 0.0
    assert not gate_passes({**gate, "oracle swap": {**gate["oracle swap"], "swap_out": 0.5}})
    assert "Instrument gate: PASS" in gate_report(gate)
