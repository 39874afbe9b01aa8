"""The toy substrates, the gate's probes and the base stage's cross-view read, on tiny sizes."""

import subprocess
import sys

import pytest
import torch
from atelier.models.sites import SD15_SITES, SITE_GROUPS
from atelier.train.anydressing.cli import cross_view_step, parse_args, train
from atelier.train.anydressing.components import load_base
from atelier.train.anydressing.data import ToyDressing, collate
from atelier.train.anydressing.steps import base_losses
from atelier.train.gate.cli import GateResult
from atelier.train.gate.measure import gate_data, probed_error, reference_banks, relative_rise, self_reference_oracle
from atelier.train.gate.probes import ProbedUNet, ProbeState
from atelier.train.loop import step_generator
from atelier.train.substrate import SubstrateError, substrate, vae_factor_for
from atelier.train.tiny import TinyUNetError, tiny_unet


def _heads(unet) -> dict[str, int]:
    modules = dict(unet.named_modules())
    return {site.name: modules[site.diffusers_attn1].heads for site in SD15_SITES}


def test_toy32_heads_are_32_wide_and_tiny_keeps_eight():
    wide = _heads(load_base("toy32").unet)
    assert {wide[s.name] for s in SD15_SITES if s.level == 0} == {1}
    assert {wide[s.name] for s in SD15_SITES if s.level == 2} == {4}
    assert set(_heads(tiny_unet()).values()) == {8}
    modules = dict(load_base("toy32").unet.named_modules())
    tiny_modules = dict(tiny_unet().named_modules())
    for site in SD15_SITES:  # toy32 starts as a similarity attention, tiny with diffusers' own init
        assert torch.equal(modules[site.diffusers_attn1].to_k.weight, modules[site.diffusers_attn1].to_q.weight)
        assert not torch.equal(tiny_modules[site.diffusers_attn1].to_k.weight, tiny_modules[site.diffusers_attn1].to_q.weight)
    assert vae_factor_for("toy32", None) == 4 and vae_factor_for("tiny", None) == 8 and vae_factor_for("toy32", 2) == 2
    assert substrate("toy32").latent_side == 32


def test_bad_substrate_and_head_width_name_the_option():
    with pytest.raises(SubstrateError, match="toy32"):
        substrate("toy64")
    with pytest.raises(TinyUNetError, match="head_dim 48"):
        tiny_unet(head_dim=48)


@pytest.fixture(scope="module")
def tiny_gate():
    components = load_base("tiny", 0)
    components.unet.requires_grad_(False).eval()
    return components, gate_data(components, 64, 2)


def test_entropy_is_one_for_uniform_attention_and_low_for_sharp(tiny_gate):
    components, data = tiny_gate
    unet = components.unet
    modules = dict(unet.named_modules())
    attn = modules[SD15_SITES[0].diffusers_attn1]
    saved = attn.to_q.weight.detach().clone()
    try:
        with torch.no_grad():
            attn.to_q.weight.zero_()
        uniform = probed_error(components, data, 500)[1].entropy[SD15_SITES[0].name]
        with torch.no_grad():
            attn.to_q.weight.copy_(attn.to_k.weight * 200.0)
        sharp = probed_error(components, data, 500)[1].entropy[SD15_SITES[0].name]
    finally:
        with torch.no_grad():
            attn.to_q.weight.copy_(saved)
    assert uniform == pytest.approx(1.0, abs=1e-5)
    assert sharp < 0.5


def test_reference_share_sees_a_query_that_finds_its_own_place():
    from atelier.train.gate.probes import reference_share

    torch.manual_seed(0)
    keys = torch.randn(1, 1, 16, 8)
    mass, same_place = reference_share(keys * 0, keys, keys, 8)  # zero queries: uniform over 32 tokens
    assert mass == pytest.approx(0.5) and same_place == pytest.approx(1.0)
    mass, same_place = reference_share(keys * 20, keys * 0, keys, 8)  # each query matches its own place
    assert mass > 0.9 and same_place > 10.0  # of at most 16


