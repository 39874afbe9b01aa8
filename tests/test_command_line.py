"""The command-line convention every entry point shares (train/command_line.py): ``--help`` answers
before torch loads, user errors are one line on stderr with exit status 2 (``--debug``: the
traceback), and a wrong weight file names the file, what it is and what was expected."""

import json
import subprocess
import sys

import pytest
from atelier.models.errors import WeightFileError
from atelier.models.outfitgan.config import OutfitGANConfig
from atelier.models.outfitgan.spec import OUTFITGAN, build_outfitgan, outfitgan_base
from atelier.models.weights import load_weight_file, save_weight_file
from atelier.train.anydressing import cli as anydressing
from atelier.train.command_line import OptionError, UserErrorExit, make_parser, output_file, run_cli

# The entry points whose option parsing imports nothing heavy.
LIGHT_ENTRY_POINTS = (
    "atelier.train.anydressing", "atelier.train.igr", "atelier.train.truepose", "atelier.train.outfitgan",
    "atelier.train.text2graph", "atelier.train.gate", "atelier.models.garment_networks.convert",
    "atelier.train.multiprocess_check",
)

HELP_PROBE = """
import json, runpy, sys
report = {}
for name in sys.argv[1:]:
    sys.argv[1:] = ["--help"]
    try:
        runpy.run_module(name, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code
    heavy = sorted(m for m in ("torch", "diffusers", "transformers", "accelerate") if m in sys.modules)
    report[name] = {"code": code, "heavy": heavy}
print(json.dumps(report))
"""


def test_every_light_entry_point_answers_help_without_importing_torch():
    done = subprocess.run([sys.executable, "-c", HELP_PROBE, *LIGHT_ENTRY_POINTS], capture_output=True, text=True,
                          timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name: entry for name, entry in report.items() if entry != {"code": 0, "heavy": []}} == {}


def test_a_bad_option_is_one_line_naming_the_flag_with_exit_status_2():
    done = subprocess.run([sys.executable, "-m", "atelier.train.anydressing", "--size", "63", "--out", "unused"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: --size 63 must be a multiple of the VAE factor 8 (--vae-factor)"]
    done = subprocess.run([sys.executable, "-m", "atelier.train.truepose", "--size", "7x8"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "--size" in done.stderr


def _outfitgan_file(path) -> str:
    config = OutfitGANConfig(image_size=32, base_channels=8, downsamples=2, residual_blocks=1, ccm_channels=4,
                             ccm_image_size=32)
    save_weight_file(str(path), OUTFITGAN, outfitgan_base(config), config.to_dict(),
                     build_outfitgan(config.to_dict(), outfitgan_base(config)))
    return str(path)


def test_an_outfitgan_file_as_init_unet_is_one_line_naming_the_file(tmp_path, capsys):
    weights = _outfitgan_file(tmp_path / "outfitgan.safetensors")
    with pytest.raises(SystemExit) as exit_info:
        anydressing.main(["--base", "tiny", "--size", "64", "--init-unet", weights, "--steps", "0",
                          "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and weights in lines[0]
    assert "'outfitgan' weight file" in lines[0] and "diffusers-format UNet state dict" in lines[0]


def test_debug_shows_the_traceback_instead(tmp_path):
    weights = _outfitgan_file(tmp_path / "outfitgan.safetensors")
    with pytest.raises(ValueError, match="--init-unet"):
        anydressing.main(["--base", "tiny", "--size", "64", "--init-unet", weights, "--steps", "0",
                          "--out", str(tmp_path / "run"), "--debug"])


def test_a_wrong_weight_file_names_the_flag_on_the_command_line_and_the_node_in_a_node(tmp_path):
    weights = _outfitgan_file(tmp_path / "outfitgan.safetensors")
    with pytest.raises(WeightFileError, match="; --weights needs a 'anydressing' file") as flag_error:
        load_weight_file(weights, expected_system="anydressing", needed_by="--weights")
    assert "node" not in str(flag_error.value)
    with pytest.raises(WeightFileError, match="this node needs a 'anydressing' file"):
        load_weight_file(weights, expected_system="anydressing")


def test_run_cli_turns_user_errors_into_one_line_and_leaves_bugs_alone(capsys):
    parser = make_parser("prog", "A test command.")
    parser.add_argument("--count", type=int, default=1, help="how many")

    def refuse(args):
        raise OptionError(f"--count must be 2, got {args.count}")

    with pytest.raises(UserErrorExit, match="--count must be 2") as exit_info:
        run_cli(parser.parse_args, refuse, ["--count", "3"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: --count must be 2, got 3\n"
    with pytest.raises(FileNotFoundError):
        run_cli(parser.parse_args, lambda args: open("/nonexistent/x"), ["--debug"])

    def bug(args):
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        run_cli(parser.parse_args, bug, [])
    assert "(default: 1)" in parser.format_help()


def test_out_is_a_folder_and_a_former_file_spelling_is_still_that_file(tmp_path):
    assert output_file(str(tmp_path / "run"), "evaluation.json") == tmp_path / "run" / "evaluation.json"
    assert (tmp_path / "run").is_dir()
    assert output_file(str(tmp_path / "old.json"), "evaluation.json") == tmp_path / "old.json"


def test_text2graph_out_is_a_folder_and_the_former_flags_still_read():
    from atelier.train.text2graph.options import parse_args as text2graph_args

    assert text2graph_args(["--out", "runs/kg"]).output == "runs/kg/text2graph_lora.safetensors"
    assert text2graph_args(["--out", "runs/kg", "--adapter", "full", "--space", "pixel"]).output == \
        "runs/kg/text2graph_unet.safetensors"
    former = text2graph_args(["--output", "kg.safetensors", "--learning-rate", "1e-4", "--data", "hm",
                              "--hm-root", "/data/hm"])
    assert (former.output, former.learning_rate, former.hm_root) == ("kg.safetensors", 1e-4, "/data/hm")
