"""The TruePose diffusers host on a tiny SD1.5-layout UNet (16×16 latents): SourceNet's pass, the fused
HPFA/CAA attn1, the pose hook, CFG policy, per-run source side, pose batches and gradients."""

import pytest
import torch
from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from atelier.models.truepose.caa import CAAProjections
from atelier.models.truepose.config import TruePoseConfig
from atelier.models.truepose.diffusers_truepose import (
    DiffusersTruePoseHost,
    TruePoseAttnProcessor,
)
from atelier.models.truepose.hpfa import HPFAProjections
from atelier.models.truepose.pose_encoder import PoseEncoder
from atelier.models.truepose.truepose_run import TruePoseInputError, TruePoseSource
from atelier.train.tiny import TINY_CONTEXT_DIM, TINY_MODEL_CHANNELS, tiny_unet

LATENT, IMAGE, REGIONS, CLIP = 16, 128, 3, 16
TRUEPOSE = TruePoseConfig(clip_embed_dim=CLIP, k=2, pose_encoder_widths=(8, 8, 16))


@pytest.fixture(scope="module")
def unet():
    return tiny_unet().eval().requires_grad_(False)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(31)
    mask = torch.zeros(1, IMAGE, IMAGE)
    mask[0, 16:112, 32:96] = 1.0
    regions = torch.zeros(1, REGIONS, IMAGE, IMAGE)
    regions[0, 0, 16:40, 48:80] = 1.0
    regions[0, 1, 40:90, 32:96] = 1.0
    regions[0, 2, 90:128, 40:88] = 1.0
    return {
        "source": torch.randn(1, 4, LATENT, LATENT, generator=g),
        "source_text": torch.randn(1, 5, TINY_CONTEXT_DIM, generator=g),
        "mask": mask,
        "regions": regions,
        "clip": torch.randn(1, REGIONS, CLIP, generator=g),
        "skeletons": torch.rand(3, 3, IMAGE, IMAGE, generator=g),
        "noisy": torch.randn(3, 4, LATENT, LATENT, generator=g),
        "text": torch.randn(3, 5, TINY_CONTEXT_DIM, generator=g),
        "empty": torch.randn(3, 5, TINY_CONTEXT_DIM, generator=g),
        "t": torch.tensor([400.0, 400.0, 400.0]),
    }


def _modules(seed: int = 32) -> dict:
    """HPFA, CAA (W^{V^clip} made non-zero) and a pose encoder with a non-zero last convolution."""
    torch.manual_seed(seed)
    hpfa = HPFAProjections.for_sd15(TINY_MODEL_CHANNELS, TRUEPOSE.hpfa_sites)
    caa = CAAProjections.for_sd15(TINY_MODEL_CHANNELS, TRUEPOSE.caa_sites, CLIP)
    pose = PoseEncoder(TINY_MODEL_CHANNELS, TRUEPOSE.pose_encoder_widths)
    with torch.no_grad():
        for layer in caa.to_v.values():
            layer.weight.normal_(0.0, 0.5)
        pose.conv_out.weight.normal_(0.0, 0.2)
    return {"hpfa": hpfa, "caa": caa, "pose_encoder": pose}


def _config(strength: float = 1.0) -> ReferenceConfig:
    return ReferenceConfig(mode=ReadMode.CROSS, strength=strength, uncond=UncondPolicy.NONE,
                           site_weights={name: 1.0 for name in TRUEPOSE.hpfa_sites})


def _source(data) -> TruePoseSource:
    return TruePoseSource(data["mask"], (LATENT, LATENT), data["regions"], data["clip"])


def _cfg(unet, data, modules, s_hpfa=1.0, s_caa=1.0, pose=True):
    """A CFG call [uncond; cond] of 3 target poses from one source; returns the (6, 4, h, w) prediction."""
    sample = torch.cat([data["noisy"], data["noisy"]])
    context = torch.cat([data["empty"], data["text"]])
    with torch.no_grad(), DiffusersTruePoseHost(unet, TRUEPOSE, config=_config(s_hpfa), **modules) as host:
        bank = host.source_pass(data["source"], data["source_text"])
        run = host.new_run(bank, _source(data), data["skeletons"] if pose else None, caa_strength=s_caa)
        return host.forward(run, sample, data["t"].repeat(2), context, cond_or_uncond=(1, 0)).sample


