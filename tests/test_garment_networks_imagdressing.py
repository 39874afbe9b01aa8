"""IMAGDressing-v1's published layout at small width: detection, splitting, errors, the Resampler's
math and the garment read, each checked against formulas written here from the public code's
semantics (never by importing it). The opt-in test at the end runs the public code itself
(IMAGDRESSING_PATH, see tests/imagdressing_public.py)."""

from __future__ import annotations

import os
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from atelier.models.diffusers_host import DiffusersReferenceHost
from atelier.models.errors import AtelierError, WeightFileError
from atelier.models.garment_networks import imagdressing as im
from atelier.models.garment_networks.families import convert_to_safetensors
from atelier.models.garment_networks.files import read_tensors
from atelier.models.garment_networks.imagdressing_layout import ADAPTER_INDEX_TO_SITE
from atelier.models.garment_networks.sd15_layout import sd15_diffusers_unet_keys
from atelier.models.reference_config import ReadMode, UncondPolicy
from atelier.models.sites import SD15_SITES, SITES_BY_NAME
from atelier.train.tiny import tiny_unet
from diffusers import UNet2DConditionModel
from garment_network_files import adapter_state, published_resampler_state

CONTEXT = 64
EMBED = 48
DIM_HEAD = 16
RESAMPLER = {"dim": CONTEXT, "depth": 2, "dim_head": DIM_HEAD, "heads": 4, "num_queries": 4, "embedding_dim": EMBED,
                 "output_dim": CONTEXT, "ff_mult": 4}


@pytest.fixture(scope="module")
def unets():
    return {"base": tiny_unet(seed=0, context_dim=CONTEXT).eval(), "garment": tiny_unet(seed=1, context_dim=CONTEXT).eval()}


@pytest.fixture(scope="module")
def published(unets):
    """The module dict as train.py's SDModel saves it: ref_unet, unet (with its processors' aliases),
    proj, adapter_modules."""
    adapter = adapter_state(unets["base"])
    state = OrderedDict()
    state.update({f"unet.{k}": v for k, v in unets["base"].state_dict().items()})
    for key, value in adapter.items():  # RefSAttnProcessor2_0 is a submodule of the denoiser's attn1
        index = int(key.split(".")[1])
        name = list(unets["base"].attn_processors)[index]
        state[f"unet.{name}.{key.split('.', 2)[2]}"] = value
    state.update({f"ref_unet.{k}": v for k, v in unets["garment"].state_dict().items()})
    state.update({f"proj.{k}": v for k, v in published_resampler_state(**RESAMPLER).items()})
    state.update(adapter)
    return state


def split(state, **kwargs):
    return im.split_state_dict(state, source="IMAGDressing-v1_tiny.pt", dim_head=DIM_HEAD, **kwargs)


# ---------------------------------------------------------------- layout


def test_unet_key_list_is_diffusers_sd15(unets):
    assert sd15_diffusers_unet_keys() == set(unets["garment"].state_dict())


def test_adapter_index_order_is_diffusers_attn_processors_order(unets):
    names = list(unets["base"].attn_processors)
    assert len(names) == 32
    for index, site in ADAPTER_INDEX_TO_SITE.items():
        assert names[index] == f"{site.diffusers_attn1}.processor"
    assert ADAPTER_INDEX_TO_SITE[30].name == "middle_0" and ADAPTER_INDEX_TO_SITE[12].name == "output_3"


# ---------------------------------------------------------------- detection and splitting


def test_matches_only_imagdressing(published, unets):
    assert im.matches(published)
    assert im.matches(f"module.{k}" for k in published)
    assert not im.matches(unets["garment"].state_dict())  # MagicClothing / OMS / a base UNet
    assert not im.matches(["image_proj.latents", "ip_adapter.1.to_k_ip.weight"])
    assert not im.matches(["reference_proj.to_k.middle_0.weight"])
    assert not im.matches(k for k in published if not k.startswith("adapter_modules."))