def test_probe_ablation_changes_the_output_only_where_asked(tiny_gate):
    components, data = tiny_gate
    t = torch.full((data.latents.shape[0],), 500)
    outputs = []
    for ablate in (frozenset(), frozenset({"output_11"})):
        with ProbedUNet(components.unet, ProbeState(ablate=ablate)):
            outputs.append(components.unet(data.latents, t, encoder_hidden_states=data.context).sample)
    plain = components.unet(data.latents, t, encoder_hidden_states=data.context).sample
    assert torch.allclose(outputs[0], plain, atol=1e-5)  # the probe itself is the plain attention
    assert not torch.allclose(outputs[1], plain, atol=1e-4)
    ablated = probed_error(components, data, 500, frozenset(SITE_GROUPS["all"]))[0]
    assert relative_rise(ablated, probed_error(components, data, 500)[0]) != 0.0


def test_oracle_reports_both_reads_and_the_gate_decides_on_t500(tiny_gate):
    components, data = tiny_gate
    errors = self_reference_oracle(components, data, 500, reference_banks(components, data))
    assert set(errors) == {"none", "concat", "cross", "concat other pose", "cross other pose"}
    assert all(v > 0 for v in errors.values())
    result = GateResult({}, {}, {500: {"none": 1.0, "concat": 0.85, "cross": 0.7, "concat other pose": 0.1}})
    assert result.oracle_gain(500) == pytest.approx({"concat": 0.15, "cross": 0.3, "concat other pose": 0.9})
    assert result.passes(0.2) and not result.passes(0.35)  # the other pose does not count


def test_gate_command_fails_on_a_random_base_with_exit_1(tmp_path):
    from atelier.train.loop import save_diffusers_unet

    path = tmp_path / "base.safetensors"
    save_diffusers_unet(load_base("tiny", 0).unet, path, "base")
    done = subprocess.run([sys.executable, "-m", "atelier.train.gate", "--base", "tiny", "--init-unet", str(path),
                           "--count", "2", "--timesteps", "500", "--threads", "1"], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "gate: FAIL" in done.stdout and "| output_11 |" in done.stdout and "same place" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "atelier.train.gate", "--base", "folder", "--init-unet", str(path)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "--base" in bad.stderr


def test_cross_view_reads_the_other_pose_with_gradient_into_both_passes():
    components = load_base("tiny", 0)
    dataset = ToyDressing(32, 0, 6, 0, ("upper", "lower", "dress"), other_view=True)
    sample = dataset[0]
    assert sample.other_view is not None and not torch.equal(sample.other_view, sample.person)
    batch = collate([dataset[i] for i in dataset.groups[next(iter(dataset.groups))][:2]])
    unet = components.unet.requires_grad_(True)
    plain = base_losses(components, unet, batch, step_generator(0, 0), ["", ""])["ldm"]
    read = base_losses(components, unet, batch, step_generator(0, 0), ["", ""], cross_view="other")["ldm"]
    itself = base_losses(components, unet, batch, step_generator(0, 0), ["", ""], cross_view="self")["ldm"]
    assert not torch.isclose(plain, read) and not torch.isclose(read, itself)
    read.backward()
    assert all(p.grad is not None for p in unet.parameters() if p.requires_grad)
    drawn = [cross_view_step(0, s, 0.5, 0.5) for s in range(80)]
    assert drawn.count(None) in range(25, 56) and drawn.count("self") in range(8, 33)
    assert not any(cross_view_step(0, s, 0.0) for s in range(40))
    assert "self" not in [cross_view_step(0, s, 1.0) for s in range(40)]


def test_cross_view_option_needs_the_toy_base_stage(tmp_path):
    with pytest.raises(ValueError, match="--cross-view"):
        parse_args(["--stage", "dressing", "--cross-view", "0.5", "--out", str(tmp_path)])
    args = parse_args(["--stage", "base", "--cross-view", "1", "--size", "32", "--people", "6", "--steps", "1",
                       "--batch-size", "2", "--out", str(tmp_path)])
    assert train(args).outputs[0].is_file()
