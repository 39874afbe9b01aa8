"""StableGarment text2img in a real ComfyUI (tiny SD1.5-shaped checkpoint, CPU): a garment encoder in the
published layout (``garment_encoder/`` = config.json + the pruned 662-tensor diffusion_pytorch_model.safetensors)
loaded by Atelier Load Garment Network and applied by Atelier Apply StableGarment, then sampled.

Checked: strength 0 is the plain model bit for bit; the garment changes the output; the garment pass runs
once per step at that step's timestep on the clean garment latent; the guided noise prediction of each
Euler step equals Atelier's diffusers host for the same weights; and, when STABLE_GARMENT_PATH points at
logn-2024/StableGarment, equals the public garment encoder + read processors, step by step and over the
whole trajectory. Needs COMFYUI_PATH.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
import torch
from comfy_fixtures import (
    diffusers_unet_from_comfy,
    empty_latent,
    encode_prompt,
    requires_comfyui,
    sample,
)
from garment_network_files import perturbed_state

pytestmark = [requires_comfyui]

SIZE = 64
STEPS = 3
CFG = 4.0  # infer_t2i.py / app.py
# Under a folder of its own: the workflow assets register another garment_encoder/ in a sibling folder
# (the same relative name in two registered folders resolves to the first one).
FILE = "stable_garment_test/garment_encoder/diffusion_pytorch_model.safetensors"
PUBLIC_FILE = "public_stable_garment/garment_encoder/diffusion_pytorch_model.safetensors"
TOLERANCE = 2e-4  # relative to the prediction's scale; fp32 differences are ~1e-6
CONFIG = {"_class_name": "GarmentEncoderModel", "_diffusers_version": "0.25.0", "block_out_channels": [32, 64, 128, 128],
          "cross_attention_dim": 64, "attention_head_dim": 8, "disable_last": True}


def write_published_folder(folder, state: dict[str, torch.Tensor]) -> None:
    """``garment_encoder/`` as published: the pruned state dict and a config naming GarmentEncoderModel."""
    from atelier.models.garment_networks.stable_garment import PRUNED_KEYS
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({key: value.contiguous() for key, value in state.items() if key not in PRUNED_KEYS},
              str(folder / "diffusion_pytorch_model.safetensors"))
    (folder / "config.json").write_text(json.dumps(CONFIG))


@pytest.fixture(scope="module")
def world(tiny_sd15, comfy_server_nodes, comfy_node_registry, tmp_path_factory):
    from atelier.nodes.anydressing_nodes import NODES as DRESSING_NODES
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.nodes.garment_network_nodes import NODES as NETWORK_NODES
    from atelier.nodes.stable_garment_nodes import NODES

    model, clip, vae = tiny_sd15
    root = tmp_path_factory.mktemp("stable_garment")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(root))
    denoiser = diffusers_unet_from_comfy(model)
    encoder = perturbed_state(denoiser, seed=3, std=0.05)  # a garment encoder that is not the denoiser
    write_published_folder(root / "stable_garment_test" / "garment_encoder", encoder)
    g = torch.Generator().manual_seed(6)
    nodes = {node.define_schema().node_id: node for node in (*NODES, *NETWORK_NODES, *DRESSING_NODES)}
    return SimpleNamespace(
        model=model, clip=clip, vae=vae, root=root, denoiser=denoiser, encoder=encoder, nodes=nodes,
        positive=encode_prompt(clip, "a photo of a woman, full body"), negative=encode_prompt(clip, "artifact"),
        empty=encode_prompt(clip, ""), garment=torch.rand(1, 96, 72, 3, generator=g),
    )


def load(world, name=FILE):
    return world.nodes["AtelierGarmentNetworkLoader"].execute(network=name, save_safetensors=False).args


def apply(world, name=FILE, **overrides):
    garment_model, network = load(world, name)
    inputs = {"model": world.model, "garment_model": garment_model, "garment_network": network, "vae": world.vae,
              "garment": world.garment, "garment_conditioning": world.empty, "strength": 1.0, "start_percent": 0.0,
              "end_percent": 1.0}
    inputs.update(overrides)
    return world.nodes["AtelierApplyStableGarment"].execute(**inputs).args[0]


def traced(world, model, steps=STEPS, seed=11):
    """Sample like KSampler (Euler, normal) and keep each step's input x, σ and the cond/uncond x̂₀."""
    records = []

    def keep(args):
        records.append(SimpleNamespace(x=args["input"].clone(), sigma=args["sigma"].clone(),
                                       cond=args["cond_denoised"].clone(), uncond=args["uncond_denoised"].clone()))
        return args["denoised"]

    traced_model = model.clone()
    traced_model.set_model_sampler_post_cfg_function(keep)
    out = sample(traced_model, world.positive, world.negative, empty_latent(1, SIZE, SIZE), steps=steps, cfg=CFG, seed=seed)
    return out, records


