"""AnimateAnyone's stage-1 networks in a real ComfyUI (tiny SD1.5-shaped UNets, tiny CLIP vision, CPU).

Files in the published layout (pickled ``reference_unet.pth`` without the output layers, complete
``denoising_unet.pth``, ``pose_guider.pth``) are loaded by Atelier Load AnimateAnyone; the source is
encoded and applied through the nodes; one Euler step of the real sampler from noise at the
middle of a 2-step schedule gives the guided v-prediction back (x_0 = α·x_t − σ_t·v). It is compared
with the same step computed with diffusers UNets of the same weights and Atelier's math (concat
read, unconditional half without the bank, pose features after conv_in on both halves), and, when
ANIMATE_ANYONE_PATH points at a Moore-AnimateAnyone work tree, with the public code itself. TruePose's
HPFA/CAA on top (random TruePose weights at the tiny width): off, the step is bit-identical to the
published path; on, it changes and reads the source parsing when one is given. Needs COMFYUI_PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from animate_anyone_files import published_pose_guider_state, published_reference_state
from comfy_fixtures import (
    _diffusers_unet_kwargs,
    diffusers_unet_from_comfy,
    empty_latent,
    requires_comfyui,
    sample,
    tiny_clip_vision,
)
from garment_network_files import perturbed_state

pytestmark = [requires_comfyui]

SIZE = 64
CFG = 3.5
TOLERANCE = 2e-4  # relative to max |v|
DENOISING, REFERENCE, GUIDER = "aa_denoising_unet.pth", "aa_reference_unet.pth", "aa_pose_guider.pth"
GUIDER_WIDTHS = (16, 32, 96, 256)
# COCO-18 keypoints of a standing person on the 64×64 canvas.
POSE = [(32, 10), (32, 18), (25, 19), (20, 29), (17, 38), (39, 19), (44, 29), (47, 38), (28, 38), (27, 50), (27, 61),
        (36, 38), (37, 50), (37, 61), (30, 8), (34, 8), (28, 9), (36, 9)]
TRUEPOSE, TRUEPOSE_NO_CAA, TRUEPOSE_WIDE = "aa_truepose.safetensors", "aa_truepose_no_caa.safetensors", "aa_truepose_wide.safetensors"
# LIP class -> (y0, y1, x0, x1) on the 64×64 source, around POSE, drawn in order.
SOURCE_PARSING = (
    ("left_leg", (44, 62, 24, 31)), ("right_leg", (44, 62, 33, 40)), ("pants", (36, 50, 22, 42)),
    ("left_arm", (18, 40, 14, 21)), ("right_arm", (18, 40, 43, 50)), ("upper_clothes", (16, 38, 21, 43)),
    ("hair", (2, 7, 27, 37)), ("face", (6, 15, 28, 36)), ("left_shoe", (60, 64, 22, 31)), ("right_shoe", (60, 64, 33, 42)),
)


def pose_keypoint(points=POSE):
    """A one-frame POSE_KEYPOINT of ``points`` on the 64×64 canvas."""
    flat = [value for x, y in points for value in (float(x), float(y), 1.0)]
    return [{"canvas_width": SIZE, "canvas_height": SIZE, "people": [{"pose_keypoints_2d": flat}]}]


def lip_parsing_image(classes: tuple[str, ...] | None = None) -> torch.Tensor:
    """(1, 64, 64, 3) LIP palette IMAGE of SOURCE_PARSING (only ``classes`` of it when given)."""
    from atelier.models.labels import LIP_LABELS, LIP_PALETTE

    image = torch.zeros(SIZE, SIZE, 3)
    for name, (y0, y1, x0, x1) in SOURCE_PARSING:
        if classes is not None and name not in classes:
            continue
        image[y0:y1, x0:x1] = torch.tensor(LIP_PALETTE[LIP_LABELS.index(name)]) / 255.0
    return image.unsqueeze(0)


def save_truepose_file(path, model_channels: int, context_dim: int, clip_embed_dim: int, seed: int = 0, **config) -> None:
    """A TruePose weight file of random projections (CAA's W^{V^clip} made non-zero: a fresh one adds nothing)."""
    from atelier.models.truepose.config import TruePoseConfig
    from atelier.models.truepose.spec import TRUEPOSE as TRUEPOSE_SPEC
    from atelier.models.weight_format import BaseModel
    from atelier.models.weights import save_weight_file

    base = BaseModel(model_channels=model_channels, context_dim=context_dim)
    settings = TruePoseConfig(clip_embed_dim=clip_embed_dim, pose_encoder_widths=(8, 8, 16), **config).to_dict()
    torch.manual_seed(seed)
    modules = TRUEPOSE_SPEC.build(settings, base)
    with torch.no_grad():
        for layer in modules["caa"].to_v.values():
            layer.weight.normal_(0.0, 0.5)
    save_weight_file(str(path), TRUEPOSE_SPEC, base, settings, modules)


@pytest.fixture(scope="module")
def world(tiny_sd15, comfy_server_nodes, comfy_node_registry, tmp_path_factory):
    from atelier.nodes.animate_anyone_nodes import NODES
    from atelier.nodes.folders import FOLDER_NAME

    model, _, vae = tiny_sd15
    folder = tmp_path_factory.mktemp("animate_anyone")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    base = diffusers_unet_from_comfy(model)
    denoising = perturbed_state(base, seed=11)
    reference = perturbed_state(base, seed=12)
    context_dim = int(model.model.model_config.unet_config["context_dim"])
    torch.save(denoising, folder / DENOISING)
    torch.save(published_reference_state(reference), folder / REFERENCE)
    width = int(model.model.model_config.unet_config["model_channels"])
    torch.save(published_pose_guider_state(width, GUIDER_WIDTHS, seed=3, std=0.1), folder / GUIDER)
    save_truepose_file(folder / TRUEPOSE, width, context_dim, clip_embed_dim=context_dim)
    save_truepose_file(folder / TRUEPOSE_NO_CAA, width, context_dim, clip_embed_dim=context_dim, caa_sites=())
    save_truepose_file(folder / TRUEPOSE_WIDE, 2 * width, context_dim, clip_embed_dim=context_dim)
    g = torch.Generator().manual_seed(5)
    return SimpleNamespace(
        model=model, vae=vae, folder=folder, base=base, denoising=denoising, reference=reference,
        clip_vision=tiny_clip_vision(tmp_path_factory.mktemp("clip_vision"), projection_dim=context_dim),
        source=torch.rand(1, SIZE, SIZE, 3, generator=g), nodes={node.define_schema().node_id: node for node in NODES},
    )


def load(world, save_safetensors=False, **names):
    files = {"denoising_unet": DENOISING, "reference_unet": REFERENCE, "pose_guider": GUIDER} | names
    return world.nodes["AtelierAnimateAnyoneLoader"].execute(save_safetensors=save_safetensors, **files).args


def encode(world, reference_model, clip_vision=None, **optional):
    clip_vision = clip_vision or world.clip_vision
    output = clip_vision.encode_image(world.source, crop=False)  # CLIP Vision Encode, crop "none"
    return world.nodes["AtelierEncodeAnimateAnyoneSource"].execute(
        reference_model=reference_model, vae=world.vae, clip_vision_output=output, source_image=world.source,
        **optional).args


def encode_parsed(world, reference_model, caa_clip_vision=None):
    """Encode AnimateAnyone Source with the source parsing and the CLIP vision for CAA's region crops."""
    return encode(world, reference_model, source_parsing=lip_parsing_image(), parsing_format="lip_palette",
                  caa_clip_vision=caa_clip_vision or world.clip_vision)


def load_truepose(world, name=TRUEPOSE):
    from atelier.nodes.truepose_nodes import TruePoseLoaderNode

    return TruePoseLoaderNode.execute(weights=name).args[0]


def apply(world, model, source, guider, **overrides):
    inputs = {"model": model, "source": source, "pose_guider": guider, "target_pose": pose_keypoint(), "person": 0,
              "reference_strength": 1.0, "pose_strength": 1.0, "start_percent": 0.0, "end_percent": 1.0}
    return world.nodes["AtelierApplyAnimateAnyone"].execute(**(inputs | overrides)).args[0]


def one_step(model, positive, negative, cfg=CFG, seed=7, batch=1, denoise=0.5):
    """The guided v-prediction from one Euler step of the sampler (``denoise`` 0.5: from the middle of the
    2-step schedule, where the step's x + d·dt does not cancel thousands; at zero-SNR's first σ ≈ 4519
    that cancellation alone costs 1.5e-4 of max |v| in fp32). From an empty latent, x = noise·σ, and the
    sampler returns x_0 = α·x_t − σ_t·v with x_t = x/√(1 + σ²), α = 1/√(1 + σ²), σ_t = σ/√(1 + σ²)."""
    import comfy.sample
    import comfy.samplers

    latent = empty_latent(batch, SIZE, SIZE)
    noise = comfy.sample.prepare_noise(latent["samples"], seed)
    model_sampling = model.get_model_object("model_sampling")
    sigma = float(comfy.samplers.calculate_sigmas(model_sampling, "normal", int(1 / denoise))[-2])  # KSampler's first sigma
    x0 = model.model.process_latent_in(sample(model, positive, negative, latent, steps=1, cfg=cfg, seed=seed, denoise=denoise))
    scale = (1 + sigma**2) ** 0.5
    x_t = noise * sigma / scale
    v = (x_t / scale - x0) / (sigma / scale)
    return SimpleNamespace(v=v, x_in=x_t, t=model_sampling.timestep(torch.tensor([sigma])).float(), sigma=sigma)


def atelier_inputs(world, guider):
    from atelier.models.pose_networks.drawing import PoseDrawings
    from atelier.nodes.truepose_inputs import target_poses

    latent = world.model.model.process_latent_in(world.vae.encode(world.source[..., :3]).float())  # (1, 4, 8, 8)
    context = world.clip_vision.encode_image(world.source, crop=False).image_embeds.float().unsqueeze(1)  # (1, 1, E)
    drawing = PoseDrawings(tuple(target_poses(pose_keypoint(), 0))).images(SIZE, SIZE)  # (1, 3, 64, 64)
    with torch.no_grad():
        pose = guider.module(drawing)  # (1, C, 8, 8)
    return latent, context, drawing, pose


def diffusers_step(world, guider, step, reference_strength_on=True, pose_on=True):
    """The step with diffusers UNets of the files' weights and Atelier's host-free math."""
    from atelier.models.diffusers_host import DiffusersReferenceHost
    from atelier.models.pose_networks.animate_anyone import complete_reference_unet
    from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
    from atelier.models.sites import SITE_GROUPS

    denoising_unet = diffusers_unet_from_comfy(world.model)
    denoising_unet.load_state_dict(world.denoising)
    reference_unet = diffusers_unet_from_comfy(world.model)
    reference_unet.load_state_dict(complete_reference_unet(published_reference_state(world.reference), REFERENCE))
    latent, context, _, pose = atelier_inputs(world, guider)
    config = ReferenceConfig(mode=ReadMode.CONCAT, site_weights={name: 1.0 for name in SITE_GROUPS["all"]},
                             uncond=UncondPolicy.NONE, strength=1.0 if reference_strength_on else 0.0)
    hook = denoising_unet.conv_in.register_forward_hook(lambda module, args, out: out + pose if pose_on else out)
    try:
        with torch.no_grad():
            with DiffusersReferenceHost(reference_unet, config) as host:
                bank = host.capture(latent, torch.zeros(1), context)
            with DiffusersReferenceHost(denoising_unet, config) as host:
                both = host.forward(host.new_run(bank), torch.cat([step.x_in] * 2), step.t.expand(2),
                                    torch.cat([context, torch.zeros_like(context)]), cond_or_uncond=(0, 1)).sample
    finally:
        hook.remove()
    cond, uncond = both[:1], both[1:]
    return uncond + CFG * (cond - uncond)


def test_loader_reads_the_published_files_into_managed_models(world):
    import comfy.model_sampling
    from atelier.nodes.animate_anyone_nodes import AnimateAnyoneLoaderNode

    options = AnimateAnyoneLoaderNode.define_schema().inputs[0].options
    assert {DENOISING, REFERENCE, GUIDER} <= set(options)
    model, reference_model, guider = load(world, save_safetensors=True)
    loaded = diffusers_unet_from_comfy(model).state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in world.denoising.items())
    loaded = diffusers_unet_from_comfy(reference_model).state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in published_reference_state(world.reference).items())
    assert not loaded["conv_out.weight"].any(), "the reference UNet's missing conv_out is filled with zeros"
    sampling = model.get_model_object("model_sampling")
    assert isinstance(sampling, comfy.model_sampling.V_PREDICTION) and float(sampling.sigma_max) > 1000  # zero SNR
    published = torch.load(world.folder / GUIDER, weights_only=True)
    assert all(torch.equal(guider.module.state_dict()[key], value) for key, value in published.items())
    for name in (DENOISING, REFERENCE, GUIDER):
        assert (world.folder / name.replace(".pth", ".safetensors")).is_file()
    names = {"denoising_unet": DENOISING, "reference_unet": REFERENCE, "pose_guider": GUIDER}
    again = load(world, **{key: value.replace(".pth", ".safetensors") for key, value in names.items()})
    assert torch.equal(diffusers_unet_from_comfy(again[1]).state_dict()["conv_in.weight"], world.reference["conv_in.weight"])


