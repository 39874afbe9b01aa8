"""Public garment networks in a real ComfyUI (tiny SD1.5-shaped checkpoint, CPU): IMAGDressing-v1 and
MagicClothing files in their published layouts, loaded by Atelier Load Garment Network, encoded and
read through Apply Dressing, and sampled. One Euler step from pure noise gives the guided noise
prediction back (x_0 = x − σ·ε), which is compared with the same step computed outside ComfyUI:
with Atelier's diffusers host, and, when IMAGDRESSING_PATH / MAGIC_CLOTHING_PATH point at the public
repositories, with the public code itself. Needs COMFYUI_PATH."""

from __future__ import annotations

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
    tiny_clip_vision,
)
from garment_network_files import imagdressing_state, perturbed_state

pytestmark = [requires_comfyui]

SIZE = 64
IMAGDRESSING_FILE = "IMAGDressing-v1_tiny.pt"
MAGIC_FILE = "magic_clothing_tiny.safetensors"
TOLERANCE = 2e-4
RESAMPLER = {"dim": 64, "depth": 1, "dim_head": 64, "heads": 1, "num_queries": 4, "embedding_dim": 32,
             "output_dim": 64, "ff_mult": 4}


@pytest.fixture(scope="module")
def world(tiny_sd15, comfy_server_nodes, comfy_node_registry, tmp_path_factory):
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.nodes.garment_network_nodes import NODES
    from safetensors.torch import save_file

    model, clip, vae = tiny_sd15
    folder = tmp_path_factory.mktemp("garment_networks")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    denoiser = diffusers_unet_from_comfy(model)
    imag_unet = perturbed_state(denoiser, seed=1)
    torch.save({"module": imagdressing_state(imag_unet, denoiser, RESAMPLER)}, folder / IMAGDRESSING_FILE)
    magic_unet = perturbed_state(denoiser, seed=2)
    save_file(magic_unet, str(folder / MAGIC_FILE))
    g = torch.Generator().manual_seed(5)
    nodes = {node.define_schema().node_id: node for node in NODES}
    from atelier.nodes.anydressing_nodes import NODES as DRESSING_NODES

    nodes.update({node.define_schema().node_id: node for node in DRESSING_NODES})
    return SimpleNamespace(
        model=model, clip=clip, vae=vae, folder=folder, denoiser=denoiser, imag_unet=imag_unet, magic_unet=magic_unet,
        clip_vision=tiny_clip_vision(tmp_path_factory.mktemp("clip_vision")),
        positive=encode_prompt(clip, "a person"), negative=encode_prompt(clip, ""), empty=encode_prompt(clip, ""),
        garment=torch.rand(1, SIZE, SIZE, 3, generator=g), second=torch.rand(1, SIZE, SIZE, 3, generator=g), nodes=nodes,
    )


def load(world, name, save_safetensors=False):
    return world.nodes["AtelierGarmentNetworkLoader"].execute(network=name, save_safetensors=save_safetensors).args


def encode(world, name, images, **extra):
    garment_model, network = load(world, name)
    return world.nodes["AtelierEncodeReferenceGarments"].execute(
        garment_model=garment_model, vae=world.vae, garment_network=network, garments=images, **extra).args[0]


def dress(world, garments, **overrides):
    inputs = dict(model=world.model, garments=garments, strength=1.0, garment_strengths="", start_percent=0.0,
                  end_percent=1.0, uncond="no_garment", garment_guidance=2.5)
    inputs.update(overrides)
    return world.nodes["AtelierApplyDressing"].execute(**inputs).args[0]


def one_step(world, model, cfg=3.0, seed=7):
    """The guided noise prediction ε and its inputs, from one Euler step of the sampler from pure noise
    x = noise·√(1 + σ²) (the sampler returns x_0 = x − σ·ε in VAE latent units: ``process_latent_in`` first)."""
    import comfy.sample
    import comfy.samplers

    latent = empty_latent(1, SIZE, SIZE)
    noise = comfy.sample.prepare_noise(latent["samples"], seed)
    model_sampling = model.get_model_object("model_sampling")
    sigma = float(comfy.samplers.calculate_sigmas(model_sampling, "normal", 1)[0])
    out = model.model.process_latent_in(sample(model, world.positive, world.negative, latent, steps=1, cfg=cfg, seed=seed))
    x = noise * (1 + sigma**2) ** 0.5  # EPS.noise_scaling at the schedule's first sigma (max_denoise)
    return SimpleNamespace(eps=(x - out) / sigma, x_in=x / (sigma**2 + 1) ** 0.5,
                           t=model_sampling.timestep(torch.tensor([sigma])).float(), cfg=cfg)


