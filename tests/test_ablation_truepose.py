"""The TruePose Table 2 ablation command end to end on tiny sizes: base, two variants, table, reuse."""

import json

import numpy as np
import pytest
from atelier.train.ablations import truepose
from atelier.train.ablations.runs import read_result, run_dir
from atelier.train.metrics.similarity import ssim


def test_ssim_restricted_to_a_region_reads_only_windows_centred_there():
    rng = np.random.default_rng(0)
    image, noisy = rng.random((24, 24, 3)), rng.random((24, 24, 3))
    left = np.zeros((24, 24), bool)
    left[:, :12] = True
    noisy[:, 17:] = image[:, 17:]  # windows centred in the left half never reach the right edge columns
    assert ssim(noisy, image, np.ones((24, 24), bool)) == pytest.approx(ssim(noisy, image))
    assert ssim(noisy, image, left) < ssim(noisy, image, ~left)
    assert np.isnan(ssim(noisy, image, np.zeros((24, 24), bool)))


def test_truepose_ablation_trains_evaluates_and_reuses_runs(tmp_path, capsys):
    argv = ["--base", "tiny", "--gate-fall", "-1", "--size", "32x32", "--people", "6", "--out", str(tmp_path), "--seeds", "1", "--base-steps", "1",
            "--steps", "1", "--batch-size", "2", "--count", "2", "--ddim-steps", "2", "--threads", "1",
            "--variants", "full,concat"]
    truepose.main(argv)
    printed = capsys.readouterr().out
    assert "Instrument gate: PASS" in printed and (tmp_path / "instrument.md").is_file()
    assert "| the target itself | 1.000 | inf | 1.000 | 0.000 | 1.000 |" in printed
    assert "| full | 1 |" in printed and "| concat | 1 |" in printed
    assert "Ours beats B2 Dual-UNet concat (SSIM person ↑): unresolved (fewer than 2 seeds)" in printed
    assert "B4" not in printed  # no-hpfa did not run, so its claims print no line
    assert (tmp_path / "base" / "base_unet.safetensors").is_file()
    stored = json.loads((run_dir(tmp_path, "full", 1) / "eval.json").read_text())
    assert {"ssim", "psnr", "ssim_person", "psnr_person", "color_error", "eps_mse", "eps_mse_no_condition",
            "eps_person", "eps_person_no_condition", "eps_person_target_source"} <= set(stored["metrics"])
    assert stored["settings"]["guidance"] == 3.5
    assert read_result(run_dir(tmp_path, "full", 1), {**stored["settings"], "steps": 2}) is None
    truepose.main([*argv, "--table-only"])
    assert capsys.readouterr().out == printed
    with pytest.raises(SystemExit, match="--variants"):
        truepose.main([*argv, "--variants", "nope"])
    with pytest.raises(SystemExit, match="--init-unet"):
        truepose.main([*argv, "--base", "toy32"])
    with pytest.raises(SystemExit, match="instrument gate fails"):  # no oracle lowers the error by 100%
        truepose.main([*argv, "--gate-fall", "1"])
