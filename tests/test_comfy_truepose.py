"""TruePose pose transfer inside a real ComfyUI (tiny SD1.5-shaped checkpoint, tiny CLIP vision, CPU):
SourceNet's pass and HPFA/CAA agree with the diffusers host for the same weights, and the nodes work
end to end through the sampler. Needs COMFYUI_PATH."""

import copy
import json
import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from comfy_fixtures import (
    TINY_CLIP_VISION,
    diffusers_unet_from_comfy,
    encode_prompt,
    requires_comfyui,
    sample,
    tiny_clip_vision,
)

pytestmark = [requires_comfyui]

SOURCE_H, SOURCE_W = 96, 64
TOLERANCE = 2e-4
BASE_CHANNELS = 32
WEIGHTS_NAME = "truepose_tiny.safetensors"
NO_CAA_NAME = "truepose_tiny_no_caa.safetensors"
# LIP class -> (y0, y1, x0, x1) on the 96×64 source, drawn in order.
SOURCE_PARSING = (
    ("left_leg", (60, 90, 24, 31)), ("right_leg", (60, 90, 33, 40)), ("pants", (50, 76, 22, 42)),
    ("left_arm", (24, 56, 12, 20)), ("right_arm", (24, 56, 44, 52)), ("upper_clothes", (22, 54, 20, 44)),
    ("hair", (2, 10, 26, 38)), ("face", (8, 22, 27, 37)), ("left_shoe", (90, 95, 22, 31)), ("right_shoe", (90, 95, 33, 42)),
)
FRONT = [(32, 12), (32, 22), (24, 24), (20, 36), (18, 46), (40, 24), (44, 36), (46, 46), (27, 50), (27, 68), (27, 88),
         (37, 50), (37, 68), (37, 88), (30, 10), (34, 10), (28, 11), (36, 11)]
ARMS_UP = [(32, 14), (32, 24), (24, 26), (18, 14), (16, 4), (40, 26), (46, 14), (48, 4), (28, 52), (24, 70), (22, 90),
           (36, 52), (40, 70), (42, 90), (30, 12), (34, 12), (28, 13), (36, 13)]


def pose_frame(points, hidden=()):
    """One POSE_KEYPOINT frame on the source canvas; ``hidden`` keypoint indices get confidence 0."""
    flat = []
    for index, (x, y) in enumerate(points):
        flat += [0.0, 0.0, 0.0] if index in hidden else [float(x), float(y), 1.0]
    return {"canvas_width": SOURCE_W, "canvas_height": SOURCE_H, "people": [{"pose_keypoints_2d": flat}]}


def random_truepose_modules(context_dim: int, seed: int = 0, **config_overrides):
    """TruePose modules with W^{V^clip} and the pose encoder's last conv made non-zero (fresh ones are zero)."""
    from atelier.models.truepose.config import TruePoseConfig
    from atelier.models.truepose.spec import TRUEPOSE
    from atelier.models.weight_format import BaseModel

    base = BaseModel(model_channels=BASE_CHANNELS, context_dim=context_dim)
    config = TruePoseConfig(clip_embed_dim=TINY_CLIP_VISION["projection_dim"], pose_encoder_widths=(8, 8, 16),
                            **config_overrides).to_dict()
    torch.manual_seed(seed)
    modules = TRUEPOSE.build(config, base)
    with torch.no_grad():
        for layer in modules["caa"].to_v.values():
            layer.weight.normal_(0.0, 0.5)
        modules["pose_encoder"].conv_out.weight.normal_(0.0, 0.2)
    return base, config, modules


def lip_parsing_image(batch: int = 1) -> torch.Tensor:
    """(B, 96, 64, 3) palette IMAGE of SOURCE_PARSING."""
    from atelier.models.labels import LIP_LABELS, LIP_PALETTE

    image = np.zeros((SOURCE_H, SOURCE_W, 3), dtype=np.uint8)
    for name, (y0, y1, x0, x1) in SOURCE_PARSING:
        image[y0:y1, x0:x1] = LIP_PALETTE[LIP_LABELS.index(name)]
    return torch.from_numpy(image).float().div(255.0).unsqueeze(0).repeat(batch, 1, 1, 1)


