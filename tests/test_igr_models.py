"""IGR core (models/igr/): eq. 4 as the foundation's K/V append on a real diffusers attention, the
5-channel conv, the standard IP-Adapter layout and files, the IP read's row routing, the garment
crop, the config and the "igr" weight file."""

import copy

import pytest
import torch
import torch.nn.functional as F
from atelier.models.errors import ReferenceInputError, WeightFileError
from atelier.models.igr.config import (
    CATEGORY_PROMPTS,
    IGR_CATEGORIES,
    IGRConfig,
    IGRConfigError,
    category_prompt,
)
from atelier.models.igr.garment_crop import GarmentMaskError, clip_pixels, garment_crop
from atelier.models.igr.garmnet import GarmNet, five_channel_conv_in, mask_to_latent
from atelier.models.igr.igr_run import IGRRun
from atelier.models.igr.ip_adapter import (
    IPAdapter,
    IPAdapterFileError,
    load_standard_ip_adapter,
    read_ip_adapter_file,
    standard_index,
)
from atelier.models.igr.ip_layout import diffusers_attn2
from atelier.models.igr.spec import IGR
from atelier.models.reference_attention import multihead_attention
from atelier.models.reference_bank import ReferenceBank
from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
from atelier.models.reference_run import ReferenceRun
from atelier.models.sites import SD15_SITES, SITES_BY_NAME
from atelier.models.weight_format import BaseModel
from atelier.models.weights import export_untrained, load_weight_file, recognise_system
from atelier.train.tiny import TINY_CONTEXT_DIM, TINY_MODEL_CHANNELS, tiny_unet
from safetensors.torch import save_file

TINY_BASE = BaseModel(model_channels=TINY_MODEL_CHANNELS, context_dim=TINY_CONTEXT_DIM)
SMALL = IGRConfig(garmnet_rank=4, garmnet_alpha=8.0, image_embed_dim=16)
ALL_SITES = tuple(site.name for site in SD15_SITES)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet().eval().requires_grad_(False)


def _randomise(module: torch.nn.Module, seed: int, scale: float = 0.1) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(scale * torch.randn(param.shape, generator=g))
    return module


# --- eq. 4 = K/V append ------------------------------------------------------------------------


@pytest.mark.parametrize(("site_name", "garm_tokens", "den_tokens"), [("input_4", 9, 16), ("middle_0", 6, 4)])
def test_kv_append_equals_self_attention_over_the_concatenation_keeping_the_latter_half(unet, site_name, garm_tokens, den_tokens):
    site = SITES_BY_NAME[site_name]
    attn = copy.deepcopy(dict(unet.named_modules())[site.diffusers_attn1]).double()
    width = site.channels(TINY_MODEL_CHANNELS)
    g = torch.Generator().manual_seed(11)
    f_garmnet = torch.randn(2, garm_tokens, width, generator=g, dtype=torch.float64)  # (B, Tg, C)
    f_denoiser = torch.randn(2, den_tokens, width, generator=g, dtype=torch.float64)  # (B, Td, C)

    with torch.no_grad():
        f_con = torch.cat([f_garmnet, f_denoiser], dim=1)  # (B, Tg + Td, C): Concat(F_hl, F_g)
        paper = attn(f_con)[:, garm_tokens:]  # Attn(Q, K, V all from F_con), the latter half

        bank = ReferenceBank()
        bank.store(site, f_garmnet)
        run = ReferenceRun(ReferenceConfig(mode=ReadMode.CONCAT))
        run.set_bank(bank)
        run.begin_call(2, (0,), (8, 8), active=True)
        k_ref, v_ref = run.reference_kv(site, lambda states: (attn.to_k(states), attn.to_v(states)))
        q, k, v = attn.to_q(f_denoiser), attn.to_k(f_denoiser), attn.to_v(f_denoiser)
        read = run.read(site, q, k, v, k_ref, v_ref, attn.heads, lambda *qkv: multihead_attention(*qkv, attn.heads))
        ours = attn.to_out[1](attn.to_out[0](read))
        alone = attn(f_denoiser)

    assert ours.shape == (2, den_tokens, width)
    torch.testing.assert_close(ours, paper, rtol=1e-10, atol=1e-10)
    assert (ours - alone).abs().max() > 1e-3  # the garment tokens really take part
    # each person reads its own GarmNet row: swapping the bank rows changes both outputs
    with torch.no_grad():
        swapped = attn(torch.cat([f_garmnet.flip(0), f_denoiser], dim=1))[:, garm_tokens:]
    assert (swapped - paper).abs().amax(dim=(1, 2)).min() > 1e-4