def _plain_cfg(unet, data):
    with torch.no_grad():
        return unet(torch.cat([data["noisy"], data["noisy"]]), data["t"].repeat(2),
                    encoder_hidden_states=torch.cat([data["empty"], data["text"]])).sample


def test_uncond_rows_are_plain_and_zero_terms_give_the_plain_unet(unet, data):
    modules = _modules()
    plain = _plain_cfg(unet, data)
    full = _cfg(unet, data, modules)
    assert torch.equal(full[:3], plain[:3])
    assert (full[3:] - plain[3:]).abs().amax(dim=(1, 2, 3)).min() > 1e-4
    zero_pose = _modules()
    with torch.no_grad():
        zero_pose["pose_encoder"].conv_out.weight.zero_()
    assert torch.equal(_cfg(unet, data, zero_pose, s_hpfa=0.0, s_caa=0.0), plain)


def test_each_term_alone_changes_the_cond_rows(unet, data):
    modules = _modules()
    plain = _plain_cfg(unet, data)
    hpfa_only = _cfg(unet, data, modules, s_caa=0.0, pose=False)
    caa_only = _cfg(unet, data, modules, s_hpfa=0.0, pose=False)
    pose_only = _cfg(unet, data, modules, s_hpfa=0.0, s_caa=0.0)
    hpfa_and_caa = _cfg(unet, data, modules, pose=False)
    for name, out in (("hpfa", hpfa_only), ("caa", caa_only), ("pose", pose_only)):
        assert torch.equal(out[:3], plain[:3]), name
        assert (out[3:] - plain[3:]).abs().amax(dim=(1, 2, 3)).min() > 1e-4, name
    assert (hpfa_and_caa[3:] - hpfa_only[3:]).abs().max() > 1e-5


def test_source_side_is_computed_once_per_run(unet, data, monkeypatch):
    modules = _modules()
    hpfa = modules["hpfa"]
    calls = []
    project = hpfa.project_source

    def counting(site, states):
        calls.append(site.name)
        return project(site, states)

    monkeypatch.setattr(hpfa, "project_source", counting)
    with torch.no_grad(), DiffusersTruePoseHost(unet, TRUEPOSE, config=_config(), **modules) as host:
        run = host.new_run(host.source_pass(data["source"], data["source_text"]), _source(data), data["skeletons"])
        assert sorted(calls) == sorted(TRUEPOSE.hpfa_sites)
        for _ in range(2):
            host.forward(run, data["noisy"], data["t"], data["text"])
    assert sorted(calls) == sorted(TRUEPOSE.hpfa_sites)
    assert run.source_builds == 1
    assert all(run.reads[name] == 2 for name in TRUEPOSE.hpfa_sites)


def test_one_source_serves_three_poses_like_each_pose_alone(unet, data):
    modules = _modules()
    with torch.no_grad(), DiffusersTruePoseHost(unet, TRUEPOSE, config=_config(), **modules) as host:
        bank = host.source_pass(data["source"], data["source_text"])
        batched = host.forward(host.new_run(bank, _source(data), data["skeletons"]),
                               data["noisy"], data["t"], data["text"]).sample
        for row in range(3):
            rows = slice(row, row + 1)
            alone = host.forward(host.new_run(bank, _source(data), data["skeletons"][rows]),
                                 data["noisy"][rows], data["t"][rows], data["text"][rows]).sample
            torch.testing.assert_close(batched[rows], alone, rtol=1e-4, atol=1e-5)
        shuffled = host.forward(host.new_run(bank, _source(data), data["skeletons"].flip(0)),
                                data["noisy"], data["t"], data["text"]).sample
    assert (shuffled[0] - batched[0]).abs().max() > 1e-4


