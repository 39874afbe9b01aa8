"""What the toy world's colour rules make learnable for OutfitGAN, and the judge CCM: colour dependence
on the upper under each rule, the measurement command's table, outfits drawn under a chosen rule, and a
judge that trains a couple of steps, reports an AUC and saves a file ``evaluate --judge`` reads."""

import json

import pytest
import torch
from atelier.models.weights import load_weight_file
from atelier.train.outfitgan import judge, learnability
from atelier.train.outfitgan.data import RuleOutfits, ToyWorldOutfits
from atelier.train.outfitgan.judge import (
    JudgeConfig,
    JudgeConfigError,
    save_judge,
    train_judge,
)

TINY_JUDGE = JudgeConfig(size=32, train_outfits=12, test_outfits=16, steps=2, batch_size=4, channels=4,
                         embedding=8, hidden=8)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_palette_rule_makes_colours_predictable_from_the_upper_and_accents_does_not():
    palette = learnability.compatible_designs("palette", 300)
    accents = learnability.compatible_designs("accents", 300)
    for slot in learnability.TARGET_SLOTS:
        assert learnability.bayes_accuracy(palette, slot) > 0.7
        assert learnability.bayes_accuracy(accents, slot) < 0.35
        assert learnability.conditional_color_entropy(palette, slot) < learnability.color_entropy(palette, slot) - 2.0
    assert learnability.harmony_rate(palette, "palette") == 1.0 and learnability.harmony_rate(accents, "accents") == 1.0


def test_measurement_command_prints_its_table(capsys):
    learnability.main(["--outfits", "40"])
    table = capsys.readouterr().out
    assert table.splitlines()[0] == "| quantity | accents (old) | palette (new) |"
    assert "| Bayes colour accuracy of lower given upper colour |" in table
    assert "| distinct colour combinations |" in table and "judge" not in table
    learnability.main(["--outfits", "20", "--rules", "palette", "--json"])
    numbers = json.loads(capsys.readouterr().out)["palette (new)"]
    assert numbers["harmony_palette"] == 1.0 and 0.0 <= numbers["random_pass"] <= 1.0


def test_rule_outfits_are_the_world_outfits_under_the_default_rule():
    drawn, world = RuleOutfits(32, count=4), ToyWorldOutfits(32, count=4)
    for index in range(4):
        assert torch.equal(drawn[index]["items"], world[index]["items"])
        assert drawn[index]["label"] == world[index]["label"]
    old = RuleOutfits(32, count=4, rule="accents")
    assert any(not torch.equal(old[i]["items"], world[i]["items"]) for i in range(4))


def test_judge_trains_reports_an_auc_and_saves_a_file_evaluate_reads(tmp_path):
    result = train_judge(TINY_JUDGE)
    assert 0.0 <= result.auc <= 1.0
    assert set(result.auc_by_clause) <= {"formality", "color", "pattern"}
    assert all(0.0 <= auc <= 1.0 for auc in result.auc_by_clause.values())
    path = tmp_path / "judge.safetensors"
    save_judge(str(path), result)
    ccm = load_weight_file(str(path), expected_system="outfitgan").modules["ccm"]
    for name, tensor in result.ccm.state_dict().items():
        assert torch.equal(ccm.state_dict()[name], tensor)
    with pytest.raises(JudgeConfigError, match="rule"):
        JudgeConfig(rule="rainbow")


def test_judge_command_prints_auc_per_seed(capsys, tmp_path):
    judge.main(["--train-outfits", "8", "--test-outfits", "12", "--steps", "1", "--batch-size", "2",
                "--seeds", "0", "1", "--rule", "accents", "--out", str(tmp_path)])
    assert (tmp_path / "judge.safetensors").is_file(), "--out is the folder evaluate --judge reads from"
    report = json.loads(capsys.readouterr().out)
    assert report["rule"] == "accents" and len(report["auc"]) == 2
    assert all(0.0 <= auc <= 1.0 for auc in report["auc"]) and report["auc_sd"] >= 0.0


def test_commands_answer_a_bad_option_in_one_line():
    with pytest.raises(SystemExit, match="JudgeConfig.size"):
        judge.main(["--size", "0"])
    with pytest.raises(SystemExit, match="--outfits"):
        learnability.main(["--outfits", "0"])