# --- GarmNet -----------------------------------------------------------------------------------


def test_five_channel_conv_is_conv_in_plus_mask_features_and_fresh_equals_conv_in(unet):
    conv_in = unet.conv_in
    g = torch.Generator().manual_seed(12)
    z = torch.randn(2, 4, 16, 16, generator=g)
    m = (torch.rand(2, 1, 16, 16, generator=g) > 0.5).float()
    fresh = GarmNet.for_sd15(SMALL, TINY_MODEL_CHANNELS)
    with torch.no_grad():
        assert torch.equal(fresh.mask_features(m), torch.zeros(2, TINY_MODEL_CHANNELS, 16, 16))
        torch.testing.assert_close(five_channel_conv_in(conv_in, fresh)(torch.cat([z, m], 1)), conv_in(z), rtol=1e-6, atol=1e-6)
        trained = _randomise(GarmNet.for_sd15(SMALL, TINY_MODEL_CHANNELS), 13)
        conv5 = five_channel_conv_in(conv_in, trained)
        assert conv5.weight.shape == (TINY_MODEL_CHANNELS, 5, 3, 3)
        expected = conv_in(z) + trained.mask_features(m)
        torch.testing.assert_close(conv5(torch.cat([z, m], 1)), expected, rtol=1e-5, atol=1e-5)
        assert (expected - conv_in(z)).abs().max() > 1e-3


def test_garmnet_shapes_zero_deltas_and_mask_to_latent():
    garmnet = GarmNet.for_sd15(SMALL, TINY_MODEL_CHANNELS)
    assert garmnet.site_names == ALL_SITES
    assert garmnet.lora.down["middle_0"].shape == (1, 3, 4, 128)
    assert garmnet.lora.scale == 2.0
    assert all(torch.equal(d, torch.zeros(2, 5, 32)) for d in garmnet.deltas("input_1", torch.randn(2, 5, 32)))
    mask = torch.zeros(2, 64, 48)
    mask[1, :32] = 1.0  # top half of person 1
    latent = mask_to_latent(mask, (8, 6))
    assert latent.shape == (2, 1, 8, 6)
    assert torch.equal(latent[0], torch.zeros(1, 8, 6))
    assert torch.equal(latent[1, 0, :4], torch.ones(4, 6)) and torch.equal(latent[1, 0, 4:], torch.zeros(4, 6))
    assert mask_to_latent(torch.full((30, 30), 0.5), (4, 4)).shape == (1, 1, 4, 4)


# --- IP-Adapter layout and files ---------------------------------------------------------------


def test_standard_index_follows_diffusers_attn_processors_order(unet):
    processors = list(unet.attn_processors)
    for site in SD15_SITES:
        assert standard_index(site.name) == processors.index(f"{diffusers_attn2(site)}.processor")
    with pytest.raises(ReferenceInputError, match="input_3"):
        standard_index("input_3")


def test_ip_adapter_state_dict_is_exactly_the_standard_layout():
    adapter = IPAdapter.for_sd15(SMALL, TINY_BASE)
    expected = {f"image_proj.{layer}.{part}" for layer in ("proj", "norm") for part in ("weight", "bias")}
    expected |= {f"ip_adapter.{i}.to_{kv}_ip.weight" for i in range(1, 32, 2) for kv in ("k", "v")}
    state = adapter.state_dict()
    assert set(state) == expected
    assert state["image_proj.proj.weight"].shape == (4 * TINY_CONTEXT_DIM, 16)
    assert state["image_proj.norm.weight"].shape == (TINY_CONTEXT_DIM,)
    assert state["ip_adapter.31.to_k_ip.weight"].shape == (128, TINY_CONTEXT_DIM)  # middle
    assert state["ip_adapter.1.to_v_ip.weight"].shape == (32, TINY_CONTEXT_DIM)  # input_1
    tokens = adapter.tokens(torch.randn(3, 16))
    assert tokens.shape == (3, 4, TINY_CONTEXT_DIM)
    k, v = adapter.kv("output_4", tokens)
    assert k.shape == v.shape == (3, 4, 128)
    assert torch.equal(k, tokens @ state[f"ip_adapter.{standard_index('output_4')}.to_k_ip.weight"].T)