def test_gradients_reach_hpfa_caa_and_the_pose_encoder(unet, data):
    modules = _modules()
    with DiffusersTruePoseHost(unet, TRUEPOSE, config=_config(), **modules) as host:
        bank = host.source_pass(data["source"], data["source_text"], keep_grad=True)
        run = host.new_run(bank, _source(data), data["skeletons"][:1])
        out = host.forward(run, data["noisy"][:1], data["t"][:1], data["text"][:1]).sample
    out.pow(2).mean().backward()
    hpfa, caa, pose = modules["hpfa"], modules["caa"], modules["pose_encoder"]
    grads = {
        "hpfa.to_q": hpfa.to_q["output_4"].weight.grad, "hpfa.to_k_h": hpfa.to_k_h["output_11"].weight.grad,
        "hpfa.to_v_h": hpfa.to_v_h["output_9"].weight.grad, "caa.to_q": caa.to_q["output_5"].weight.grad,
        "caa.to_k": caa.to_k["output_11"].weight.grad, "caa.to_v": caa.to_v["output_3"].weight.grad,
        "pose.conv_out": pose.conv_out.weight.grad, "pose.first": pose.convs[0].weight.grad,
    }
    for name, grad in grads.items():
        assert grad is not None and grad.abs().sum() > 0, name


def test_processors_are_installed_restored_and_bad_inputs_named(unet, data):
    original = dict(unet.attn_processors)
    modules = _modules()
    with torch.no_grad(), DiffusersTruePoseHost(unet, TRUEPOSE, **modules) as host:
        assert sum(isinstance(p, TruePoseAttnProcessor) for p in unet.attn_processors.values()) == 9
        bank = host.source_pass(data["source"], data["source_text"])
        assert bank.site_names == TRUEPOSE.hpfa_sites
        with pytest.raises(TruePoseInputError, match=r"\(8, 8\)"):
            host.new_run(bank, TruePoseSource(data["mask"], (8, 8)))
        run = host.new_run(bank, _source(data), data["skeletons"][:2])
        with pytest.raises(TruePoseInputError, match="pose batch is 2 but the latent batch is 3"):
            host.forward(run, data["noisy"], data["t"], data["text"])
    assert all(unet.attn_processors[key] is original[key] for key in original)


def test_a_half_precision_unet_reads_full_precision_modules(unet, data):
    """GPU hosts run the UNet in fp16/bf16 while the TruePose modules stay fp32: the source side is
    computed at the modules' precision and the per-step read at the UNet's, with no dtype error."""
    modules = _modules()
    half = tiny_unet().eval().requires_grad_(False)
    half.load_state_dict(unet.state_dict())
    half = half.to(torch.bfloat16)
    as_half = {key: value.to(torch.bfloat16) if value.is_floating_point() else value for key, value in data.items()}
    with torch.no_grad(), DiffusersTruePoseHost(half, TRUEPOSE, config=_config(), **modules) as host:
        bank = host.source_pass(as_half["source"], as_half["source_text"])
        run = host.new_run(bank, _source(data), data["skeletons"])
        out = host.forward(run, as_half["noisy"], as_half["t"], as_half["text"]).sample
        plain_half = half(as_half["noisy"], as_half["t"], encoder_hidden_states=as_half["text"]).sample
    with torch.no_grad(), DiffusersTruePoseHost(unet, TRUEPOSE, config=_config(), **modules) as host:
        reference = host.forward(host.new_run(host.source_pass(data["source"], data["source_text"]), _source(data),
                                              data["skeletons"]), data["noisy"], data["t"], data["text"]).sample
        plain = unet(data["noisy"], data["t"], encoder_hidden_states=data["text"]).sample
    assert out.dtype == torch.bfloat16 and bool(torch.isfinite(out).all())
    effect_half, effect = (out - plain_half).float().flatten(), (reference - plain).flatten()
    assert torch.nn.functional.cosine_similarity(effect_half, effect, dim=0) > 0.9, "the same TruePose terms at bf16"