@pytest.fixture(scope="module")
def world(tiny_sd15, comfy_server_nodes, comfy_node_registry, tmp_path_factory):
    from atelier.models.truepose.spec import TRUEPOSE
    from atelier.models.weight_format import BaseModel
    from atelier.models.weight_systems import REFERENCE
    from atelier.models.weights import export_untrained, save_weight_file
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.nodes.pose_keypoint_nodes import NODES as POSE_NODES
    from atelier.nodes.truepose_nodes import NODES

    nodes = {node.define_schema().node_id: node for node in NODES + POSE_NODES}
    model, clip, vae = tiny_sd15
    context_dim = model.model.model_config.unet_config["context_dim"]
    folder = tmp_path_factory.mktemp("truepose_weights")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    base, config, modules = random_truepose_modules(context_dim)
    save_weight_file(str(folder / WEIGHTS_NAME), TRUEPOSE, base, config, modules)
    no_caa_base, no_caa_config, no_caa_modules = random_truepose_modules(context_dim, caa_sites=())
    save_weight_file(str(folder / NO_CAA_NAME), TRUEPOSE, no_caa_base, no_caa_config, no_caa_modules)
    export_untrained(str(folder / "reference_for_truepose_test.safetensors"), REFERENCE, base)
    export_untrained(str(folder / "truepose_other_base.safetensors"), TRUEPOSE,
                     BaseModel(model_channels=BASE_CHANNELS * 2, context_dim=context_dim))
    g = torch.Generator().manual_seed(5)
    return SimpleNamespace(
        model=model, clip=clip, vae=vae, context_dim=context_dim, modules=modules, nodes=nodes,
        clip_vision=tiny_clip_vision(tmp_path_factory.mktemp("clip_vision")),
        source_image=torch.rand(2, SOURCE_H, SOURCE_W, 3, generator=g), parsing=lip_parsing_image(),
        empty=encode_prompt(clip, ""), input_dir=comfy_node_registry.folder_paths.get_input_directory(),
        tmp_dir=tmp_path_factory.mktemp("truepose_tmp"),
    )


def load(world, name=WEIGHTS_NAME):
    return world.nodes["AtelierTruePoseLoader"].execute(weights=name).args[0]


def encode(world, image=None, **overrides):
    inputs = dict(model=world.model, clip=world.clip, vae=world.vae,
                  source_image=world.source_image[:1] if image is None else image, source_parsing=world.parsing,
                  parsing_format="lip_palette", clip_vision=world.clip_vision)
    inputs.update(overrides)
    return world.nodes["AtelierEncodePoseSource"].execute(**inputs).args[0]


def apply(world, source, target_pose, name=WEIGHTS_NAME, **overrides):
    inputs = dict(model=world.model, truepose=load(world, name), source=source, target_pose=target_pose, person=0,
                  hpfa_strength=1.0, caa_strength=1.0, sigma=0.3, delta=0.6, k=2, start_percent=0.0, end_percent=1.0)
    inputs.update(overrides)
    return world.nodes["AtelierApplyTruePose"].execute(**inputs).args[0]


def make_attachment(world, source, masks, target, reference, config, caa_strength=1.0, kind=None):
    """The attachment Apply TruePose builds, made directly (``kind`` may be a recording subclass)."""
    from atelier.models.sites import SITES_BY_NAME
    from atelier.nodes.truepose_attachment import TruePoseAttachment

    unet = world.model.model.diffusion_model
    heads = {name: unet.get_submodule(SITES_BY_NAME[name].comfy_attn1).heads for name in config.hpfa_sites}
    modules = world.modules
    return (kind or TruePoseAttachment)(reference, config, modules["hpfa"], modules["caa"], modules["pose_encoder"],
                                       source, masks, target, caa_strength, heads)


def run(world, model, batch=1, seed=0, steps=2):
    from comfy_fixtures import empty_latent

    return sample(model, world.empty, world.empty, empty_latent(batch, SOURCE_H, SOURCE_W), steps=steps, cfg=3.5, seed=seed)


@pytest.fixture(scope="module")
def source(world):
    return encode(world)