def contexts(world):
    return world.positive[0][0], world.negative[0][0]


def garment_inputs(world, images):
    """The garment latent as the UNet sees it and the CLIP vision states, as the nodes compute them."""
    model = world.model.model
    latent = model.process_latent_in(world.vae.encode(images[..., :3]).float())  # (N, 4, h, w)
    states = world.clip_vision.encode_image(images, crop=True).penultimate_hidden_states.float()  # (N, 257, E)
    return latent, states


def test_loader_lists_reads_and_converts_published_files(world):
    from atelier.nodes.garment_network_nodes import GarmentNetworkLoaderNode

    options = GarmentNetworkLoaderNode.define_schema().inputs[0].options
    assert IMAGDRESSING_FILE in options and MAGIC_FILE in options
    garment_model, network = load(world, IMAGDRESSING_FILE, save_safetensors=True)
    loaded = diffusers_unet_from_comfy(garment_model).state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in world.imag_unet.items())
    assert network.reader.mode.value == "cross" and network.resampler is not None
    converted = IMAGDRESSING_FILE.replace(".pt", ".safetensors")
    assert (world.folder / converted).is_file()
    _, again = load(world, converted)
    for site in again.network.projections.site_names:
        assert torch.equal(again.network.projections.to_k[site].weight, network.network.projections.to_k[site].weight)
    magic_model, magic = load(world, MAGIC_FILE)
    assert magic.reader.mode.value == "concat" and magic.reader.no_garment.value == "zero"
    loaded = diffusers_unet_from_comfy(magic_model).state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in world.magic_unet.items())


def imagdressing_reference(world, step, scale):
    """The same step with Atelier's diffusers host: garment bank at t = 0 with the Resampler tokens as
    context, CROSS read with to_k_ref/to_v_ref, unconditional branch without the garment."""
    from atelier.models.diffusers_host import DiffusersReferenceHost
    from atelier.models.garment_networks import imagdressing as im
    from atelier.models.garment_networks.families import read_garment_network

    network = read_garment_network(str(world.folder / IMAGDRESSING_FILE))
    garment_unet = diffusers_unet_from_comfy(world.model)
    garment_unet.load_state_dict(network.garment_unet)
    latent, states = garment_inputs(world, world.garment)
    config = im.reference_config(scale)
    text, negative = contexts(world)
    with torch.no_grad():
        with DiffusersReferenceHost(garment_unet, config) as host:
            bank = host.capture(latent, torch.zeros(1), network.resampler(states))
        with DiffusersReferenceHost(world.denoiser, config, network.projections) as host:
            both = host.forward(host.new_run(bank), torch.cat([step.x_in] * 2), step.t.expand(2),
                                torch.cat([text, negative]), cond_or_uncond=(0, 1)).sample
    cond, uncond = both[:1], both[1:]
    return uncond + step.cfg * (cond - uncond), (latent, states)


def test_imagdressing_in_comfy_equals_the_reference_step(world):
    garments = encode(world, IMAGDRESSING_FILE, world.garment, clip_vision=world.clip_vision)
    step = one_step(world, dress(world, garments, strength=0.8))
    expected, _ = imagdressing_reference(world, step, 0.8)
    plain = one_step(world, world.model)
    scale = expected.abs().max()
    assert (step.eps - expected).abs().max() <= TOLERANCE * scale
    assert (step.eps - plain.eps).abs().max() > 100 * TOLERANCE * scale, "the garment changes the prediction"