def test_split_consumes_every_key(published, unets):
    parts = split({"module": published})
    assert parts.model_channels == 32 and parts.context_dim == CONTEXT
    assert parts.resampler_config == im.ResamplerConfig(**RESAMPLER)
    garment = unets["garment"].state_dict()
    assert set(parts.garment_unet) == set(garment)
    assert all(torch.equal(parts.garment_unet[k], garment[k]) for k in garment)
    assert set(parts.reference_kv) == {site.name for site in SD15_SITES}
    for index, site in ADAPTER_INDEX_TO_SITE.items():
        weight_k, weight_v = parts.reference_kv[site.name]
        assert weight_k is published[f"adapter_modules.{index}.to_k_ref.weight"]
        assert weight_v is published[f"adapter_modules.{index}.to_v_ref.weight"]
    assert set(parts.ignored_keys) == {k for k in published if k.startswith("unet.")}
    used = len(parts.garment_unet) + len(parts.resampler) + 2 * len(parts.reference_kv) + len(parts.ignored_keys)
    assert used == len(published)


def test_published_pickle_round_trip_fp16(published, tmp_path):
    path = tmp_path / "IMAGDressing-v1_512.pt"
    torch.save({"module": OrderedDict((k, v.half()) for k, v in published.items())}, path)
    parts = im.split_state_dict(read_tensors(str(path)), source=str(path), dim_head=DIM_HEAD)
    assert parts.garment_unet["conv_in.weight"].dtype == torch.float16
    projections = im.reference_projections(parts)
    assert projections.to_k["middle_0"].weight.dtype == torch.float16
    assert torch.equal(projections.to_v["input_1"].weight, published["adapter_modules.0.to_v_ref.weight"].half())


def test_safetensors_conversion_round_trip(published, tmp_path):
    parts = split(published)
    pickled, path = tmp_path / "IMAGDressing-v1_tiny.pt", tmp_path / "imagdressing.safetensors"
    torch.save({"module": published}, pickled)
    convert_to_safetensors(str(pickled), str(path))
    loaded = read_tensors(str(path))
    assert not any(k.startswith("unet.") for k in loaded)
    again = split(loaded)
    assert again.ignored_keys == ()
    assert all(torch.equal(again.garment_unet[k], v) for k, v in parts.garment_unet.items())
    assert all(torch.equal(again.reference_kv[s][1], v[1]) for s, v in parts.reference_kv.items())


def test_published_sizes_at_full_width():
    """The SD1.5 file on the meta device: shapes infer to the published config, and the tensors add up
    to HF's listed 3.55 GB in fp16 (ref_unet + unet + proj + adapter; the unet's processor keys alias
    the adapter)."""
    config = {"sample_size": 64, "cross_attention_dim": 768, "attention_head_dim": 8, "block_out_channels": (320, 640, 1280, 1280),
                  "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                  "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3}
    with torch.device("meta"):
        unet = UNet2DConditionModel(**config)
        resampler = im.Resampler()
    unet_state = unet.state_dict()
    modules = dict(unet.named_modules())
    state = {f"ref_unet.{k}": v for k, v in unet_state.items()}
    state.update({f"proj.{k}": v for k, v in resampler.state_dict().items()})
    for index, site in ADAPTER_INDEX_TO_SITE.items():
        width = modules[site.diffusers_attn1].to_k.weight.shape[0]
        for name in ("to_k_ref", "to_v_ref"):
            state[f"adapter_modules.{index}.{name}.weight"] = torch.empty(width, width, device="meta")
    parts = im.split_state_dict(state)
    assert (parts.model_channels, parts.context_dim) == (320, 768)
    assert parts.resampler_config == im.ResamplerConfig()
    fp16_bytes = 2 * (2 * sum(v.numel() for v in unet_state.values())
                      + sum(v.numel() for v in parts.resampler.values())
                      + sum(k.numel() + v.numel() for k, v in parts.reference_kv.values()))
    assert round(fp16_bytes / 1e9, 2) == 3.55


# ---------------------------------------------------------------- errors


def _without(state, key):
    return {k: v for k, v in state.items() if k != key}


@pytest.mark.parametrize("key", [
    "ref_unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_k.weight",
    "adapter_modules.30.to_v_ref.weight",
    "proj.layers.1.0.to_kv.weight",
])
def test_truncated_file_names_the_missing_key(published, key):
    with pytest.raises(im.ImagDressingFileError, match=r"IMAGDressing-v1_tiny\.pt") as error:
        split(_without(published, key))
    assert key in str(error.value)