@pytest.fixture(scope="module")
def baseline(world):
    return run(world, world.model)


@pytest.fixture(scope="module")
def transferred(world, source):
    return run(world, apply(world, source, [pose_frame(FRONT)]))


def test_sourcenet_pass_agrees_across_hosts(world):
    import comfy.model_management
    from atelier.models.truepose.config import TruePoseConfig
    from atelier.models.truepose.diffusers_truepose import DiffusersTruePoseHost
    from atelier.nodes.truepose_source import run_sourcenet

    g = torch.Generator().manual_seed(1)
    latents = torch.randn(2, 4, 12, 8, generator=g)
    context = torch.randn(1, 5, world.context_dim, generator=g)
    comfy.model_management.load_models_gpu([world.model])
    in_comfy = run_sourcenet(world.model.model, latents, context)
    unet = diffusers_unet_from_comfy(world.model)
    with torch.no_grad(), DiffusersTruePoseHost(unet, TruePoseConfig(), world.modules["hpfa"]) as host:
        in_diffusers = host.source_pass(world.model.model.process_latent_in(latents), context)
    assert len(in_comfy) == 16 and set(in_diffusers.site_names) <= set(in_comfy.site_names)
    for name in in_diffusers.site_names:
        torch.testing.assert_close(in_comfy._states[name], in_diffusers._states[name], atol=TOLERANCE, rtol=TOLERANCE)


def test_hpfa_and_caa_agree_across_hosts(world, source):
    """One source, two target poses, CFG [uncond, cond]: the ComfyUI patches give the diffusers host's
    prediction, and the uncond rows are the plain UNet's."""
    from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
    from atelier.models.truepose.config import TruePoseConfig
    from atelier.models.truepose.diffusers_truepose import DiffusersTruePoseHost
    from atelier.models.truepose.truepose_run import TruePoseSource
    from atelier.nodes.reference_attachment import ComfyRun
    from atelier.nodes.reference_source import RunInputs
    from atelier.nodes.truepose_attachment import TargetPose
    from atelier.nodes.truepose_inputs import target_poses
    from atelier.nodes.truepose_nodes import selected_masks

    g = torch.Generator().manual_seed(2)
    config = TruePoseConfig.from_dict(load(world).config.to_dict())
    modules = world.modules
    poses = target_poses([pose_frame(FRONT), pose_frame(ARMS_UP, hidden=(0, 14, 15, 16, 17))], 0)
    masks = selected_masks(source.labels, poses)
    assert not torch.equal(masks[0], masks[1]), "a back view selects no face or hair"
    target = TargetPose(tuple(poses))
    reference = ReferenceConfig(mode=ReadMode.CROSS, strength=0.8, uncond=UncondPolicy.NONE,
                                site_weights={name: 1.0 for name in config.hpfa_sites})
    x = torch.randn(4, 4, 12, 8, generator=g)
    t = torch.full((4,), 500.0)
    context = torch.randn(4, 5, world.context_dim, generator=g)
    skeletons = target.images((12, 8))
    unet = diffusers_unet_from_comfy(world.model)
    inputs = TruePoseSource(masks, source.latent_hw, source.region_masks, source.clip_embeds)
    with torch.no_grad(), DiffusersTruePoseHost(unet, config, modules["hpfa"], modules["caa"], modules["pose_encoder"],
                                                reference) as host:
        bank = host.source_pass(world.model.model.process_latent_in(source.latent), source.context)
        out_d = host.forward(host.new_run(bank.expanded(2), inputs, skeletons, caa_strength=0.7), x, t, context,
                             cond_or_uncond=[1, 0]).sample
        plain = unet(x, t, encoder_hidden_states=context).sample

    attachment = make_attachment(world, source, masks, target, reference, config, caa_strength=0.7)
    patched = world.model.clone()
    attachment.install(patched)
    run_ = attachment.new_run(torch.device("cpu"))
    with torch.no_grad():
        run_.pose_features = modules["pose_encoder"](skeletons)
    run_.begin_call(4, [1, 0], (12, 8), True)
    options = copy.copy(patched.model_options["transformer_options"])
    options[attachment.run_key] = ComfyRun(run_, RunInputs(None, 0), math.inf, 0.0)
    options["cond_or_uncond"] = [1, 0]
    with torch.inference_mode():
        out_c = patched.model.diffusion_model(x, timesteps=t, context=context, transformer_options=options)
    scale = out_d.abs().max()
    assert (out_c - out_d).abs().max() <= TOLERANCE * scale
    assert (out_d[:2] - plain[:2]).abs().max() <= 1e-5 * scale, "the uncond chunk sees no source and no pose"
    assert (out_d[2:] - plain[2:]).abs().max() > 100 * TOLERANCE * scale
    assert set(run_.reads) == set(config.hpfa_sites)