def imagdressing_public_step(world, step, scale):
    """The same step with the public code: their RefSAttnProcessor2_0 denoiser (the user's UNet),
    CacheAttnProcessor2_0 garment UNet and Resampler, loaded from the same published file."""
    import copy

    import imagdressing_public as public
    from torch import nn

    mods = public.import_public(os.environ["IMAGDRESSING_PATH"])
    unet = copy.deepcopy(world.denoiser)
    public.install_public_processors(mods, unet)
    ref_unet = copy.deepcopy(world.denoiser)
    ref_unet.set_attn_processor({name: mods["Cache"]() for name in ref_unet.attn_processors})
    container = public.SDModel(unet, ref_unet, mods["Resampler"](**RESAMPLER), nn.ModuleList(unet.attn_processors.values()))
    state = torch.load(world.folder / IMAGDRESSING_FILE, weights_only=True)["module"]
    missing, unexpected = container.load_state_dict(state, strict=False)
    assert not unexpected and all(key.startswith("unet.") for key in missing), "only the frozen denoiser copy is absent"
    for processor in unet.attn_processors.values():
        if isinstance(processor, mods["RefS"]):
            processor.scale = scale
    model = public.PublicModel(unet, ref_unet, container.proj.eval(), container.adapter_modules, world.denoiser)
    latent, states = garment_inputs(world, world.garment)
    text, negative = contexts(world)
    with torch.no_grad():
        cond, uncond = public._public_cond_uncond(model, latent, states, step.x_in, step.t, text, negative)
    return uncond + step.cfg * (cond - uncond)


@pytest.mark.skipif(not os.environ.get("IMAGDRESSING_PATH"), reason="IMAGDRESSING_PATH is not set: no public IMAGDressing checkout")
def test_imagdressing_in_comfy_equals_the_public_code(world):
    garments = encode(world, IMAGDRESSING_FILE, world.garment, clip_vision=world.clip_vision)
    step = one_step(world, dress(world, garments, strength=0.8))
    expected = imagdressing_public_step(world, step, 0.8)
    assert (step.eps - expected).abs().max() <= TOLERANCE * expected.abs().max()


def magic_reference(world, step, guidance, cloth_guidance=None):
    """MagicClothing's step with Atelier's diffusers host: garment bank at t = 0 with the empty prompt,
    CONCAT read; the unconditional branch reads zero tokens; with ``cloth_guidance`` the public
    three-way blend ε_u + g(ε_text − ε_cloth) + g_c(ε_cloth − ε_u)."""
    from atelier.models.diffusers_host import DiffusersReferenceHost
    from atelier.models.garment_networks.magic_clothing import MagicClothingRead
    from atelier.models.garment_networks.magic_clothing import cloth_guidance as blend
    from atelier.models.reference_run import ReferenceRun

    garment_unet = diffusers_unet_from_comfy(world.model)
    garment_unet.load_state_dict(world.magic_unet)
    latent, _ = garment_inputs(world, world.garment)
    config = MagicClothingRead().reference_config()
    text, negative = contexts(world)
    empty = world.empty[0][0]
    with torch.no_grad():
        with DiffusersReferenceHost(garment_unet, config) as host:
            bank = host.capture(latent, torch.zeros(1), empty)
        with DiffusersReferenceHost(world.denoiser, config) as host:
            run = ReferenceRun(config)
            run.set_bank(bank)
            both = host.forward(run, torch.cat([step.x_in] * 2), step.t.expand(2), torch.cat([text, negative]),
                                cond_or_uncond=(0, 1)).sample
            cloth = host.forward(run, step.x_in, step.t, negative, cond_or_uncond=(0,)).sample
    text_eps, uncond = both[:1], both[1:]
    if cloth_guidance is None:
        return uncond + guidance * (text_eps - uncond), latent
    return blend(uncond, cloth, text_eps, guidance, cloth_guidance), latent


@pytest.mark.parametrize("uncond", ["no_garment", "garment_guidance"])
def test_magic_clothing_in_comfy_equals_the_reference_step(world, uncond):
    garments = encode(world, MAGIC_FILE, world.garment, garment_conditioning=world.empty)
    step = one_step(world, dress(world, garments, uncond=uncond, garment_guidance=2.5), cfg=5.0)
    expected, _ = magic_reference(world, step, 5.0, 2.5 if uncond == "garment_guidance" else None)
    assert (step.eps - expected).abs().max() <= TOLERANCE * expected.abs().max()


def magic_public_step(world, step):
    """The same step with the public code: ClothAdapter's garment pass and OmsDiffusionPipeline's
    three-way batch through their REFAttnProcessor2_0, g = 5, g_c = 2.5."""
    from pathlib import Path

    import magic_clothing_public as public

    processors = public.import_processors(Path(os.environ["MAGIC_CLOTHING_PATH"]))
    latent, _ = garment_inputs(world, world.garment)
    text, negative = contexts(world)
    garment_unet = public.public_garment_unet(processors, world.denoiser, world.magic_unet)
    denoiser = public.public_denoiser(processors, world.denoiser)
    return public.public_step(garment_unet, denoiser, latent, world.empty[0][0], step.x_in, step.t, negative, text,
                              5.0, 2.5)["guided"]