def test_one_sampler_step_equals_the_diffusers_step(world):
    model, reference_model, guider = load(world)
    source, positive, negative = encode(world, reference_model)
    step = one_step(apply(world, model, source, guider), positive, negative)
    expected = diffusers_step(world, guider, step)
    scale = expected.abs().max()
    error = float((step.v - expected).abs().max() / scale)
    print(f"ComfyUI vs diffusers + Atelier math: max |Δv| / max |v| = {error:.2e}")
    assert error <= TOLERANCE
    plain = one_step(model, positive, negative)
    assert (step.v - plain.v).abs().max() > 100 * TOLERANCE * scale, "the source and the pose change the prediction"


def test_strengths_at_zero_are_the_plain_model_and_each_part_counts(world):
    model, reference_model, guider = load(world)
    source, positive, negative = encode(world, reference_model)
    plain = one_step(model, positive, negative)
    off = one_step(apply(world, model, source, guider, reference_strength=0.0, pose_strength=0.0), positive, negative)
    assert torch.equal(off.v, plain.v)
    pose_only = one_step(apply(world, model, source, guider, reference_strength=0.0), positive, negative)
    torch.testing.assert_close(pose_only.v, diffusers_step(world, guider, pose_only, reference_strength_on=False),
                               atol=TOLERANCE * float(pose_only.v.abs().max()), rtol=0)
    reference_only = one_step(apply(world, model, source, guider, pose_strength=0.0), positive, negative)
    torch.testing.assert_close(reference_only.v, diffusers_step(world, guider, reference_only, pose_on=False),
                               atol=TOLERANCE * float(reference_only.v.abs().max()), rtol=0)