def eps_of(record) -> tuple[torch.Tensor, torch.Tensor]:
    """(ε_uncond, ε_cond) of one step: x̂₀ = x − σ·ε for SD1.5's ε-prediction."""
    sigma = record.sigma.reshape(-1, 1, 1, 1)
    return (record.x - record.uncond) / sigma, (record.x - record.cond) / sigma


def unet_inputs(world, record) -> SimpleNamespace:
    """What a diffusers pipeline hands its UNets at this step: x / √(σ² + 1) and t(σ)."""
    model_sampling = world.model.get_model_object("model_sampling")
    sigma = record.sigma.reshape(-1)[:1]
    return SimpleNamespace(x_in=record.x / (sigma**2 + 1) ** 0.5, t=model_sampling.timestep(sigma).float())


def garment_latent(world) -> torch.Tensor:
    """(1, 4, h, w) the clean garment latent as the public pipeline would encode it for a SIZE × SIZE output."""
    from atelier.models.garment_networks.stable_garment_fit import public_garment_pixels

    pixels = public_garment_pixels(world.garment, SIZE, SIZE)
    return world.model.model.process_latent_in(world.vae.encode(pixels).float())


def test_loader_reads_the_published_folder(world):
    from atelier.models.garment_networks.stable_garment import PRUNED_KEYS
    from atelier.nodes.garment_network_nodes import GarmentNetworkLoaderNode

    assert FILE in GarmentNetworkLoaderNode.define_schema().inputs[0].options
    garment_model, network = load(world)
    assert network.network.family == "stable_garment" and network.network.every_step
    assert network.reader.mode.value == "cross" and network.reader.projections is None and len(network.reader.sites) == 10
    loaded = diffusers_unet_from_comfy(garment_model).state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in world.encoder.items() if key not in PRUNED_KEYS)
    assert all(not loaded[key].any() for key in PRUNED_KEYS)


def test_strength_zero_is_the_plain_model(world):
    plain, _ = traced(world, world.model)
    off, _ = traced(world, apply(world, strength=0.0))
    assert torch.equal(off, plain)


def test_the_garment_changes_the_output_only_inside_the_mask(world):
    plain, _ = traced(world, world.model)
    dressed, _ = traced(world, apply(world))
    assert (dressed - plain).abs().max() > 1e-2 * plain.abs().max()
    nowhere, _ = traced(world, apply(world, mask=torch.zeros(SIZE, SIZE)))
    assert torch.equal(nowhere, plain), "a zero mask leaves every pixel of the model as it was"
    late, _ = traced(world, apply(world, start_percent=0.6))
    assert not torch.equal(late, dressed) and not torch.equal(late, plain)


