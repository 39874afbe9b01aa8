"""The IGR Table 2 ablation command end to end on tiny sizes: the instrument gate, five variants of
which two continue a third, the table, reuse of finished runs, and one-line option errors."""

import json

import numpy as np
import pytest
import torch
from atelier.train.ablations import igr
from atelier.train.ablations.restoration_eval import (
    gate_passes,
    instrument_gate,
    swap_color,
    swap_moved,
)
from atelier.train.ablations.runs import TRAINING_FILE, read_result, run_dir
from atelier.train.igr.data import ToyIGR
from atelier.train.igr.evaluate import HELD_OUT_START
from atelier.train.toyworld.palette import GARMENT_COLORS

ARGV = ["--base", "tiny", "--size", "64", "--people", "6", "--seeds", "1", "--steps", "1", "--extra-steps", "1",
        "--batch-size", "2", "--count", "2", "--ddim-steps", "2", "--eval-batch", "2", "--threads", "1"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread while this module runs, restored after (a shared, busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_recoloured_pair_keeps_the_masks_and_moves_the_colour():
    data = ToyIGR((64, 64), start=HELD_OUT_START, count=3, rule=None)
    spec = data.person(0).garments[data.entries[0][1]].spec
    new = swap_color(spec, data.person(0).identity.skin_rgb, 0)
    swapped, person = data.recoloured(0, new)
    assert new.name not in {c.name for c in spec.colors()}
    assert torch.equal(swapped.mask, data[0].mask) and not torch.equal(swapped.person, data[0].person)
    assert person.garments[data.entries[0][1]].spec.color == new
    white, black = (np.full((8, 8, 3), color.rgb, np.uint8) for color in (GARMENT_COLORS[1], GARMENT_COLORS[0]))
    grey = np.full((8, 8, 3), GARMENT_COLORS[2].rgb, np.uint8)
    mask = np.ones((8, 8), bool)
    assert swap_moved(white, black, white, black, mask) == pytest.approx(1.0)  # moved all the way
    assert swap_moved(white, white, white, black, mask) == 0.0  # ignored the person
    assert 0.2 < swap_moved(white, grey, white, black, mask) < 0.8  # part of the way


def test_instrument_gate_separates_the_truth_from_wrong_garments():
    gate = instrument_gate(ToyIGR((64, 64), start=HELD_OUT_START, count=12, rule=None), 4)
    assert gate["reference itself"]["ssim_garment"] == pytest.approx(1.0)
    assert gate["recoloured garment"]["color_error"] > 20 and gate["another garment"]["ssim_garment"] < 0.9
    assert gate_passes(gate)
    broken = {row: dict(metrics) for row, metrics in gate.items()}
    broken["recoloured garment"]["color_error"] = 0.0
    assert not gate_passes(broken)


def test_igr_ablation_trains_evaluates_and_reuses_runs(tmp_path, capsys):
    argv = [*ARGV, "--out", str(tmp_path), "--variants", "ip,both,both+fine"]
    igr.main(argv)
    printed = capsys.readouterr().out
    assert "Instrument gate: PASS" in printed
    assert "| ip | 1 |" in printed and "| both | 1 |" in printed and "| both+fine | 1 |" in printed
    assert "| garmnet |" not in printed and "GarmNet only" not in printed  # claims of a variant not run print no line
    assert "GarmNet + IP beats IP only, w/o GarmNet (SSIM in M_g ↑): unresolved (fewer than 2 seeds)" in printed
    header = next(line for line in printed.splitlines() if line.startswith("| variant"))
    assert header.count("|") == len(igr.COLUMNS) + 3
    stored = json.loads((run_dir(tmp_path, "both+fine", 1) / "eval.json").read_text())
    assert {"ssim_garment", "psnr_garment", "color_error", "swap", "eps_fall_300", "eps_fall_500", "eps_own_500"} \
        <= set(stored["metrics"])
    assert stored["settings"]["protocol"]["guidance"] == 1.5
    fine = json.loads((run_dir(tmp_path, "both+fine", 1) / TRAINING_FILE).read_text())
    assert fine["finished"] and "--resume-from" in fine["argv"] and str(run_dir(tmp_path, "both", 1)) in fine["argv"]
    assert fine["argv"][fine["argv"].index("--seed") + 1] == str(1 + igr.CONTINUATION_SEED_OFFSET)
    assert read_result(run_dir(tmp_path, "both", 1), {**stored["settings"], "steps": 2}) is None
    before = (run_dir(tmp_path, "both", 1) / "eval.json").stat().st_mtime_ns
    igr.main(argv)  # everything finished: reused, nothing retrained or re-evaluated
    assert capsys.readouterr().out == printed
    assert (run_dir(tmp_path, "both", 1) / "eval.json").stat().st_mtime_ns == before
    igr.main([*argv, "--table-only"])
    assert capsys.readouterr().out == printed
    with pytest.raises(SystemExit, match="holds a run trained with other settings"):
        igr.main([*argv, "--lr", "1e-3", "--variants", "ip"])


@pytest.mark.parametrize("extra, message", [
    (["--variants", "nope"], "--variants"),
    (["--extra-steps", "0"], "--extra-steps must be >= 1"),
    (["--size", "60"], "--size 60x60 must be a multiple"),
])
def test_option_errors_are_one_line(tmp_path, extra, message):
    with pytest.raises(SystemExit, match=message) as raised:
        igr.main([*ARGV, "--out", str(tmp_path), *extra])
    assert str(raised.value).startswith("error: ") and "\n" not in str(raised.value)