def test_loader_lists_only_truepose_files(world):
    loader = world.nodes["AtelierTruePoseLoader"]
    options = loader.define_schema().inputs[0].options
    assert WEIGHTS_NAME in options and NO_CAA_NAME in options
    assert "reference_for_truepose_test.safetensors" not in options
    assert "not a TruePose weight file" in loader.validate_inputs(weights="reference_for_truepose_test.safetensors")


def test_source_holds_sourcenet_and_the_region_embeddings(world, source):
    from atelier.models.truepose.region_crops import REGION_NAMES

    assert source.batch == 1 and source.latent_hw == (12, 8) and len(source.bank) == 16
    assert source.region_masks.shape == (1, len(REGION_NAMES), SOURCE_H, SOURCE_W)
    assert source.clip_embeds.shape == (1, len(REGION_NAMES), TINY_CLIP_VISION["projection_dim"])
    absent = [index for index, name in enumerate(REGION_NAMES) if name == "dress"]
    assert float(source.clip_embeds[0, absent].abs().sum()) == 0.0, "an absent region has no embedding"
    assert float(source.clip_embeds[0, REGION_NAMES.index("face")].abs().sum()) > 0.0


def test_pose_transfer_changes_the_sample_and_zero_strengths_only_keep_the_pose(world, source, transferred, baseline):
    assert transferred.shape == baseline.shape
    assert not torch.allclose(transferred, baseline, atol=1e-4)
    off = run(world, apply(world, source, [pose_frame(FRONT)], hpfa_strength=0.0, caa_strength=0.0))
    assert not torch.allclose(off, baseline, atol=1e-4), "the pose encoder still adds the target skeleton"
    assert not torch.allclose(off, transferred, atol=1e-4)


def test_source_cache_equals_recomputing_every_step(world, source):
    """Refresh.EVERY_STEP reruns SourceNet and the whole source side at every step (the benchmark's
    baseline); SourceNet at t = 0 gives the same bank, so the samples match the cached run."""
    from atelier.models.reference_config import (
        ReadMode,
        ReferenceConfig,
        Refresh,
        UncondPolicy,
    )
    from atelier.nodes.truepose_attachment import TargetPose, TruePoseAttachment
    from atelier.nodes.truepose_inputs import target_poses
    from atelier.nodes.truepose_nodes import selected_masks

    config = load(world).config
    poses = target_poses([pose_frame(FRONT)], 0)
    runs = []

    class Recording(TruePoseAttachment):
        def new_run(self, device):
            runs.append(super().new_run(device))
            return runs[-1]

    samples = []
    for refresh in (Refresh.ONCE, Refresh.EVERY_STEP):
        reference = ReferenceConfig(mode=ReadMode.CROSS, uncond=UncondPolicy.NONE, refresh=refresh,
                                    site_weights={name: 1.0 for name in config.hpfa_sites})
        attachment = make_attachment(world, source, selected_masks(source.labels, poses), TargetPose(tuple(poses)),
                                     reference, config, kind=Recording)
        model = world.model.clone()
        attachment.install(model)
        samples.append(run(world, model, steps=3))
    assert [r.source_builds for r in runs] == [1, 3]
    torch.testing.assert_close(samples[0], samples[1], atol=1e-5, rtol=1e-5)


