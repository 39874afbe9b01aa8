"""Reference attention inside a real ComfyUI (tiny SD1.5-shaped checkpoint, CPU). Needs COMFYUI_PATH."""

from types import SimpleNamespace

import pytest
import torch

from comfy_fixtures import empty_latent, encode_prompt, requires_comfyui, sample

pytestmark = [requires_comfyui]

SIZE = 64
ALL_SITES = 16


@pytest.fixture(scope="module")
def pack(comfyui):
    """The pack's ComfyUI-side modules (imported after the harness set ComfyUI up)."""
    import comfy.patcher_extension
    from atelier.models.errors import ReferenceInputError, UnsupportedModelError
    from atelier.models.reference_config import ReadMode, ReferenceConfig
    from atelier.nodes.reference_attachment import ReferenceAttachment
    from atelier.nodes.reference_node import ReferenceAttentionNode
    from atelier.nodes.reference_patch import ReferenceReadPatch

    return SimpleNamespace(
        patcher_extension=comfy.patcher_extension, ReferenceInputError=ReferenceInputError, UnsupportedModelError=UnsupportedModelError,
        ReadMode=ReadMode, ReferenceConfig=ReferenceConfig, ReferenceAttachment=ReferenceAttachment,
        ReferenceAttentionNode=ReferenceAttentionNode, ReferenceReadPatch=ReferenceReadPatch,
    )


@pytest.fixture(scope="module")
def world(tiny_sd15):
    model, clip, vae = tiny_sd15
    g = torch.Generator().manual_seed(3)
    return SimpleNamespace(
        model=model,
        vae=vae,
        positive=encode_prompt(clip, "a red dress"),
        negative=encode_prompt(clip, ""),
        reference=torch.rand(1, SIZE, SIZE, 3, generator=g),
        references2=torch.rand(2, SIZE, SIZE, 3, generator=g),
    )


def apply_node(pack, world, **overrides):
    """Run the node's execute as ComfyUI would, with the node's defaults unless overridden."""
    inputs = dict(model=world.model, vae=world.vae, reference=world.reference, strength=1.0, mode="concat",
                  start_percent=0.0, end_percent=1.0, sites="all", uncond="same", refresh="once",
                  reference_size="as_is")
    inputs.update(overrides)
    return pack.ReferenceAttentionNode.execute(**inputs).args[0]


def run(world, model, *, batch=1, cfg=7.0, steps=2, seed=0):
    return sample(model, world.positive, world.negative, empty_latent(batch, SIZE, SIZE), steps=steps, cfg=cfg, seed=seed)


class CallProbe:
    """An APPLY_MODEL wrapper that records, after each UNet call, what the reference run saw."""

    def __init__(self, run_key):
        self.run_key = run_key
        self.calls = []

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kw):
        out = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kw)
        comfy_run = transformer_options[self.run_key]
        run = comfy_run.run
        self.calls.append(SimpleNamespace(
            run_id=id(run), reads=dict(run.reads), bank_writes=run.bank_writes,
            bank_sites=run.bank.site_names, bank_shapes={n: tuple(run.bank._states[n].shape) for n in run.bank.site_names},
            cond_or_uncond=list(transformer_options["cond_or_uncond"]), rows=run.call.plan.rows.tolist(),
            total_rows=x.shape[0],
        ))
        return out


def probed(pack, model):
    wrappers = model.wrappers[pack.patcher_extension.WrappersMP.APPLY_MODEL]
    key = next(k for k in wrappers if k.startswith("atelier_reference_"))
    probe = CallProbe(key)
    model.add_wrapper_with_key(pack.patcher_extension.WrappersMP.APPLY_MODEL, "atelier_test_probe", probe)
    return probe


@pytest.fixture(scope="module")
def baseline(world):
    return run(world, world.model)