def test_the_garment_pass_runs_every_step_at_that_steps_timestep_on_the_clean_latent(world):
    garment_model, _ = load(world)
    calls = []

    def record(module, args, kwargs):
        calls.append((args[0].clone(), args[1].clone(), kwargs["context"].clone()))

    hook = garment_model.model.diffusion_model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        _, records = traced(world, apply(world, garment_model=garment_model))
        _, windowed = traced(world, apply(world, garment_model=garment_model, end_percent=0.4))
    finally:
        hook.remove()
    model_sampling = world.model.get_model_object("model_sampling")
    window_end = float(model_sampling.percent_to_sigma(0.4))
    inside = sum(float(step.sigma.reshape(-1)[0]) >= window_end for step in windowed)
    assert 0 < inside < STEPS and len(records) == len(windowed) == STEPS
    assert len(calls) == STEPS + inside, "one garment pass per step, and none after end_percent"
    expected_latent = garment_latent(world)
    for (latent, timestep, context), step in zip(calls[:STEPS], records):
        assert torch.equal(latent, expected_latent), "the clean garment latent, not noised, not scaled by c_in"
        assert torch.equal(timestep, model_sampling.timestep(step.sigma.reshape(-1)[:1]).float())
        assert torch.equal(context, world.empty[0][0])
    assert len({float(timestep) for _, timestep, _ in calls[:STEPS]}) == STEPS


def atelier_reference(world, records):
    """Each step's (ε_uncond, ε_cond) through Atelier's diffusers host: the garment encoder of the file
    banks the 10 sites at t on the clean latent; the denoiser reads them (CROSS, W' = W, λ = 1, + b_o)."""
    from atelier.models.garment_networks.families import read_garment_network
    from stable_garment_public import atelier_step

    network = read_garment_network(str(world.root / FILE))
    garment_unet = diffusers_unet_from_comfy(world.model)
    garment_unet.load_state_dict(network.garment_unet)
    latent = garment_latent(world)
    out = []
    for record in records:
        step = unet_inputs(world, record)
        both = atelier_step(garment_unet, world.denoiser, latent, world.empty[0][0], step.x_in, step.t,
                            world.negative[0][0], world.positive[0][0])
        out.append(both.chunk(2))
    return out


def test_each_step_equals_atelier_diffusers_host(world):
    _, records = traced(world, apply(world))
    for record, (uncond, cond) in zip(records, atelier_reference(world, records)):
        sigma = record.sigma.reshape(-1, 1, 1, 1)
        for ours, eps in ((record.cond, cond), (record.uncond, uncond)):
            theirs = record.x - sigma * eps  # x̂₀ (ε at a small σ would amplify fp32 rounding by 1/σ)
            assert (ours - theirs).abs().max() <= TOLERANCE * theirs.abs().max()


def test_errors_name_the_input_to_fix(world, tmp_path):
    from atelier.models.errors import AtelierError
    from safetensors.torch import save_file

    with pytest.raises(AtelierError, match="'garment' holds 2 images"):
        apply(world, garment=torch.cat([world.garment] * 2))
    with pytest.raises(AtelierError, match="'garment' is 20×96 px"):
        apply(world, garment=world.garment[:, :, :20])
    with pytest.raises(AtelierError, match="'garment_conditioning'"):
        apply(world, garment_conditioning=[[torch.zeros(1, 77, 32), {}]])
    whole = world.root / "whole_unet_tiny.safetensors"  # a whole UNet without a config.json: MagicClothing
    save_file({key: value.contiguous() for key, value in world.encoder.items()}, str(whole))
    with pytest.raises(AtelierError, match="'garment_network' is MagicClothing"):
        apply(world, name=whole.name)
    garment_model, network = load(world)
    with pytest.raises(AtelierError, match="Atelier Apply StableGarment"):
        world.nodes["AtelierEncodeReferenceGarments"].execute(
            garment_model=garment_model, vae=world.vae, garment_network=network, garments=world.garment,
            garment_conditioning=world.empty)


# --- opt-in: the public code -----------------------------------------------------------------------