@pytest.mark.skipif(not os.environ.get("MAGIC_CLOTHING_PATH"), reason="MAGIC_CLOTHING_PATH is not set: no public MagicClothing checkout")
def test_magic_clothing_cloth_guidance_in_comfy_equals_the_public_code(world):
    garments = encode(world, MAGIC_FILE, world.garment, garment_conditioning=world.empty)
    step = one_step(world, dress(world, garments, uncond="garment_guidance", garment_guidance=2.5), cfg=5.0)
    expected = magic_public_step(world, step)
    assert (step.eps - expected).abs().max() <= TOLERANCE * expected.abs().max()


def test_two_garments_with_strengths_and_masks(world):
    both = encode(world, MAGIC_FILE, torch.cat([world.garment, world.second]), garment_conditioning=world.empty)
    assert both.bank.count == 2 and both.reader.mode.value == "concat"
    chained = encode(world, MAGIC_FILE, world.second, garment_conditioning=world.empty,
                     previous=encode(world, MAGIC_FILE, world.garment, garment_conditioning=world.empty))
    for name in both.bank.bank.site_names:
        torch.testing.assert_close(chained.bank.bank._states[name], both.bank.bank._states[name], atol=1e-4, rtol=1e-4)
    plain = one_step(world, world.model).eps
    masked_off = one_step(world, dress(world, both, garment_masks=torch.zeros(2, 16, 16)), cfg=3.0).eps
    assert (masked_off - plain).abs().max() <= 1e-5 * plain.abs().max(), "zero target masks leave the model as it was"
    first_only = one_step(world, dress(world, both, garment_strengths="1, 0")).eps
    alone = one_step(world, dress(world, encode(world, MAGIC_FILE, world.garment, garment_conditioning=world.empty))).eps
    assert (first_only - alone).abs().max() <= TOLERANCE * alone.abs().max(), "strength 0 removes the second garment"
    assert (one_step(world, dress(world, both)).eps - alone).abs().max() > 100 * TOLERANCE * alone.abs().max()


def test_strength_zero_is_the_plain_model(world):
    garments = encode(world, IMAGDRESSING_FILE, world.garment, clip_vision=world.clip_vision)
    plain = one_step(world, world.model).eps
    assert torch.equal(one_step(world, dress(world, garments, strength=0.0)).eps, plain)


def test_reference_attention_reads_through_a_separate_reference_model(world):
    from atelier.nodes.reference_node import ReferenceAttentionNode

    garment_model, _ = load(world, MAGIC_FILE)
    inputs = dict(model=world.model, vae=world.vae, reference=world.garment, strength=1.0, mode="concat", start_percent=0.0,
                  end_percent=1.0, sites="all", uncond="same", refresh="once", reference_size="as_is")
    same = one_step(world, ReferenceAttentionNode.execute(**inputs).args[0]).eps
    other = one_step(world, ReferenceAttentionNode.execute(
        **inputs, reference_model=garment_model, reference_conditioning=world.empty).args[0]).eps
    assert (same - other).abs().max() > 100 * TOLERANCE * same.abs().max()


def test_errors_name_the_input_to_fix(world):
    from atelier.models.errors import AtelierError

    with pytest.raises(AtelierError, match="'clip_vision'"):
        encode(world, IMAGDRESSING_FILE, world.garment)
    with pytest.raises(AtelierError, match="'garment_conditioning'"):
        encode(world, MAGIC_FILE, world.garment)
    with pytest.raises(AtelierError, match="'previous' garments were encoded with"):
        encode(world, MAGIC_FILE, world.garment, garment_conditioning=world.empty,
               previous=encode(world, IMAGDRESSING_FILE, world.garment, clip_vision=world.clip_vision))
    truncated = dict(world.magic_unet)
    truncated.pop("conv_out.weight")
    from safetensors.torch import save_file

    save_file(truncated, str(world.folder / "truncated_tiny.safetensors"))
    with pytest.raises(AtelierError, match="truncated_tiny.safetensors"):
        load(world, "truncated_tiny.safetensors")