def test_a_pose_sequence_from_one_source(world, source):
    """Two frames re-pose one source in one batch; each row equals its solo run (same noise row)."""
    from comfy_fixtures import empty_latent

    frames = [pose_frame(FRONT), pose_frame(ARMS_UP)]
    both = run(world, apply(world, source, frames), batch=2)
    first = run(world, apply(world, source, frames[:1]), batch=1)
    second = sample(apply(world, source, frames[1:]), world.empty, world.empty,
                    {**empty_latent(1, SOURCE_H, SOURCE_W), "batch_index": [1]}, steps=2, cfg=3.5, seed=0)
    assert not torch.allclose(both[0], both[1], atol=1e-2)
    torch.testing.assert_close(both[0], first[0], atol=2e-3, rtol=2e-3)  # batched vs single matmuls
    torch.testing.assert_close(both[1], second[0], atol=2e-3, rtol=2e-3)


def test_a_ready_skeleton_image_replaces_the_drawn_one(world, source, transferred):
    from atelier.models.truepose.pose_encoder import draw_target_skeleton
    from atelier.nodes.truepose_inputs import target_poses

    drawn = draw_target_skeleton(target_poses([pose_frame(FRONT)], 0)[0], SOURCE_H, SOURCE_W)
    skeleton = torch.from_numpy(drawn).float().div(255.0).unsqueeze(0)
    same = run(world, apply(world, source, [pose_frame(FRONT)], skeleton=skeleton))
    torch.testing.assert_close(same, transferred, atol=1e-5, rtol=1e-5)
    other = run(world, apply(world, source, [pose_frame(FRONT)], skeleton=torch.zeros_like(skeleton)))
    assert not torch.allclose(other, transferred, atol=1e-4)


def test_weights_without_caa_run_without_clip_vision(world, baseline):
    source = encode(world, clip_vision=None)
    assert source.clip_embeds is None
    with pytest.raises(ValueError, match="'caa_strength'"):
        apply(world, source, [pose_frame(FRONT)])
    out = run(world, apply(world, source, [pose_frame(FRONT)], name=NO_CAA_NAME, caa_strength=0.0))
    assert not torch.allclose(out, baseline, atol=1e-4)
    with pytest.raises(ValueError, match="trained without CAA"):
        apply(world, source, [pose_frame(FRONT)], name=NO_CAA_NAME)


def test_bad_inputs_name_what_to_fix(world, source):
    bad_colour = world.parsing.clone()
    bad_colour[0, 0, 0] = torch.tensor([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="'source_parsing' row 0"):
        encode(world, source_parsing=bad_colour)
    with pytest.raises(ValueError, match="different aspect ratio"):
        encode(world, source_parsing=world.parsing[:, :64])
    with pytest.raises(ValueError, match="'source_parsing' holds 3 maps for 2"):
        encode(world, image=world.source_image, source_parsing=lip_parsing_image(3))
    with pytest.raises(ValueError, match="'target_pose'.*at least 4 are needed"):
        apply(world, source, [pose_frame(FRONT, hidden=tuple(range(3, 18)))])
    with pytest.raises(ValueError, match="'target_pose'.*'people' list is empty"):
        apply(world, source, [{"canvas_width": 64, "canvas_height": 96, "people": []}])
    with pytest.raises(ValueError, match="'target_pose' is empty"):
        apply(world, source, [])
    from atelier.models.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="'truepose' was made for .* model_channels 64"):
        apply(world, source, [pose_frame(FRONT)], name="truepose_other_base.safetensors")
    narrow = encode(world, clip_vision=tiny_clip_vision(world.tmp_dir, projection_dim=16))
    with pytest.raises(UnsupportedModelError, match="'clip_vision' gives 16-wide .* expects 24"):
        apply(world, narrow, [pose_frame(FRONT)])
    two_sources = encode(world, image=world.source_image)
    with pytest.raises(ValueError, match="3 frames but 'source' holds 2"):
        apply(world, two_sources, [pose_frame(FRONT)] * 3)