@pytest.mark.parametrize("key, hint", [
    ("adapter_modules.1.to_k_ref.weight", "attn2 processor"),
    ("adapter_modules.0.to_k_ref.bias", "without bias"),
    ("adapter_modules.0.to_q_lora.down.weight", "LoRA"),
    ("other.weight", "outside the IMAGDressing-v1 groups"),
    ("ref_unet.extra.weight", "unexpected garment-UNet"),
])
def test_unexpected_key_is_named(published, key, hint):
    with pytest.raises(im.ImagDressingFileError, match=hint) as error:
        split({**published, key: torch.zeros(1)})
    assert key in str(error.value)


def test_wrong_shape_is_named(published):
    bad = {**published, "adapter_modules.4.to_k_ref.weight": torch.zeros(32, 32)}
    with pytest.raises(im.ImagDressingFileError, match=r"adapter_modules\.4\.to_k_ref\.weight.*input_4.*\(64, 64\)"):
        split(bad)


def test_resampler_width_must_feed_the_garment_unet(published):
    state = {k: v for k, v in published.items() if not k.startswith("proj.")}
    state.update({f"proj.{k}": v for k, v in published_resampler_state(**{**RESAMPLER, "output_dim": 32}).items()})
    with pytest.raises(im.ImagDressingFileError, match=r"outputs 32-wide tokens.*takes 64"):
        split(state)


def test_other_family_is_refused_with_what_it_looks_like(unets):
    with pytest.raises(im.ImagDressingFileError, match=r"not an IMAGDressing-v1 file.*bare diffusers UNet") as error:
        split(unets["garment"].state_dict())
    assert isinstance(error.value, WeightFileError) and isinstance(error.value, AtelierError)


def test_missing_file(tmp_path):
    with pytest.raises(WeightFileError, match="does not exist"):
        read_tensors(str(tmp_path / "nope.pt"))


# ---------------------------------------------------------------- the math


def _layer_norm(x, weight, bias):
    return F.layer_norm(x, (x.shape[-1],), weight, bias)


def _heads(x, heads):
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def reference_resampler(state, x, heads, depth):
    """IP-Adapter-Plus Resampler from its formulas: latents attend (one softmax, scale 1/√d_head) over
    [LN1(proj_in x); LN2(latents)]; residual attention and LN→Linear→GELU→Linear blocks; LN(proj_out)."""
    latents = state["latents"].expand(x.shape[0], -1, -1)
    x = F.linear(x, state["proj_in.weight"], state["proj_in.bias"])
    for i in range(depth):
        p = f"layers.{i}."
        feats = _layer_norm(x, state[p + "0.norm1.weight"], state[p + "0.norm1.bias"])
        lat = _layer_norm(latents, state[p + "0.norm2.weight"], state[p + "0.norm2.bias"])
        q = _heads(F.linear(lat, state[p + "0.to_q.weight"]), heads)
        k, v = (_heads(t, heads) for t in F.linear(torch.cat([feats, lat], 1), state[p + "0.to_kv.weight"]).chunk(2, -1))
        attn = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1) @ v
        latents = latents + F.linear(attn.transpose(1, 2).flatten(2), state[p + "0.to_out.weight"])
        hidden = _layer_norm(latents, state[p + "1.0.weight"], state[p + "1.0.bias"])
        latents = latents + F.linear(F.gelu(F.linear(hidden, state[p + "1.1.weight"])), state[p + "1.3.weight"])
    return _layer_norm(F.linear(latents, state["proj_out.weight"], state["proj_out.bias"]),
                       state["norm_out.weight"], state["norm_out.bias"])


def test_resampler_equals_the_published_math(published):
    parts = split(published)
    resampler = im.build_resampler(parts)
    x = torch.randn(2, 17, EMBED, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = resampler(x)
    expected = reference_resampler(parts.resampler, x, RESAMPLER["heads"], RESAMPLER["depth"])
    assert ours.shape == (2, RESAMPLER["num_queries"], CONTEXT)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def _sdpa(q, k, v, heads):
    out = F.scaled_dot_product_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads))
    return out.transpose(1, 2).flatten(2)


class CacheInput:
    """The published garment-pass processor: keep the processor input norm1(x), then plain attention."""

    def __init__(self, store, name):
        self.store, self.name = store, name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        self.store[self.name] = hidden_states
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        out = _sdpa(attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context), attn.heads)
        return attn.to_out[1](attn.to_out[0](out))