requires_public = pytest.mark.skipif(not os.environ.get("STABLE_GARMENT_PATH"),
                                     reason="STABLE_GARMENT_PATH is not set: no public StableGarment checkout")


@requires_public
def test_comfy_equals_the_public_garment_encoder_and_read(world):
    """Their GarmentEncoderModel (random init, saved with save_pretrained: the published folder) writes and
    their hacked BasicTransformerBlock reads, on the SAME denoiser weights as ComfyUI's. Compared with
    ComfyUI through the nodes: the first CFG step's noise predictions (ε = (x − x̂₀)/σ at σ_max), every
    step's x̂₀, and a 3-step Euler trajectory from the same noise."""
    import comfy.samplers
    import stable_garment_public as public

    encoder_module, attention = public.import_public(public.checkout())
    torch.manual_seed(8)
    encoder = encoder_module.GarmentEncoderModel(sample_size=8, block_out_channels=(32, 64, 128, 128),
                                                 cross_attention_dim=64, attention_head_dim=8).eval()
    folder = world.root / "public_stable_garment" / "garment_encoder"
    encoder.save_pretrained(str(folder), safe_serialization=True)
    assert json.loads((folder / "config.json").read_text())["_class_name"] == "GarmentEncoderModel"

    out, records = traced(world, apply(world, name=PUBLIC_FILE))
    latent = garment_latent(world)
    text, negative, empty = world.positive[0][0], world.negative[0][0], world.empty[0][0]

    def public_eps(x, sigma):
        step = unet_inputs(world, SimpleNamespace(x=x, sigma=sigma))
        return public.public_step(attention, encoder, world.denoiser, latent, empty, step.x_in, step.t, negative, text).chunk(2)

    first = records[0]
    uncond, cond = public_eps(first.x, first.sigma)
    eps_uncond, eps_cond = eps_of(first)
    guided = uncond + CFG * (cond - uncond)
    first_step = {name: (ours - theirs).abs().max().item() for name, ours, theirs in
                  (("cond", eps_cond, cond), ("uncond", eps_uncond, uncond),
                   ("guided", eps_uncond + CFG * (eps_cond - eps_uncond), guided))}
    first_scale = cond.abs().max().item()
    assert max(first_step.values()) <= 1e-5 * max(1.0, first_scale)
    _, plain_cond = eps_of(traced(world, world.model)[1][0])
    assert (plain_cond - cond).abs().max() > 1e3 * first_step["cond"], "the garment is what the public code reads"

    denoised_worst = 0.0
    for record in records:
        uncond, cond = public_eps(record.x, record.sigma)
        sigma = record.sigma.reshape(-1, 1, 1, 1)
        for ours, theirs in ((record.cond, record.x - sigma * cond), (record.uncond, record.x - sigma * uncond)):
            denoised_worst = max(denoised_worst, ((ours - theirs).abs().max() / theirs.abs().max()).item())
    assert denoised_worst <= TOLERANCE

    sigmas = comfy.samplers.calculate_sigmas(world.model.get_model_object("model_sampling"), "normal", STEPS)
    x = records[0].x
    for index in range(STEPS):
        uncond, cond = public_eps(x, sigmas[index])
        x = x + (uncond + CFG * (cond - uncond)) * (sigmas[index + 1] - sigmas[index])  # Euler: d = (x − x̂₀)/σ = ε
    final = world.model.model.process_latent_in(out)
    trajectory = ((final - x).abs().max() / x.abs().max()).item()
    print(f"\nStableGarment, public code vs ComfyUI (fp32, CPU): first CFG step at σ = {float(first.sigma):.4g}, max |Δε| "
          + ", ".join(f"{name} {value:.3g}" for name, value in first_step.items())
          + f" (|ε| ≤ {first_scale:.3g}); every step's x̂₀: max relative |Δ| {denoised_worst:.3g}; "
          f"{STEPS}-step Euler latent: max relative |Δ| {trajectory:.3g}")
    assert trajectory <= TOLERANCE