def test_every_site_is_written_once_and_read_once_per_unet_call(pack, world):
    model = apply_node(pack, world)
    probe = probed(pack, model)
    run(world, model, steps=3)
    assert len(probe.calls) == 3
    for index, call in enumerate(probe.calls, start=1):
        assert call.bank_writes == 1
        assert len(call.bank_sites) == ALL_SITES
        assert call.reads == {name: index for name in call.bank_sites}
    assert probe.calls[0].bank_shapes["input_1"] == (1, 64, 32)
    assert probe.calls[0].bank_shapes["middle_0"] == (1, 1, 128)


def test_every_step_refresh_rewrites_the_bank_each_call(pack, world):
    model = apply_node(pack, world, refresh="every_step")
    probe = probed(pack, model)
    run(world, model, steps=3)
    assert [c.bank_writes for c in probe.calls] == [1, 2, 3]


def test_reference_changes_the_image(pack, world, baseline):
    for mode in ("concat", "cross"):
        assert (run(world, apply_node(pack, world, mode=mode)) - baseline).abs().max() > 1e-3


def test_strength_zero_reproduces_the_unpatched_output_bit_for_bit(pack, world, baseline):
    from atelier.models.reference_config import Refresh, ReferenceSize
    from atelier.nodes.reference_source import SameModelReference

    assert torch.equal(run(world, apply_node(pack, world, strength=0.0)), baseline)
    # The node skips patching at 0; the mechanism itself must also be exact with its patches installed.
    installed = world.model.clone()
    config = pack.ReferenceConfig(strength=0.0)
    latent = torch.randn(1, 4, SIZE // 8, SIZE // 8, generator=torch.Generator().manual_seed(4))
    source = SameModelReference(latent, config.enabled_site_names, Refresh.ONCE, ReferenceSize.AS_IS)
    pack.ReferenceAttachment(config, source).install(installed)
    replace = installed.model_options["transformer_options"]["patches_replace"]["attn1"]
    assert all(isinstance(p, pack.ReferenceReadPatch) for p in replace.values())
    assert torch.equal(run(world, installed), baseline)


def test_schedule_window_outside_every_step_is_bit_identical(pack, world, baseline):
    assert torch.equal(run(world, apply_node(pack, world, start_percent=1.0, end_percent=1.0)), baseline)


def test_all_zero_mask_equals_no_patch(pack, world, baseline):
    assert torch.equal(run(world, apply_node(pack, world, mask=torch.zeros(1, SIZE, SIZE))), baseline)
    half = torch.zeros(1, SIZE, SIZE)
    half[:, :, : SIZE // 2] = 1
    assert not torch.equal(run(world, apply_node(pack, world, mask=half)), baseline)


def test_clones_share_patches_but_not_run_state(pack, world):
    model = apply_node(pack, world)
    clone = model.clone()
    replace = model.model_options["transformer_options"]["patches_replace"]["attn1"]
    clone_replace = clone.model_options["transformer_options"]["patches_replace"]["attn1"]
    assert all(clone_replace[k] is replace[k] for k in replace)
    first = run(world, model)
    second = run(world, clone)
    assert torch.equal(first, second)
    for patched in (model, clone):
        assert not any(k.startswith("atelier_reference_") for k in patched.model_options["transformer_options"])


def test_state_is_reset_between_prompts(pack, world):
    model = apply_node(pack, world)
    probe = probed(pack, model)
    first = run(world, model)
    second = run(world, model)
    assert torch.equal(first, second)
    run_ids = [c.run_id for c in probe.calls]
    assert len(set(run_ids)) == 2 and [c.bank_writes for c in probe.calls] == [1, 1, 1, 1]


@pytest.mark.parametrize("cfg, batch, uncond, layout, rows", [
    (1.0, 1, "none", [0], [0]),
    (7.0, 1, "none", [1, 0], [1]),
    (7.0, 1, "same", [1, 0], [0, 1]),
    (7.0, 2, "none", [1, 0], [2, 3]),
    (1.0, 2, "same", [0], [0, 1]),
])
def test_cond_uncond_routing(pack, world, cfg, batch, uncond, layout, rows):
    model = apply_node(pack, world, uncond=uncond)
    probe = probed(pack, model)
    run(world, model, batch=batch, cfg=cfg, steps=1)
    assert probe.calls[0].cond_or_uncond == layout
    assert probe.calls[0].rows == rows


def test_uncond_policy_matters_only_when_there_is_an_uncond_chunk(pack, world):
    same, none = (apply_node(pack, world, uncond=u) for u in ("same", "none"))
    assert torch.equal(run(world, same, cfg=1.0), run(world, none, cfg=1.0))
    assert not torch.equal(run(world, same, cfg=7.0), run(world, none, cfg=7.0))


def test_reference_per_latent_and_mismatched_batches(pack, world):
    model = apply_node(pack, world, reference=world.references2)
    assert run(world, model, batch=2).shape[0] == 2
    with pytest.raises(pack.ReferenceInputError, match="reference image batch is 2 but the latent batch is 3"):
        run(world, model, batch=3)


def test_reference_of_another_size(pack, world, baseline):
    big = torch.rand(1, 96, 80, 3, generator=torch.Generator().manual_seed(5))
    for policy in ("as_is", "resize_to_latent"):
        assert run(world, apply_node(pack, world, reference=big, reference_size=policy)).shape == baseline.shape


def test_bad_inputs_name_what_to_fix(pack, world):
    with pytest.raises(pack.ReferenceInputError, match="'reference' is 32×32 px"):
        apply_node(pack, world, reference=torch.rand(1, 32, 32, 3))
    import comfy.supported_models
    sdxl_like = SimpleNamespace(model=SimpleNamespace(model_config=object.__new__(comfy.supported_models.SDXL)))
    with pytest.raises(pack.UnsupportedModelError, match="got a SDXL model"):
        apply_node(pack, world, model=sdxl_like)


def test_two_references_chain(pack, world, baseline):
    first = apply_node(pack, world, mode="cross", strength=0.5)
    both = apply_node(pack, world, model=first, mode="cross", strength=0.5, reference=torch.rand(1, SIZE, SIZE, 3))
    replace = both.model_options["transformer_options"]["patches_replace"]["attn1"]
    assert all(isinstance(p.previous, pack.ReferenceReadPatch) for p in replace.values())
    one, two = run(world, first), run(world, both)
    assert not torch.equal(one, two) and not torch.equal(one, baseline)


def test_a_failed_run_leaves_no_state_behind(pack, world):
    model = apply_node(pack, world, reference=world.references2)
    first = run(world, model, batch=2)
    with pytest.raises(pack.ReferenceInputError):
        run(world, model, batch=3)
    assert not any(k.startswith("atelier_reference_") for k in model.model_options["transformer_options"])
    assert torch.equal(run(world, model, batch=2), first)


def test_learned_projections_are_loaded_with_the_unet(pack, world, tmp_path):
    from atelier.models.reference_config import Refresh, ReferenceSize
    from atelier.models.weight_format import BaseModel
    from atelier.models.weight_systems import REFERENCE
    from atelier.models.weights import export_untrained, load_weight_file
    from atelier.nodes.reference_source import SameModelReference

    path = str(tmp_path / "reference.safetensors")
    export_untrained(path, REFERENCE, BaseModel(model_channels=32, context_dim=64))
    projections = load_weight_file(path, "reference").modules["projections"]
    config = pack.ReferenceConfig(mode=pack.ReadMode.CROSS)
    latent = torch.randn(1, 4, SIZE // 8, SIZE // 8, generator=torch.Generator().manual_seed(2))
    attachment = pack.ReferenceAttachment(
        config, SameModelReference(latent, config.enabled_site_names, Refresh.ONCE, ReferenceSize.AS_IS), projections=projections)
    model = world.model.clone()
    attachment.install(model)
    managed = model.get_additional_models_with_key(attachment.run_key)
    assert len(managed) == 1 and managed[0].model is projections
    clone = model.clone()
    assert clone.get_additional_models_with_key(attachment.run_key)[0].model is projections
    assert not torch.equal(run(world, model), run(world, world.model))