def test_pose_sequence_gives_one_frame_per_latent(world):
    model, reference_model, guider = load(world)
    source, positive, negative = encode(world, reference_model)
    from atelier.models.errors import ReferenceInputError

    frames = pose_keypoint() + pose_keypoint([(x + 8, y) for x, y in POSE])  # the person, then 8 px to the right
    step = one_step(apply(world, model, source, guider, target_pose=frames), positive, negative, batch=2)
    assert step.v.shape[0] == 2 and (step.v[0] - step.v[1]).abs().max() > 0
    with pytest.raises(ReferenceInputError, match="'target_pose' has 2 frames but the latent batch is 3"):
        one_step(apply(world, model, source, guider, target_pose=frames), positive, negative, batch=3)


def test_errors_name_the_input_to_fix(world):
    from atelier.models.errors import UnsupportedModelError, WeightFileError

    with pytest.raises(WeightFileError, match="'reference_unet' is aa_denoising_unet.pth.*pick AnimateAnyone's reference_unet"):
        load(world, reference_unet=DENOISING)
    with pytest.raises(WeightFileError, match="'pose_guider' is aa_reference_unet.pth"):
        load(world, pose_guider=REFERENCE)
    _, reference_model, _ = load(world)
    (world.folder / "narrow_clip").mkdir(exist_ok=True)
    narrow = tiny_clip_vision(world.folder / "narrow_clip", projection_dim=24)
    with pytest.raises(UnsupportedModelError, match="'clip_vision_output' gives 24-wide image embeddings"):
        encode(world, reference_model, clip_vision=narrow)


