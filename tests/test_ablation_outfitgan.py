"""The OutfitGAN ablation command end to end on tiny sizes: the instrument gate, the judge trained
once, the per-seed CCM every variant starts from, the table, reuse of finished runs, option errors."""

import json

import pytest
import torch
from atelier.train.ablations import outfitgan
from atelier.train.ablations.outfit_eval import gate_failures
from atelier.train.ablations.runs import TRAINING_FILE, read_result, run_dir

ARGV = ["--size", "32", "--downsamples", "2", "--base-channels", "4", "--disc-channels", "4", "--ccm-channels", "2",
        "--outfits", "8", "--steps", "2", "--ccm-steps", "2", "--batch-size", "2", "--count", "12",
        "--judge-steps", "60", "--judge-outfits", "64", "--seeds", "1", "--threads", "1"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread while this module runs, restored after (a shared, busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_outfitgan_ablation_trains_evaluates_and_reuses_runs(tmp_path, capsys):
    argv = [*ARGV, "--out", str(tmp_path), "--variants", "full,no-ccm"]
    outfitgan.main(argv)
    printed = capsys.readouterr().out
    assert "Instrument gate: PASS" in printed and "Judge CCM AUC" in printed
    assert "| full | 1 |" in printed and "| no-ccm | 1 |" in printed and "| no-sam |" not in printed
    header = next(line for line in printed.splitlines() if line.startswith("| variant"))
    assert header.count("|") == len(outfitgan.COLUMNS) + 3
    assert "CCM loss makes outfits more compatible (judge CCM ↑): unresolved (fewer than 2 seeds)" in printed
    assert "SAM beats w/o SAM" not in printed  # claims of a variant not run print no line
    stored = json.loads((run_dir(tmp_path, "no-ccm", 1) / "eval.json").read_text())
    assert set(stored["metrics"]) == {key for key, _ in outfitgan.COLUMNS}
    assert 0.0 <= stored["metrics"]["color_match"] <= 1.0 and 0.0 <= stored["metrics"]["judge"] <= 1.0
    trained = json.loads((run_dir(tmp_path, "no-ccm", 1) / TRAINING_FILE).read_text())
    ccm_file = str(run_dir(tmp_path, outfitgan.CCM_RUN, 1) / outfitgan.WEIGHTS_FILE)
    assert trained["finished"] and trained["argv"][trained["argv"].index("--ccm-from") + 1] == ccm_file
    assert trained["argv"][trained["argv"].index("--lambda-ccm") + 1] == "0.0"
    assert read_result(run_dir(tmp_path, "full", 1), {**stored["settings"], "steps": 3}) is None
    before = [(run_dir(tmp_path, "full", 1) / name).stat().st_mtime_ns for name in ("eval.json", outfitgan.WEIGHTS_FILE)]
    judge = (tmp_path / outfitgan.JUDGE_FILE).stat().st_mtime_ns
    outfitgan.main(argv)  # everything finished: reused, nothing retrained or re-evaluated
    assert capsys.readouterr().out == printed
    assert [(run_dir(tmp_path, "full", 1) / name).stat().st_mtime_ns for name in ("eval.json", outfitgan.WEIGHTS_FILE)] == before
    assert (tmp_path / outfitgan.JUDGE_FILE).stat().st_mtime_ns == judge
    with pytest.raises(SystemExit, match="holds a run trained with other settings"):
        outfitgan.main([*argv, "--lr", "1e-3", "--variants", "full"])


def test_gate_fails_when_a_score_does_not_rank_the_truth_first():
    truth = {"color_match": 0.95, "rule_allowed": 0.97, "rule_outfit": 0.9, "judge": 0.6, "entropy": 3.0,
             "ssim": 1.0, "l1": 0.0}
    random = {**truth, "color_match": 0.1, "rule_allowed": 0.4, "rule_outfit": 0.1, "judge": 0.5, "ssim": 0.4, "l1": 0.2}
    assert gate_failures({"true outfits": truth, "random outfits": random}) == []
    failed = gate_failures({"true outfits": truth, "random outfits": {**random, "color_match": 0.9}})
    assert len(failed) == 1 and failed[0].startswith("color_match")


@pytest.mark.parametrize("extra, message", [
    (["--variants", "nope"], "--variants"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--size", "36", "--downsamples", "3"], "--size 36 must be a multiple"),
    (["--lambda-ccm", "0"], "--lambda-ccm must be > 0"),
    (["--judge", "/no/such/judge.safetensors"], "--judge"),
])
def test_option_errors_are_one_line(tmp_path, extra, message):
    with pytest.raises(SystemExit, match=message) as raised:
        outfitgan.main([*ARGV, "--out", str(tmp_path), *extra])
    assert str(raised.value).startswith("error: ") and "\n" not in str(raised.value)