def _nested(state: dict) -> dict:
    return {
        group: {key[len(group) + 1:]: value for key, value in state.items() if key.startswith(group + ".")}
        for group in ("image_proj", "ip_adapter")
    }


def test_nested_bin_and_flat_safetensors_both_load(tmp_path):
    source = _randomise(IPAdapter.for_sd15(SMALL, TINY_BASE), 14)
    state = {key: value.clone() for key, value in source.state_dict().items()}
    torch.save(_nested(state), tmp_path / "ip-adapter_sd15.bin")
    save_file(state, str(tmp_path / "ip-adapter_sd15.safetensors"))
    for name in ("ip-adapter_sd15.bin", "ip-adapter_sd15.safetensors"):
        flat = read_ip_adapter_file(tmp_path / name)
        assert set(flat) == set(state)
        target = IPAdapter.for_sd15(SMALL, TINY_BASE)
        load_standard_ip_adapter(target, flat, name)
        for key, value in target.state_dict().items():
            assert torch.equal(value, state[key]), key
    # an adapter on a subset of sites takes its sites from a full file
    subset = IPAdapter.for_sd15(IGRConfig(sites=("middle_0",), image_embed_dim=16), TINY_BASE)
    load_standard_ip_adapter(subset, read_ip_adapter_file(tmp_path / "ip-adapter_sd15.bin"), "full file")
    assert torch.equal(subset.ip_adapter["31"].to_v_ip.weight, state["ip_adapter.31.to_v_ip.weight"])


def test_wrong_width_foreign_and_missing_files_name_the_file_and_key(tmp_path):
    wide = IPAdapter.for_sd15(IGRConfig(image_embed_dim=32), TINY_BASE)
    path = tmp_path / "wide.safetensors"
    save_file({k: v.contiguous() for k, v in wide.state_dict().items()}, str(path))
    with pytest.raises(IPAdapterFileError, match=r"wide\.safetensors: image_proj\.proj\.weight is \(256, 32\), expected \(256, 16\)"):
        load_standard_ip_adapter(IPAdapter.for_sd15(SMALL, TINY_BASE), read_ip_adapter_file(path), str(path))
    plus = {k: v for k, v in wide.state_dict().items() if not k.startswith("image_proj.")}
    plus["image_proj.latents"] = torch.zeros(1, 16, 64)
    with pytest.raises(IPAdapterFileError, match="IP-Adapter Plus"):
        load_standard_ip_adapter(IPAdapter.for_sd15(SMALL, TINY_BASE), plus, "plus.bin")
    with pytest.raises(IPAdapterFileError, match=r"nothing\.bin does not exist"):
        read_ip_adapter_file(tmp_path / "nothing.bin")
    torch.save({"state_dict": {"conv.weight": torch.zeros(2)}}, tmp_path / "other.bin")
    with pytest.raises(IPAdapterFileError, match=r"other\.bin: no 'ip_adapter\.\*' keys"):
        read_ip_adapter_file(tmp_path / "other.bin")


# --- IGRRun.ip_read ----------------------------------------------------------------------------