def sites_of(bank):
    from atelier.models.sites import SITES_BY_NAME

    return [SITES_BY_NAME[name] for name in bank.site_names]


@pytest.fixture(scope="module")
def truepose_steps(world):
    """The guided v of one step: published, and with TruePose's terms off or on, with or without the parsing."""
    model, reference_model, guider = load(world)
    source, positive, negative = encode(world, reference_model)
    parsed, parsed_positive, _ = encode_parsed(world, reference_model)
    truepose = load_truepose(world)

    def step(encoded, **overrides):
        return one_step(apply(world, model, encoded, guider, **overrides), positive, negative).v

    return SimpleNamespace(
        source=source, parsed=parsed, parsed_positive=parsed_positive, positive=positive,
        published=step(source), off=step(parsed, truepose=truepose),
        hpfa=step(parsed, truepose=truepose, hpfa_strength=1.0),
        hpfa_no_parsing=step(source, truepose=truepose, hpfa_strength=1.0),
        hpfa_caa=step(parsed, truepose=truepose, hpfa_strength=1.0, caa_strength=1.0),
    )


def test_truepose_off_is_the_published_path_bit_for_bit(truepose_steps):
    """Encoding a parsing and connecting TruePose weights at strength 0 changes nothing, bit for bit."""
    steps = truepose_steps
    assert torch.equal(steps.parsed_positive[0][0], steps.positive[0][0])
    assert all(torch.equal(steps.parsed.bank.get(site), steps.source.bank.get(site)) for site in sites_of(steps.source.bank))
    assert steps.parsed.labels is not None and steps.parsed.clip_embeds is not None
    assert torch.equal(steps.off, steps.published)