class RefSelfAttention:
    """RefSAttnProcessor2_0 from its formulas: Softmax(QKᵀ/√d)V + scale·Softmax(Q(F W_kᵀ)ᵀ/√d)(F W_vᵀ),
    the layer's heads, then to_out."""

    def __init__(self, bank, weights, scale):
        self.bank, self.weights, self.scale = bank, weights, scale

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        q = attn.to_q(hidden_states)
        out = _sdpa(q, attn.to_k(hidden_states), attn.to_v(hidden_states), attn.heads)
        if self.bank is not None:
            ref = self.bank
            out = out + self.scale * _sdpa(q, ref @ self.weights[0].T, ref @ self.weights[1].T, attn.heads)
        return attn.to_out[1](attn.to_out[0](out))


def test_garment_read_equals_the_published_read(published, unets):
    """Garment pass (t = 0, Resampler context) + CFG step: Atelier's host with the split parts equals
    the published processors written from their formulas; the uncond row reads no garment."""
    parts = split(published)
    scale = 0.7
    g = torch.Generator().manual_seed(5)
    z_g, x = torch.randn(2, 1, 4, 8, 8, generator=g)
    context = torch.randn(1, 4, CONTEXT, generator=g)
    text, negative = torch.randn(2, 1, 7, CONTEXT, generator=g)
    t = torch.tensor([421.0])
    garment = tiny_unet(seed=7, context_dim=CONTEXT).eval()
    garment.load_state_dict(parts.garment_unet)
    base = unets["base"]

    with torch.no_grad():
        store = {}
        original = garment.attn_processors
        garment.set_attn_processor({name: CacheInput(store, name) for name in original})
        garment(z_g, torch.zeros(1), encoder_hidden_states=context)
        garment.set_attn_processor(original)
        original = base.attn_processors

        def read(bank_on):
            procs = dict(original)
            for index, site in ADAPTER_INDEX_TO_SITE.items():
                name = f"{site.diffusers_attn1}.processor"
                weights = (published[f"adapter_modules.{index}.to_k_ref.weight"],
                           published[f"adapter_modules.{index}.to_v_ref.weight"])
                procs[name] = RefSelfAttention(store[name] if bank_on else None, weights, scale)
            base.set_attn_processor(procs)
            try:
                return base(x, t, encoder_hidden_states=text if bank_on else negative).sample
            finally:
                base.set_attn_processor(dict(original))  # set_attn_processor empties the dict it gets

        expected_cond, expected_uncond = read(True), read(False)

        config = im.reference_config(scale)
        assert config.mode == ReadMode.CROSS and config.uncond == UncondPolicy.NONE
        with DiffusersReferenceHost(garment, config) as host:
            bank = host.capture(z_g, torch.zeros(1), context)
        assert torch.equal(bank.get(SITES_BY_NAME["middle_0"]),
                           store["mid_block.attentions.0.transformer_blocks.0.attn1.processor"])
        with DiffusersReferenceHost(base, config, im.reference_projections(parts)) as host:
            run = host.new_run(bank)
            both = host.forward(run, torch.cat([x, x]), t.expand(2), torch.cat([text, negative]), cond_or_uncond=(0, 1)).sample

    assert (expected_cond - expected_uncond).abs().max() > 1e-2
    torch.testing.assert_close(both[:1], expected_cond, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(both[1:], expected_uncond, atol=2e-5, rtol=1e-5)


# ---------------------------------------------------------------- opt-in: the public code itself


@pytest.mark.skipif(not os.environ.get("IMAGDRESSING_PATH"), reason="set IMAGDRESSING_PATH to a muzishen/IMAGDressing work tree")
def test_equals_the_public_implementation(tmp_path):
    from imagdressing_public import compare, public_path

    root = public_path()
    assert root is not None, "IMAGDRESSING_PATH has no adapter/ folder"
    diffs = compare(root, str(tmp_path))
    assert diffs["garment_effect"] > 1e-2
    assert diffs["resampler"] < 1e-5
    assert diffs["noise_pred_cond"] < 1e-4 and diffs["noise_pred_uncond"] < 1e-4
    assert diffs["pipeline_image"] < 1e-4 * max(1.0, diffs["pipeline_image_scale"])