def test_ip_read_adds_each_persons_term_on_the_reading_rows_only():
    adapter = _randomise(IPAdapter.for_sd15(IGRConfig(sites=("input_4",), image_embed_dim=16), TINY_BASE), 15, 0.3)
    site = SITES_BY_NAME["input_4"]
    g = torch.Generator().manual_seed(16)
    tokens = torch.randn(2, 4, TINY_CONTEXT_DIM, generator=g)  # persons 0 and 1
    q = torch.randn(4, 16, 64, generator=g)  # [uncond p0, uncond p1, cond p0, cond p1]
    text_out = torch.randn(4, 16, 64, generator=g)
    run = IGRRun(ReferenceConfig(uncond=UncondPolicy.NONE), adapter, tokens, ip_strength=0.6)
    run.begin_call(4, (1, 0), (16, 16), active=True)
    out = run.ip_read(site, q, text_out, heads=8)
    assert torch.equal(out[:2], text_out[:2])
    with torch.no_grad():
        for row, person in ((2, 0), (3, 1)):
            k, v = adapter.kv("input_4", tokens[person:person + 1])
            expected = text_out[row] + 0.6 * multihead_attention(q[row:row + 1], k, v, 8)[0]
            torch.testing.assert_close(out[row], expected, rtol=1e-5, atol=1e-5)
    assert run.ip_strength_at(SITES_BY_NAME["input_1"]) == 0.0  # not an adapter site
    run.begin_call(4, (1, 0), (16, 16), active=False)
    assert torch.equal(run.ip_read(site, q, text_out, heads=8), text_out)


def test_ip_run_input_errors():
    bank = ReferenceBank()
    bank.store(SITES_BY_NAME["input_1"], torch.zeros(3, 4, 32))
    run = IGRRun(ReferenceConfig(), IPAdapter.for_sd15(SMALL, TINY_BASE), torch.zeros(2, 4, TINY_CONTEXT_DIM))
    with pytest.raises(ReferenceInputError, match="bank has 3 person"):
        run.set_bank(bank)
    with pytest.raises(ReferenceInputError, match=">= 0"):
        IGRRun(ReferenceConfig(), ip_strength=-1.0)


# --- garment crop ------------------------------------------------------------------------------


def _person(height: int = 20, width: int = 30) -> torch.Tensor:
    g = torch.Generator().manual_seed(17)
    return 0.1 + 0.9 * torch.rand(1, height, width, 3, generator=g)