def test_hpfa_and_caa_on_top_change_the_step_and_read_the_parsing(truepose_steps):
    steps = truepose_steps
    floor = TOLERANCE * float(steps.published.abs().max())  # the equivalence tolerance: far above fp32 noise here

    def differ(a, b):
        return float((a - b).abs().max()) / floor

    ratios = {"hpfa vs published": differ(steps.hpfa, steps.published),
              "hpfa without parsing vs published": differ(steps.hpfa_no_parsing, steps.published),
              "hpfa with vs without parsing": differ(steps.hpfa, steps.hpfa_no_parsing),
              "hpfa+caa vs hpfa": differ(steps.hpfa_caa, steps.hpfa)}
    print("max |Δv| in units of the equivalence tolerance:", json.dumps(ratios))
    assert all(torch.isfinite(v).all() for v in (steps.hpfa, steps.hpfa_no_parsing, steps.hpfa_caa))
    assert all(ratio > 10 for ratio in ratios.values()), ratios


def test_truepose_on_top_serves_a_pose_sequence_from_one_source(world):
    """One source, two target poses: one selected mask M (and bank row) per pose, one frame per latent."""
    model, reference_model, guider = load(world)
    parsed, positive, negative = encode_parsed(world, reference_model)
    back_view = pose_keypoint()
    points = back_view[0]["people"][0]["pose_keypoints_2d"]
    for index in (0, 14, 15, 16, 17):  # nose, eyes and ears hidden: M drops face and hair
        points[3 * index + 2] = 0.0
    frames = pose_keypoint() + back_view
    patched = apply(world, model, parsed, guider, target_pose=frames, truepose=load_truepose(world), hpfa_strength=1.0)
    step = one_step(patched, positive, negative, batch=2)
    assert step.v.shape[0] == 2 and torch.isfinite(step.v).all()