def test_parsing_as_label_ids_and_at_another_resolution(world, source):
    from atelier.models.labels import LIP_LABELS

    ids = torch.zeros(1, SOURCE_H, SOURCE_W, 3)
    for name, (y0, y1, x0, x1) in SOURCE_PARSING:
        ids[0, y0:y1, x0:x1] = LIP_LABELS.index(name) / 255.0
    from_ids = encode(world, source_parsing=ids, parsing_format="lip_ids")
    assert torch.equal(from_ids.labels, source.labels)
    half = world.parsing[:, ::2, ::2]
    from_half = encode(world, source_parsing=half)
    assert (from_half.labels == source.labels).float().mean() > 0.9
    with pytest.raises(ValueError, match="grey"):
        encode(world, source_parsing=world.parsing, parsing_format="lip_ids")


def test_load_pose_keypoints(world):
    from pathlib import Path

    node = world.nodes["AtelierLoadPoseKeypoint"]
    frames = [pose_frame(FRONT), pose_frame(ARMS_UP)]
    Path(world.input_dir, "atelier_test_poses.json").write_text(json.dumps(frames))
    openpose = {"people": [{"pose_keypoints_2d": pose_frame(FRONT)["people"][0]["pose_keypoints_2d"]}]}
    Path(world.input_dir, "atelier_test_openpose.json").write_text(json.dumps(openpose))
    assert "atelier_test_poses.json" in node.define_schema().inputs[0].options
    keypoints, skeleton = node.execute(pose_file="atelier_test_poses.json", width=352, height=512).args
    assert len(keypoints) == 2 and skeleton.shape == (2, SOURCE_H, SOURCE_W, 3) and float(skeleton.max()) > 0.5
    single, drawn = node.execute(pose_file="atelier_test_openpose.json", width=128, height=192).args
    assert single[0]["canvas_width"] == 128 and drawn.shape == (1, 192, 128, 3)
    assert "not a .json file" in node.validate_inputs(pose_file="missing.json")


def test_a_trained_file_from_train_truepose_runs_in_the_nodes(world, comfy_node_registry, tmp_path, baseline):
    """Two toy-world training steps (tiny SD1.5 layout, the test checkpoint's sizes) -> models/atelier/ and
    the UNet LoRA through the core LoRA loader -> Load TruePose; Encode Pose Source with the trainer's
    image encoder as CLIP vision -> Apply TruePose -> KSampler."""
    import comfy.clip_vision
    import comfy.sd
    import comfy.utils
    from atelier.nodes.folders import FOLDER_NAME
    from atelier.train.igr.components import tiny_image_encoder
    from atelier.train.truepose.cli import parse_args, train

    out = tmp_path / "trained"
    threads = torch.get_num_threads()
    try:  # one thread: the tiny models crawl with two on a busy shared CPU
        train(parse_args(["--size", "48x32", "--people", "4", "--batch-size", "2", "--unet-rank", "2", "--steps", "2",
                          "--checkpoint-every", "0", "--threads", "1", "--out", str(out)]))
    finally:
        torch.set_num_threads(threads)
    folder = tmp_path / "models_atelier"  # a name no other test registers (the workflow test has its own truepose.safetensors)
    folder.mkdir()
    shutil.copy(out / "truepose.safetensors", folder / "truepose_trained_in_test.safetensors")
    comfy_node_registry.folder_paths.add_model_folder_path(FOLDER_NAME, str(folder))
    trained = load(world, "truepose_trained_in_test.safetensors")
    assert trained.base.model_channels == BASE_CHANNELS and trained.base.context_dim == world.context_dim
    encoder = tiny_image_encoder().model
    config = dict(encoder.config.to_dict(), model_type="clip_vision_model")
    config_path = tmp_path / "trained_clip_vision.json"
    config_path.write_text(json.dumps({key: value for key, value in config.items() if isinstance(value, int | float | str)}))
    clip_vision = comfy.clip_vision.ClipVisionModel(str(config_path))
    missing, _ = clip_vision.load_sd(encoder.state_dict())
    assert not missing
    lora = comfy.utils.load_torch_file(str(out / "truepose_unet_lora.safetensors"))
    model, _ = comfy.sd.load_lora_for_models(world.model, None, lora, 1.0, 0.0)
    source = encode(world, model=model, clip_vision=clip_vision)
    patched = apply(world, source, [pose_frame(FRONT)], model=model, truepose=trained)
    result = run(world, patched)
    assert torch.isfinite(result).all() and (result - baseline).abs().max() > 1e-4