def test_garment_crop_is_the_masked_bbox_padded_square_and_resized():
    image = _person()
    mask = torch.zeros(1, 20, 30)
    mask[0, 4:10, 5:17] = 1.0  # 6 × 12 box
    mask[0, 6, 8] = 0.0  # a hole: p·m is zero there
    crop = garment_crop(image, mask, size=12, margin=0.0)
    expected = torch.zeros(12, 12, 3)
    expected[3:9] = image[0, 4:10, 5:17] * mask[0, 4:10, 5:17, None]
    torch.testing.assert_close(crop[0], expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(crop[0, 5, 3], torch.zeros(3))
    small = garment_crop(image, mask, size=6, margin=0.0)
    resized = F.interpolate(expected.permute(2, 0, 1)[None], size=(6, 6), mode="bilinear", antialias=True)
    torch.testing.assert_close(small[0], resized[0].permute(1, 2, 0), rtol=1e-6, atol=1e-6)
    grown = garment_crop(image, mask, size=18, margin=0.25)  # +3 px each side: rows 1..13, cols 2..20
    grown_expected = torch.zeros(18, 18, 3)
    grown_expected[3:15] = image[0, 1:13, 2:20] * mask[0, 1:13, 2:20, None]
    torch.testing.assert_close(grown[0], grown_expected, rtol=1e-6, atol=1e-6)


def test_garment_crop_batches_and_errors_name_the_mask():
    image = _person().expand(2, -1, -1, -1)
    mask = torch.zeros(2, 20, 30)
    mask[0, 2:8, 2:8] = 1.0
    with pytest.raises(GarmentMaskError, match="garment mask row 1 is empty"):
        garment_crop(image, mask, size=8)
    mask[1, 10:20, 0:5] = 1.0
    crops = garment_crop(image, mask, size=8)
    assert crops.shape == (2, 8, 8, 3) and (crops[0] - crops[1]).abs().max() > 1e-3
    half = garment_crop(image, mask[:, ::2, ::2].contiguous(), size=8)  # same aspect: the mask is resized
    assert half.shape == (2, 8, 8, 3)
    with pytest.raises(GarmentMaskError, match=r"mask is 30×10 but the person image is 30×20"):
        garment_crop(image, torch.ones(2, 10, 30), size=8)
    with pytest.raises(GarmentMaskError, match="batch is 2 but the garment mask batch is 3"):
        garment_crop(image, torch.ones(3, 20, 30), size=8)


def test_clip_pixels_normalise_channels_first():
    crops = torch.rand(2, 4, 4, 3)
    pixels = clip_pixels(crops, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
    assert pixels.shape == (2, 3, 4, 4)
    torch.testing.assert_close(pixels[:, 1], (crops[..., 1] - 0.25) / 0.25)
    torch.testing.assert_close(pixels[:, 2], crops[..., 2] / 2.0)


# --- config, prompts, weight file --------------------------------------------------------------


def test_categories_and_prompts():
    assert set(CATEGORY_PROMPTS) == set(IGR_CATEGORIES) == {"upper", "lower", "dress"}
    assert len(set(CATEGORY_PROMPTS.values())) == 3
    assert category_prompt("lower") == CATEGORY_PROMPTS["lower"]
    with pytest.raises(IGRConfigError, match="'skirt'.*'upper', 'lower', 'dress'"):
        category_prompt("skirt")


@pytest.mark.parametrize(
    ("data", "message"),
    [({"garmnet_rank": 0}, "garmnet_rank must be >= 1"), ({"garmnet_rank": "8"}, "'garmnet_rank' must be a number"),
     ({"high_level": "yes"}, "'high_level' must be true or false"), ({"sites": "middle_0"}, "'sites' must be a list"),
     ({"sites": ["input_3"]}, "input_3"), ({"ip_token": 4}, r"unknown field\(s\) \['ip_token'\]"),
     ({"high_level": False, "low_level": False}, "high_level or low_level")],
)
def test_config_errors_name_the_field(data, message):
    with pytest.raises(IGRConfigError, match=message):
        IGRConfig.from_dict(data)


def test_config_round_trips_through_a_dict():
    config = IGRConfig(sites=("input_1", "middle_0"), garmnet_rank=2, garmnet_alpha=3.0, ip_tokens=2,
                       image_embed_dim=8, high_level=False)
    assert IGRConfig.from_dict(config.to_dict()) == config
    assert config.scale == 1.5


def test_untrained_file_round_trips_and_is_recognised_without_metadata(tmp_path):
    path = str(tmp_path / "igr.safetensors")
    config = SMALL.to_dict()
    export_untrained(path, IGR, TINY_BASE, config)
    loaded = load_weight_file(path, expected_system="igr", expected_base=TINY_BASE)
    assert loaded.system == "igr" and loaded.base == TINY_BASE and IGRConfig.from_dict(loaded.config) == SMALL
    garmnet, adapter = loaded.modules["garmnet"], loaded.modules["ip_adapter"]
    assert torch.equal(garmnet.mask_in.weight, torch.zeros(TINY_MODEL_CHANNELS, 1, 3, 3))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        rebuilt = IGR.build(config, TINY_BASE)
    for name, module in (("garmnet", garmnet), ("ip_adapter", adapter)):
        for key, value in rebuilt[name].state_dict().items():
            assert torch.equal(module.state_dict()[key], value), key
    default = IGR.build(IGRConfig().to_dict(), TINY_BASE)  # a bare file takes the default config
    tensors = {IGR.prefixes[c] + k: v.contiguous() for c, m in default.items() for k, v in m.state_dict().items()}
    assert "igr_ip.ip_adapter.31.to_k_ip.weight" in tensors and "igr_garmnet.lora.up.input_1" in tensors
    bare = str(tmp_path / "bare.safetensors")
    save_file(tensors, bare)
    assert recognise_system({}, set(tensors)) is IGR
    reloaded = load_weight_file(bare, expected_base=TINY_BASE)
    assert reloaded.system == "igr" and reloaded.config == IGRConfig().to_dict()
    key = "ip_adapter.15.to_v_ip.weight"
    assert torch.equal(reloaded.modules["ip_adapter"].state_dict()[key], tensors["igr_ip." + key])
    with pytest.raises(WeightFileError, match="'igr' weight file; this node needs a 'anydressing' file"):
        load_weight_file(path, expected_system="anydressing")