def test_truepose_on_top_errors_name_the_input_to_fix(world):
    from atelier.models.errors import ReferenceInputError, UnsupportedModelError

    model, reference_model, guider = load(world)
    plain_source, _, _ = encode(world, reference_model)
    parsed, _, _ = encode_parsed(world, reference_model)
    with pytest.raises(ReferenceInputError, match="'truepose' is not connected"):
        apply(world, model, parsed, guider, hpfa_strength=1.0)
    with pytest.raises(UnsupportedModelError, match="'truepose' was made for an SD1.5 UNet with model_channels 64"):
        apply(world, model, parsed, guider, truepose=load_truepose(world, TRUEPOSE_WIDE), hpfa_strength=1.0)
    with pytest.raises(ReferenceInputError, match="without 'source_parsing' and 'caa_clip_vision'"):
        apply(world, model, plain_source, guider, truepose=load_truepose(world), caa_strength=1.0)
    with pytest.raises(ReferenceInputError, match="trained without CAA; set 'caa_strength' to 0"):
        apply(world, model, parsed, guider, truepose=load_truepose(world, TRUEPOSE_NO_CAA), caa_strength=1.0)
    (world.folder / "narrow_clip").mkdir(exist_ok=True)
    narrow = tiny_clip_vision(world.folder / "narrow_clip", projection_dim=24)
    narrow_parsed, _, _ = encode_parsed(world, reference_model, caa_clip_vision=narrow)
    with pytest.raises(UnsupportedModelError, match="'caa_clip_vision' gives 24-wide image embeddings"):
        apply(world, model, narrow_parsed, guider, truepose=load_truepose(world), caa_strength=1.0)
    with pytest.raises(ReferenceInputError, match="connect 'source_parsing' too"):
        encode(world, reference_model, caa_clip_vision=world.clip_vision)


@pytest.mark.skipif(not os.environ.get("ANIMATE_ANYONE_PATH"),
                    reason="ANIMATE_ANYONE_PATH is not set: no Moore-AnimateAnyone work tree")
def test_one_sampler_step_equals_the_public_pipeline(world, tmp_path):
    """The public stage-1 step (tests/animate_anyone_public.py, run on the public code in a subprocess,
    with the target skeleton drawn by the public draw_bodypose) against ComfyUI through the nodes; ANIMATE_ANYONE_PYTHONPATH may add the public code's pinned
    diffusers 0.24 (with a matching huggingface_hub / transformers)."""
    model, reference_model, guider = load(world)
    source, positive, negative = encode(world, reference_model)
    step = one_step(apply(world, model, source, guider), positive, negative)
    from atelier.nodes.truepose_inputs import target_poses

    latent, context, drawing, _ = atelier_inputs(world, guider)
    pose = target_poses(pose_keypoint(), 0)[0]
    inputs = {
        "unet_kwargs": _diffusers_unet_kwargs(world.model.model.model_config.unet_config), "guider_widths": GUIDER_WIDTHS,
        "denoising_unet": str(world.folder / DENOISING), "reference_unet": str(world.folder / REFERENCE),
        "pose_guider": str(world.folder / GUIDER), "ref_latent": latent, "context": context,
        "pose_points": pose.keypoints / [pose.canvas_width, pose.canvas_height], "pose_visible": pose.visible(),
        "height": SIZE, "width": SIZE,
        "x_in": step.x_in.float(), "t": round(float(step.t[0])), "guidance": CFG,
    }
    torch.save(inputs, tmp_path / "inputs.pt")
    env = dict(os.environ)
    extra = os.environ.get("ANIMATE_ANYONE_PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, os.environ["ANIMATE_ANYONE_PATH"]) if p)
    script = Path(__file__).with_name("animate_anyone_public.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
                          cwd=os.environ["ANIMATE_ANYONE_PATH"], env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = torch.load(tmp_path / "out.pt", weights_only=True)
    public_drawing = outputs.pop("drawing").permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
    print(f"drawing: {int((public_drawing != drawing).any(1).sum())} of {SIZE * SIZE} pixels differ from the public draw_bodypose")
    assert torch.equal(public_drawing, drawing), "the target skeleton is drawn as the public DWPose drawing"
    scale = float(outputs["fp32_bank"].abs().max())
    errors = {name: float((step.v - value).abs().max()) for name, value in outputs.items()}
    errors["diffusers_math_vs_public_fp32"] = float((diffusers_step(world, guider, step) - outputs["fp32_bank"]).abs().max())
    report = {name: {"max_abs": error, "relative": error / scale} for name, error in errors.items()}
    print("ComfyUI vs public AnimateAnyone step:", json.dumps(report))
    assert errors["fp32_bank"] <= TOLERANCE * scale
    assert errors["diffusers_math_vs_public_fp32"] <= TOLERANCE * scale
    assert errors["published_fp16_bank"] <= 1e-3 * scale  # the public update() casts the bank to fp16


def test_workflow_with_hpfa_and_caa_on_executes_in_comfyui(comfy_server_nodes, comfy_node_registry, tiny_sd15_checkpoint):
    """The shipped workflow with TruePose's terms switched on (Load TruePose, a source parsing from Load Image,
    the workflow's CLIP vision for CAA's region crops) runs through ComfyUI's executor, and its image differs
    from the same graph with them off."""
    import numpy as np
    from atelier.nodes.folders import FOLDER_NAME
    from comfy_fixtures import execute_prompt, new_prompt_executor
    from PIL import Image
    from test_workflows import REPO, prepared_prompt
    from workflow_assets_animate_anyone import IMAGE_CONTEXT_DIM, MODEL_CHANNELS

    folder = comfy_node_registry.output_dir.parent / "aa_truepose_weights"
    folder.mkdir(exist_ok=True)
    save_truepose_file(folder / "aa_workflow_truepose.safetensors", MODEL_CHANNELS, IMAGE_CONTEXT_DIM,
                       clip_embed_dim=IMAGE_CONTEXT_DIM)  # ViT-L/14's projection width
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    # (64, 64, 3), the scaled source's size; two regions, so CAA's crops cost two passes of the ViT-L/14
    parsing = (lip_parsing_image(("upper_clothes", "face"))[0] * 255).round().to(torch.uint8).numpy()
    Image.fromarray(parsing).save(comfy_node_registry.input_dir / "aa_person_parsing.png")

    rng = np.random.default_rng(0)
    prompt = prepared_prompt(REPO / "workflows" / "animate_anyone_pose_transfer.json", comfy_node_registry,
                             tiny_sd15_checkpoint, lambda name: (rng.random((96, 96, 3)) * 255).astype(np.uint8))
    node_of = {node["class_type"]: node_id for node_id, node in prompt.items()}
    prompt["900"] = {"class_type": "AtelierTruePoseLoader", "inputs": {"weights": "aa_workflow_truepose.safetensors"}}
    prompt["901"] = {"class_type": "LoadImage", "inputs": {"image": "aa_person_parsing.png"}}
    prompt[node_of["AtelierEncodeAnimateAnyoneSource"]]["inputs"].update(
        source_parsing=["901", 0], parsing_format="lip_palette", caa_clip_vision=[node_of["CLIPVisionLoader"], 0])
    apply_inputs = prompt[node_of["AtelierApplyAnimateAnyone"]]["inputs"]
    apply_inputs.update(truepose=["900", 0], hpfa_strength=1.0, caa_strength=1.0)

    def saved_image(result) -> np.ndarray:
        image = result["outputs"][node_of["SaveImage"]]["images"][0]
        return np.asarray(Image.open(comfy_node_registry.output_dir / image["subfolder"] / image["filename"]))

    executor = new_prompt_executor()
    on = saved_image(execute_prompt(prompt, executor=executor))
    apply_inputs.update(hpfa_strength=0.0, caa_strength=0.0)
    off = saved_image(execute_prompt(prompt, executor=executor))
    assert on.shape == off.shape and np.abs(on.astype(int) - off.astype(int)).max() > 0
