"""Pytest plugin: a real ComfyUI, in-process and on the CPU, for Atelier's ComfyUI tests.

Loaded by ``tests/conftest.py`` (``pytest_plugins = ["comfy_fixtures"]``). Importing this module
touches neither ComfyUI nor torch; everything ComfyUI-shaped happens inside the fixtures, which
skip when the environment variable ``COMFYUI_PATH`` (a local ComfyUI checkout) is unset, or when it
is set but ComfyUI cannot be imported from the running interpreter (e.g. its requirements, such as
torchvision, are not installed in this venv).

Fixtures (all session-scoped, so ComfyUI is imported and the tiny model built once per run):

* ``comfyui``                 ComfyUI imported from the checkout with ``--cpu``; a namespace of modules.
* ``tiny_sd15_checkpoint``    path of a tiny SD1.5-shaped ``.safetensors`` checkpoint (57 MB, fp32).
* ``tiny_sd15``               ``(model_patcher, clip, vae)`` loaded from it by ComfyUI's own loader.
* ``comfy_node_registry``     core + ``comfy_extras`` nodes registered, output/temp/input dirs in tmp.
* ``comfy_server_nodes``      the registry with THE ATELIER PACK loaded as a custom node.

Helpers, importable as ``from comfy_fixtures import ...``: ``encode_prompt``, ``sample``,
``empty_latent``, ``sd15_size_unet``, ``diffusers_unet_from_comfy``, ``load_pack``,
``new_prompt_executor``, ``execute_prompt``, ``pack_object_info``, ``count_attn1_sites``.

Everything the session fixtures return is shared by every test: clone a MODEL
(``model_patcher.clone()``) before patching it, and never mutate a returned tensor in place.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import os
import sys
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("atelier.tests.comfy_fixtures")

COMFYUI_PATH_ENV = "COMFYUI_PATH"
COMFYUI_SKIP_REASON = (
    f"{COMFYUI_PATH_ENV} is not set: these tests run a real ComfyUI checkout in-process "
    f"(e.g. {COMFYUI_PATH_ENV}=/path/to/ComfyUI)"
)
requires_comfyui = pytest.mark.skipif(not os.environ.get(COMFYUI_PATH_ENV), reason=COMFYUI_SKIP_REASON)
"""Mark for a test module: ``pytestmark = [requires_comfyui]`` skips it, with one reason, without ComfyUI."""

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_CLIENT_ID = "atelier-tests"
TINY_SD15_CONFIG_MARKER = "_atelier_test_double"


class ComfyUICheckoutError(FileNotFoundError):
    """COMFYUI_PATH is set but does not point at a usable ComfyUI checkout."""


class ComfyUIImportOrderError(RuntimeError):
    """ComfyUI was already imported in a way the harness cannot repair (e.g. without ``--cpu``)."""


@dataclass(frozen=True)
class TinySD15Spec:
    """Shape and seed of the tiny SD1.5-shaped checkpoint (SD1.5 block layout, narrow widths).

    The UNet keeps SD1.5's levels, res blocks and all 16 transformer sites with 8 heads each
    (dim_head 4/8/16 instead of 40/80/160); the text encoder is a 2-layer, 64-wide CLIP with
    the real CLIP tokenizer and vocabulary; the VAE is TAESD-format.
    """

    model_channels: int = 32
    context_dim: int = 64
    clip_layers: int = 2
    clip_heads: int = 2
    clip_intermediate_size: int = 256
    seed: int = 0
    file_name: str = "atelier_tiny_sd15.safetensors"

    def clip_config_overrides(self) -> dict[str, int]:
        """Keys merged by ComfyUI into ``comfy/sd1_clip_config.json`` for the tiny text encoder."""
        return {
            "hidden_size": self.context_dim,
            "intermediate_size": self.clip_intermediate_size,
            "num_attention_heads": self.clip_heads,
            "num_hidden_layers": self.clip_layers,
            "projection_dim": self.context_dim,
        }


TINY_SD15 = TinySD15Spec()


def sd15_unet_config(model_channels: int, context_dim: int) -> dict[str, Any]:
    """SD1.5's UNet layout as ComfyUI's model detection writes it, at the given widths.

    Same keys and values as ``SD15`` in ``comfy/model_detection.py`` except the two widths;
    ``num_heads`` (8) comes from the model-config class, as when ComfyUI loads a checkpoint.
    ``transformer_depth_output`` is consumed last-to-first by ComfyUI: 9 ones then 3 zeros put
    attention on output blocks 3..11.
    """
    return {
        "use_checkpoint": False,
        "image_size": 32,
        "out_channels": 4,
        "use_spatial_transformer": True,
        "legacy": False,
        "adm_in_channels": None,
        "in_channels": 4,
        "model_channels": model_channels,
        "num_res_blocks": [2, 2, 2, 2],
        "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
        "channel_mult": [1, 2, 4, 4],
        "transformer_depth_middle": 1,
        "use_linear_in_transformer": False,
        "context_dim": context_dim,
        "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
        "use_temporal_attention": False,
        "use_temporal_resblock": False,
    }


# --------------------------------------------------------------------------------------------
# Importing ComfyUI
# --------------------------------------------------------------------------------------------


def import_comfyui(checkout: Path) -> types.SimpleNamespace:
    """Import ComfyUI from ``checkout`` the way ``main.py`` prepares it, forced onto the CPU.

    Order matters: ``comfy.cli_args.args.cpu`` must be set before ``comfy.model_management`` is
    first imported (it picks the torch device at import). Argument parsing stays off
    (``comfy.options.args_parsing`` is False by default, so ``cli_args`` parses ``[]``).
    ComfyUI's top-level ``utils`` package is imported before ``nodes``: ``nodes.py`` puts
    ``<checkout>/comfy`` first on ``sys.path``, after which ``import utils`` would find
    ``comfy/utils.py`` and ``comfy_extras/nodes_images.py`` would fail to import.
    No ComfyUI function is monkeypatched.
    """
    checkout = checkout.resolve()
    if not (checkout / "comfy" / "model_management.py").is_file() or not (checkout / "nodes.py").is_file():
        raise ComfyUICheckoutError(
            f"{COMFYUI_PATH_ENV}={checkout} is not a ComfyUI checkout (no comfy/model_management.py or nodes.py there)"
        )
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))

    already_imported = "comfy.model_management" in sys.modules
    import comfy.cli_args
    import comfy.options  # noqa: F401  (args parsing stays disabled: cli_args parses [])

    comfy.cli_args.args.cpu = True
    if already_imported:
        import comfy.model_management

        if comfy.model_management.get_torch_device().type != "cpu":
            raise ComfyUIImportOrderError(
                "comfy.model_management was imported before the comfyui fixture without --cpu; "
                "import ComfyUI only through the comfyui fixture"
            )

    import utils as comfy_top_level_utils

    utils_path = Path(getattr(comfy_top_level_utils, "__file__", "") or "").resolve()
    if utils_path.parent != checkout / "utils":
        raise ComfyUIImportOrderError(
            f"the top-level module 'utils' resolves to {utils_path}, not to {checkout / 'utils'}; "
            "ComfyUI's server-side modules need their own 'utils' package"
        )

    import comfy.model_management
    import comfy.model_patcher
    import comfy.ops
    import comfy.sample
    import comfy.samplers
    import comfy.sd
    import comfy.sd1_clip
    import comfy.supported_models
    import comfy.supported_models_base
    import comfy.utils
    import folder_paths

    return types.SimpleNamespace(
        path=checkout,
        comfy=sys.modules["comfy"],
        cli_args=comfy.cli_args,
        model_management=comfy.model_management,
        model_patcher=comfy.model_patcher,
        ops=comfy.ops,
        sample=comfy.sample,
        samplers=comfy.samplers,
        sd=comfy.sd,
        sd1_clip=comfy.sd1_clip,
        supported_models=comfy.supported_models,
        supported_models_base=comfy.supported_models_base,
        utils=comfy.utils,
        folder_paths=folder_paths,
    )


@pytest.fixture(scope="session")
def comfyui() -> types.SimpleNamespace:
    """ComfyUI from ``$COMFYUI_PATH``, imported in-process on the CPU; skips without the variable.

    Returns a namespace of ComfyUI modules: ``path`` (the checkout), ``comfy``, ``cli_args``,
    ``model_management``, ``model_patcher``, ``ops``, ``sample``, ``samplers``, ``sd``,
    ``sd1_clip``, ``supported_models``, ``supported_models_base``, ``utils`` (``comfy.utils``)
    and ``folder_paths``. After this fixture, plain ``import comfy.xyz`` also works in a test.
    A set but wrong ``COMFYUI_PATH`` fails the test (ComfyUICheckoutError) rather than skipping; a
    right one whose ComfyUI this interpreter cannot import (a missing requirement) skips, saying so.
    """
    raw = os.environ.get(COMFYUI_PATH_ENV)
    if not raw:
        pytest.skip(COMFYUI_SKIP_REASON)
    try:
        return import_comfyui(Path(raw))
    except ImportError as error:
        pytest.skip(comfyui_import_skip_reason(Path(raw), error))


def comfyui_import_skip_reason(checkout: Path, error: ImportError) -> str:
    """Why the ComfyUI tests skip when the checkout is there but this interpreter cannot import it."""
    return (f"{COMFYUI_PATH_ENV}={checkout} is set, but ComfyUI cannot be imported from {sys.executable} "
            f"({type(error).__name__}: {error}); install ComfyUI's requirements into this environment, or run "
            f"the tests with the Python of ComfyUI's own environment")


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def init_weights_(module: torch.nn.Module, seed: int) -> None:
    """Fill every parameter of ``module`` in place from ``seed`` (ComfyUI modules start empty).

    ``comfy.ops.disable_weight_init`` leaves parameters as ``torch.empty`` (garbage, often NaN).
    Rule, in ``named_modules`` order: GroupNorm/LayerNorm weight 1 + N(0, 0.1²), bias N(0, 0.1²);
    other matrices and kernels N(0, 1/fan_in); other vectors (biases) N(0, 0.02²); scalars
    (TAESD's ``vae_scale``/``vae_shift``) keep their constructor values. Norm parameters and
    biases are deliberately not 1/0, so a conversion that drops or swaps them is caught.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    norm_types = (torch.nn.GroupNorm, torch.nn.LayerNorm)
    with torch.no_grad():
        for submodule in module.modules():
            is_norm = isinstance(submodule, norm_types)
            for name, param in submodule.named_parameters(recurse=False):
                if param.ndim == 0:
                    continue
                noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
                if is_norm:
                    value = noise * 0.1 + (1.0 if name == "weight" else 0.0)
                elif param.ndim == 1:
                    value = noise * 0.02
                else:
                    fan_in = param[0].numel()
                    value = noise / math.sqrt(fan_in)
                param.copy_(value.to(param.dtype))


# --------------------------------------------------------------------------------------------
# Tiny SD1.5-shaped checkpoint
# --------------------------------------------------------------------------------------------


def register_tiny_sd15_config(comfyui: types.SimpleNamespace, spec: TinySD15Spec = TINY_SD15) -> type:
    """Register (once) the test-only ``TinySD15`` model config so ComfyUI detects the tiny checkpoint.

    TEST CODE ONLY: this inserts a class at the front of ``comfy.supported_models.models``, the
    list ``comfy.model_detection`` scans. It matches only ``model_channels 32`` with
    ``context_dim 64``, so real checkpoints are unaffected. Its CLIP target is SD1.5's tokenizer
    with a text encoder whose config is narrowed through ComfyUI's own
    ``model_options["clip_l_model_config"]`` mechanism. Returns the registered class.
    """
    supported_models = comfyui.supported_models
    for existing in supported_models.models:
        if getattr(existing, TINY_SD15_CONFIG_MARKER, False):
            return existing

    sd1_clip = comfyui.sd1_clip
    clip_overrides = spec.clip_config_overrides()

    class TinySD1ClipModel(sd1_clip.SD1ClipModel):
        """SD1.5's CLIP-L wrapper with the tiny text-encoder config merged in."""

        def __init__(self, device="cpu", dtype=None, model_options=None, **kwargs):
            options = dict(model_options or {})
            options["clip_l_model_config"] = {**clip_overrides, **options.get("clip_l_model_config", {})}
            super().__init__(device=device, dtype=dtype, model_options=options, **kwargs)

    class TinySD15(supported_models.SD15):
        """Test double of SD15: same layout, model_channels 32, context_dim 64, tiny CLIP."""

        unet_config = {
            "context_dim": spec.context_dim,
            "model_channels": spec.model_channels,
            "use_linear_in_transformer": False,
            "adm_in_channels": None,
            "use_temporal_attention": False,
        }

        def clip_target(self, state_dict=None):
            """SD1.5's tokenizer with the tiny text encoder."""
            return comfyui.supported_models_base.ClipTarget(sd1_clip.SD1Tokenizer, TinySD1ClipModel)

    setattr(TinySD15, TINY_SD15_CONFIG_MARKER, True)
    supported_models.models.insert(0, TinySD15)
    logger.info("registered the test-only TinySD15 model config")
    return TinySD15


def build_tiny_sd15_state_dict(comfyui: types.SimpleNamespace, spec: TinySD15Spec = TINY_SD15) -> dict[str, torch.Tensor]:
    """A full tiny SD1.5-shaped checkpoint state dict, built from ComfyUI's own classes.

    Keys use the standard single-file prefixes: ``model.diffusion_model.*`` (UNet through the
    TinySD15 config's ``get_model``), ``cond_stage_model.transformer.text_model.*``
    (``comfy.clip_model.CLIPTextModel``; no ``text_projection``, like SD1.5 files) and
    ``first_stage_model.*`` (``comfy.taesd.taesd.TAESD``). fp32, seeded (see ``init_weights_``).
    """
    import comfy.clip_model
    import comfy.taesd.taesd
    import torch

    config_cls = register_tiny_sd15_config(comfyui, spec)
    model_config = config_cls(sd15_unet_config(spec.model_channels, spec.context_dim))
    model_config.set_inference_dtype(torch.float32, None)
    unet = model_config.get_model({}).diffusion_model
    init_weights_(unet, spec.seed)

    clip_config_path = Path(comfyui.sd1_clip.__file__).with_name("sd1_clip_config.json")
    clip_config = {**json.loads(clip_config_path.read_text()), **spec.clip_config_overrides()}
    text_encoder = comfy.clip_model.CLIPTextModel(clip_config, torch.float32, "cpu", comfyui.ops.disable_weight_init)
    init_weights_(text_encoder, spec.seed + 1)

    vae = comfy.taesd.taesd.TAESD()
    init_weights_(vae, spec.seed + 2)

    state_dict: dict[str, torch.Tensor] = {}
    for key, value in unet.state_dict().items():
        state_dict[f"model.diffusion_model.{key}"] = value
    for key, value in text_encoder.state_dict().items():
        if key.startswith("text_model."):
            state_dict[f"cond_stage_model.transformer.{key}"] = value
    for key, value in vae.state_dict().items():
        state_dict[f"first_stage_model.{key}"] = value
    return {key: value.detach().contiguous().clone() for key, value in state_dict.items()}


@pytest.fixture(scope="session")
def tiny_sd15_checkpoint(comfyui: types.SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny SD1.5-shaped ``.safetensors`` checkpoint, built once per session in a tmp dir.

    UNet: SD1.5 block layout with the same 16 attention sites (input 1,2,4,5,7,8; middle 0;
    output 3..11), model_channels 32 (channels 32/64/128), 8 heads, context_dim 64, ~8.6 M
    parameters. Text encoder: 2-layer 64-wide CLIP (SD1.5 tokenizer, 77 tokens). VAE: TAESD
    format. Weights are seeded (TinySD15Spec.seed) and scaled to keep activations finite.
    The TinySD15 model config is registered, so ``comfy.sd.load_checkpoint_guess_config`` and
    ``CheckpointLoaderSimple`` load it; the file's folder is also added to ComfyUI's
    ``checkpoints`` search path, so prompts can use ``{"ckpt_name": path.name}``.
    """
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tiny_sd15")
    path = folder / TINY_SD15.file_name
    save_file(build_tiny_sd15_state_dict(comfyui, TINY_SD15), str(path))
    comfyui.folder_paths.add_model_folder_path("checkpoints", str(folder))
    return path


@pytest.fixture(scope="session")
def tiny_sd15(comfyui: types.SimpleNamespace, tiny_sd15_checkpoint: Path) -> tuple[Any, Any, Any]:
    """``(model_patcher, clip, vae)`` loaded from the tiny checkpoint by ComfyUI's loader.

    Exactly what ``CheckpointLoaderSimple`` returns: a ``comfy.model_patcher.ModelPatcher``
    (``.model`` is a BaseModel whose ``model_config`` is TinySD15, an SD15 subclass), a
    ``comfy.sd.CLIP`` (CONDITIONING ``[1, 77, 64]``) and a ``comfy.sd.VAE`` (TAESD). Shared by
    the whole session: ``model_patcher.clone()`` before adding patches.
    """
    model_patcher, clip, vae, _ = comfyui.sd.load_checkpoint_guess_config(
        str(tiny_sd15_checkpoint),
        output_vae=True,
        output_clip=True,
        embedding_directory=comfyui.folder_paths.get_folder_paths("embeddings"),
    )
    return model_patcher, clip, vae


# --------------------------------------------------------------------------------------------
# Sampling helpers
# --------------------------------------------------------------------------------------------


def encode_prompt(clip: Any, text: str) -> list:
    """CONDITIONING for ``text``, as the ``CLIPTextEncode`` node computes it (under inference_mode)."""
    import torch

    with torch.inference_mode():
        tokens = clip.tokenize(text)
        return clip.encode_from_tokens_scheduled(tokens)


def empty_latent(batch: int, height: int, width: int) -> dict[str, torch.Tensor]:
    """A LATENT like ``EmptyLatentImage``: ``{"samples": zeros (batch, 4, height/8, width/8)}``."""
    import comfy.model_management
    import torch

    if height % 8 or width % 8 or height <= 0 or width <= 0 or batch <= 0:
        raise ValueError(f"empty_latent needs batch > 0 and height/width positive multiples of 8, got {batch}, {height}x{width}")
    samples = torch.zeros([batch, 4, height // 8, width // 8], device=comfy.model_management.intermediate_device())
    return {"samples": samples}


def sample(
    model: Any,
    positive: list,
    negative: list,
    latent: dict[str, Any],
    *,
    steps: int,
    cfg: float,
    seed: int,
    sampler_name: str = "euler",
    scheduler: str = "normal",
    denoise: float = 1.0,
) -> torch.Tensor:
    """Denoise ``latent`` (a LATENT dict) like the ``KSampler`` node; return the samples tensor.

    Same calls as ``nodes.common_ksampler``: ``fix_empty_latent_channels``, noise from
    ``comfy.sample.prepare_noise(latent, seed, batch_index)``, the LATENT's ``noise_mask``, then
    ``comfy.sample.sample``, all under ``torch.inference_mode()`` as the server runs nodes. Only the
    preview callback and progress bar are left out (they do not change the numbers).
    """
    import comfy.sample
    import torch

    with torch.inference_mode():
        latent_image = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
        noise = comfy.sample.prepare_noise(latent_image, seed, latent.get("batch_index"))
        return comfy.sample.sample(
            model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
            denoise=denoise, noise_mask=latent.get("noise_mask"), callback=None, disable_pbar=True, seed=seed,
        )


def count_attn1_sites(model_patcher: Any) -> int:
    """Number of self-attention (``attn1``) modules in the patcher's UNet (SD1.5: 16)."""
    return sum(1 for name, _ in model_patcher.model.diffusion_model.named_modules() if name.endswith(".attn1"))


# --------------------------------------------------------------------------------------------
# Full-size SD1.5 UNet (slow tests, benchmarks)
# --------------------------------------------------------------------------------------------


def sd15_size_unet(comfyui: types.SimpleNamespace, *, seed: int = 0) -> Any:
    """A full-size SD1.5 UNet (model_channels 320, context_dim 768, 859.5 M params) in a ModelPatcher.

    Not a fixture and not run by default: about 3.4 GB of fp32 weights and 13-20 s to build and
    initialise on 2 CPU cores (one forward at a 16x16 latent: 6-8 s). The BaseModel is built by ComfyUI's own ``SD15`` model config
    (as ``load_checkpoint_guess_config`` would), weights seeded by ``init_weights_``; no VAE or
    text encoder and no checkpoint file. Use it for ``@pytest.mark.slow`` tests and benchmarks.
    """
    import torch

    model_config = comfyui.supported_models.SD15(sd15_unet_config(320, 768))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({})
    init_weights_(model.diffusion_model, seed)
    return comfyui.model_patcher.ModelPatcher(
        model,
        load_device=comfyui.model_management.get_torch_device(),
        offload_device=comfyui.model_management.unet_offload_device(),
    )


# --------------------------------------------------------------------------------------------
# Same weights in diffusers
# --------------------------------------------------------------------------------------------


def _diffusers_unet_kwargs(unet_config: dict[str, Any]) -> dict[str, Any]:
    """``UNet2DConditionModel`` constructor arguments for a ComfyUI SD1.x/2.x ``unet_config``.

    diffusers' ``attention_head_dim`` for these UNets is the NUMBER of heads per level: ComfyUI's
    ``num_heads`` when set, else ``channels // num_head_channels``.
    """
    model_channels = unet_config["model_channels"]
    channel_mult = unet_config["channel_mult"]
    num_res_blocks = unet_config["num_res_blocks"]
    depth_in = unet_config["transformer_depth"]
    depth_out = list(reversed(unet_config["transformer_depth_output"]))  # output block order
    if len(set(num_res_blocks)) != 1:
        raise ValueError(f"diffusers_unet_from_comfy needs equal num_res_blocks per level, got {num_res_blocks}")
    blocks_per_level = num_res_blocks[0]

    channels = [model_channels * mult for mult in channel_mult]
    heads = []
    for width in channels:
        if unet_config.get("num_heads", -1) != -1:
            heads.append(unet_config["num_heads"])
        else:
            heads.append(width // unet_config["num_head_channels"])
    down_depths = [depth_in[level * blocks_per_level] for level in range(len(channels))]
    up_depths = [depth_out[level * (blocks_per_level + 1)] for level in range(len(channels))]
    layers_per_transformer = {d for d in down_depths + up_depths if d > 0} | {unet_config["transformer_depth_middle"]}
    if len(layers_per_transformer) != 1:
        raise ValueError(f"diffusers_unet_from_comfy needs one transformer depth, got {sorted(layers_per_transformer)}")
    return {
        "in_channels": unet_config["in_channels"],
        "out_channels": unet_config["out_channels"],
        "down_block_types": tuple("CrossAttnDownBlock2D" if d > 0 else "DownBlock2D" for d in down_depths),
        "up_block_types": tuple("CrossAttnUpBlock2D" if d > 0 else "UpBlock2D" for d in up_depths),
        "block_out_channels": tuple(channels),
        "layers_per_block": blocks_per_level,
        "cross_attention_dim": unet_config["context_dim"],
        "attention_head_dim": tuple(heads) if len(set(heads)) > 1 else heads[0],
        "transformer_layers_per_block": layers_per_transformer.pop(),
        "use_linear_projection": bool(unet_config["use_linear_in_transformer"]),
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
    }


def diffusers_unet_from_comfy(model_patcher: Any) -> Any:
    """A ``diffusers.UNet2DConditionModel`` with the same architecture and the SAME weights.

    The key mapping is ComfyUI's own ``comfy.utils.unet_to_diffusers(unet_config)``; weights are
    the patcher's unpatched UNet weights (``model.diffusion_model``), copied, in fp32, eval mode.
    Asserts that every diffusers parameter was filled and every ComfyUI UNet weight was used.
    For an equivalence check: ComfyUI ``model.diffusion_model(x, timesteps, context)`` and
    diffusers ``unet(x, timesteps, encoder_hidden_states=context).sample`` take the same inputs.
    """
    import comfy.utils
    import torch
    from diffusers import UNet2DConditionModel

    unet_config = model_patcher.model.model_config.unet_config
    comfy_state = model_patcher.model.diffusion_model.state_dict()
    diffusers_to_comfy = comfy.utils.unet_to_diffusers(unet_config)
    converted = {
        diffusers_key: comfy_state[comfy_key].detach().to(torch.float32).clone()
        for diffusers_key, comfy_key in diffusers_to_comfy.items()
        if comfy_key in comfy_state
    }
    with torch.device("meta"):  # skip diffusers' own init: every tensor is assigned below
        unet = UNet2DConditionModel(**_diffusers_unet_kwargs(unet_config))
    missing, unexpected = unet.load_state_dict(converted, strict=False, assign=True)
    assert not missing, f"diffusers parameters not filled from ComfyUI weights: {sorted(missing)[:10]} (+{max(0, len(missing) - 10)})"
    assert not unexpected, f"converted keys diffusers does not have: {sorted(unexpected)[:10]}"
    left_on_meta = [name for name, t in [*unet.named_parameters(), *unet.named_buffers()] if t.is_meta]
    assert not left_on_meta, f"diffusers tensors with no ComfyUI value: {left_on_meta[:10]}"
    used = {diffusers_to_comfy[key] for key in converted}
    unused = sorted(set(comfy_state) - used)
    assert not unused, f"ComfyUI UNet weights left out of the conversion: {unused[:10]} (+{max(0, len(unused) - 10)})"
    return unet.eval()


# --------------------------------------------------------------------------------------------
# Node registry, custom-node loading, prompt execution
# --------------------------------------------------------------------------------------------


@contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """Collect WARNING-and-above log messages (ComfyUI reports import failures only there)."""
    records: list[str] = []

    class _ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = _ListHandler(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


def _core_node_ids(nodes_module: types.ModuleType) -> set[str]:
    """Ids of nodes that are not custom nodes: what ComfyUI passes as ``ignore`` to custom packs."""
    return {
        node_id
        for node_id, node_cls in nodes_module.NODE_CLASS_MAPPINGS.items()
        if not str(getattr(node_cls, "RELATIVE_PYTHON_MODULE", "nodes")).startswith("custom_nodes.")
    }


def load_pack(pack_dir: Path, *, custom_nodes_dir: Path, name_prefix: str = "atelier") -> list[str]:
    """Load ``pack_dir`` as a ComfyUI custom node under a random folder/module name; return its node ids.

    A symlink ``<custom_nodes_dir>/<name_prefix>_<8 hex>`` -> ``pack_dir`` is loaded with
    ``nodes.load_custom_node(path, ignore=<core ids>, module_parent="custom_nodes")``, exactly
    as ComfyUI's startup does for each custom-node folder (core ids win over the pack's; V1
    ``NODE_CLASS_MAPPINGS`` or V3 ``comfy_entrypoint``), wrapped in the same
    ``hook_breaker_ac10a0`` save/restore. Needs the node registry (``comfy_node_registry``).
    Raises AssertionError with ComfyUI's logged traceback when the pack does not load.
    The node classes get ``RELATIVE_PYTHON_MODULE == "custom_nodes.<name>"``; the ids returned are
    those classes, i.e. the ones the pack actually registered.
    """
    import hook_breaker_ac10a0

    import nodes

    module_name = f"{name_prefix}_{uuid.uuid4().hex[:8]}"
    link = Path(custom_nodes_dir) / module_name
    link.symlink_to(Path(pack_dir).resolve(), target_is_directory=True)
    hook_breaker_ac10a0.save_functions()
    try:
        with _captured_warnings() as warnings:
            loaded = asyncio.run(nodes.load_custom_node(str(link), ignore=_core_node_ids(nodes), module_parent="custom_nodes"))
    finally:
        hook_breaker_ac10a0.restore_functions()
    if not loaded:
        details = "\n".join(warnings) or "(ComfyUI logged nothing)"
        raise AssertionError(f"ComfyUI could not load the custom node pack {pack_dir} as {module_name}:\n{details}")
    relative_module = f"custom_nodes.{module_name}"
    return [
        node_id
        for node_id, node_cls in nodes.NODE_CLASS_MAPPINGS.items()
        if getattr(node_cls, "RELATIVE_PYTHON_MODULE", None) == relative_module
    ]


@pytest.fixture(scope="session")
def comfy_node_registry(comfyui: types.SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    """ComfyUI's node registry, initialised in-process as the server does, with no custom nodes.

    Runs ``nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False)`` once, and
    points ComfyUI's output, temp (PreviewImage) and input (LoadImage) directories at fresh tmp
    folders, so nothing is written into the checkout. Returns a namespace: ``nodes``,
    ``execution``, ``folder_paths``, ``output_dir``, ``temp_dir``, ``input_dir``,
    ``custom_nodes_dir`` (for ``load_pack``) and ``import_failed`` (comfy_extras files ComfyUI
    could not import, e.g. the audio nodes without torchaudio).
    """
    import execution
    import hook_breaker_ac10a0

    import nodes

    folder_paths = comfyui.folder_paths
    base = tmp_path_factory.mktemp("comfy_dirs")
    dirs = {name: base / name for name in ("output", "temp", "input", "custom_nodes")}
    for folder in dirs.values():
        folder.mkdir()
    folder_paths.set_output_directory(str(dirs["output"]))
    folder_paths.set_temp_directory(str(dirs["temp"]))
    folder_paths.set_input_directory(str(dirs["input"]))

    hook_breaker_ac10a0.save_functions()
    try:
        with _captured_warnings() as warnings:
            asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    finally:
        hook_breaker_ac10a0.restore_functions()
    import_failed = sorted({line.split("IMPORT FAILED: ", 1)[1] for line in warnings if "IMPORT FAILED: " in line})
    if import_failed:
        logger.warning("comfy_extras files ComfyUI could not import here: %s", ", ".join(import_failed))
    return types.SimpleNamespace(
        nodes=nodes,
        execution=execution,
        folder_paths=folder_paths,
        output_dir=dirs["output"],
        temp_dir=dirs["temp"],
        input_dir=dirs["input"],
        custom_nodes_dir=dirs["custom_nodes"],
        import_failed=import_failed,
    )


@pytest.fixture(scope="session")
def comfy_server_nodes(comfy_node_registry: types.SimpleNamespace) -> dict[str, type]:
    """``nodes.NODE_CLASS_MAPPINGS`` with core nodes AND the Atelier pack loaded as a custom node.

    The repository root (the directory holding ``tests/``) is loaded by ``load_pack`` under a
    random folder/module name ``atelier_<8 hex>``, as ComfyUI loads a cloned pack, so nothing may
    depend on the folder being called ``atelier``. The pack's ids are those whose class has
    ``RELATIVE_PYTHON_MODULE`` starting with ``"custom_nodes.atelier_"`` (see ``pack_node_ids``).
    Note the loaded copy is a different module tree from the installed ``atelier`` package that
    tests import: its classes are not the same objects. Fails if the pack does not load or
    registers no node.
    """
    node_ids = load_pack(REPO_ROOT, custom_nodes_dir=comfy_node_registry.custom_nodes_dir, name_prefix="atelier")
    assert node_ids, f"the Atelier pack at {REPO_ROOT} loaded but registered no node"
    return comfy_node_registry.nodes.NODE_CLASS_MAPPINGS


def pack_node_ids(node_class_mappings: dict[str, type], name_prefix: str = "atelier") -> list[str]:
    """Ids in ``node_class_mappings`` registered by a pack loaded by ``load_pack`` with ``name_prefix``."""
    prefix = f"custom_nodes.{name_prefix}_"
    return [
        node_id
        for node_id, node_cls in node_class_mappings.items()
        if str(getattr(node_cls, "RELATIVE_PYTHON_MODULE", "")).startswith(prefix)
    ]


class HeadlessPromptServer:
    """Stand-in for ``server.PromptServer`` with what ``execution.PromptExecutor`` uses; no HTTP.

    ``PromptExecutor`` and its progress handler read ``client_id``, ``last_node_id`` and
    ``sockets_metadata`` and call ``send_sync(event, data, sid)`` and ``queue_updated()``. Every
    message is kept in ``messages`` as ``(event, data)`` so tests can see what a client would.
    """

    def __init__(self) -> None:
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.sockets_metadata: dict[str, dict] = {}
        self.messages: list[tuple[Any, Any]] = []

    def send_sync(self, event: Any, data: Any, sid: str | None = None) -> None:
        """Record a message the server would push to the websocket client ``sid``."""
        self.messages.append((event, data))

    def queue_updated(self) -> None:
        """Nothing to notify: there is no queue."""


def new_prompt_executor() -> Any:
    """A fresh ``execution.PromptExecutor`` (classic cache, as the server default) on a HeadlessPromptServer.

    Pass the same executor to several ``execute_prompt`` calls to get the server's caching across
    prompts (unchanged nodes are not executed again); a new one starts with empty caches.
    """
    import execution

    return execution.PromptExecutor(HeadlessPromptServer(), cache_type=execution.CacheType.CLASSIC)


def _format_validation_failure(error: dict | None, node_errors: dict) -> str:
    """ComfyUI's validation error and per-node errors as readable text."""
    lines = []
    if error:
        lines.append(f"{error.get('message', '')}: {error.get('details', '')}".strip())
    for node_id, entry in node_errors.items():
        for reason in entry.get("errors", []):
            lines.append(f"node {node_id} ({entry.get('class_type')}): {reason.get('message')}: {reason.get('details')}")
    return "\n".join(lines) or "(no details)"


def execute_prompt(api_prompt: dict, *, executor: Any | None = None) -> dict[str, Any]:
    """Validate and execute an API-format prompt in-process, as ``POST /prompt`` plus the worker do.

    Validation is ComfyUI's ``execution.validate_prompt``; any error (including an output node
    that fails validation while others pass, which the server would silently drop) raises
    AssertionError with ComfyUI's messages. Execution is ``execution.PromptExecutor.execute`` on
    the validated outputs (it runs under ``torch.inference_mode()`` itself); a node exception
    raises AssertionError with the node, exception type, message and traceback. Needs the
    ``comfy_node_registry`` (or ``comfy_server_nodes``) fixture, which also puts the output
    directory in tmp. ``executor``: reuse one from ``new_prompt_executor()`` to keep caches.

    Returns the history entry a client would read: ``prompt_id``, ``outputs`` (UI outputs per
    node, e.g. SaveImage's ``{"images": [{"filename", "subfolder", "type"}]}``), ``meta``,
    ``status`` (``status_str``, ``completed``, ``messages``), plus ``executed_nodes`` (ids that
    actually ran, in order; cached ones are absent) and ``cached_nodes``.
    """
    import execution
    import folder_paths

    default_output = Path(folder_paths.base_path, "output").resolve()
    if Path(folder_paths.get_output_directory()).resolve() == default_output:
        raise RuntimeError(
            "execute_prompt would write into the ComfyUI checkout: request the comfy_node_registry "
            "or comfy_server_nodes fixture first (it initialises nodes and a tmp output directory)"
        )
    prompt = copy.deepcopy(api_prompt)
    prompt_id = str(uuid.uuid4())
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
    if not valid or node_errors:
        raise AssertionError("ComfyUI rejected the prompt:\n" + _format_validation_failure(error, node_errors))

    executor = executor if executor is not None else new_prompt_executor()
    server = executor.server
    first_message = len(server.messages)
    executor.execute(prompt, prompt_id, {"client_id": TEST_CLIENT_ID}, outputs)
    messages = server.messages[first_message:]
    if not executor.success:
        failures = [data for event, data in messages if event == "execution_error"]
        if failures:
            f = failures[-1]
            raise AssertionError(
                f"node {f['node_id']} ({f['node_type']}) failed: {f['exception_type']}: {f['exception_message']}\n"
                + "".join(f.get("traceback", []))
            )
        raise AssertionError(f"ComfyUI did not complete the prompt; messages: {messages}")

    executed_nodes = [data["node"] for event, data in messages if event == "executing" and data.get("node") is not None]
    cached_nodes = next((data["nodes"] for event, data in messages if event == "execution_cached"), [])
    return {
        "prompt_id": prompt_id,
        "outputs": executor.history_result["outputs"],
        "meta": executor.history_result["meta"],
        "status": {
            "status_str": "success",
            "completed": True,
            "messages": copy.deepcopy(executor.status_messages),
        },
        "executed_nodes": executed_nodes,
        "cached_nodes": list(cached_nodes),
    }


def _v1_node_info(node_id: str, node_cls: type, display_names: dict[str, str]) -> dict[str, Any]:
    """``/object_info`` entry for a V1 (``INPUT_TYPES``) node, with the fields server.py reports."""
    input_types = node_cls.INPUT_TYPES()
    info: dict[str, Any] = {
        "input": input_types,
        "input_order": {section: list(entries.keys()) for section, entries in node_cls.INPUT_TYPES().items()},
        "output": node_cls.RETURN_TYPES,
        "output_is_list": getattr(node_cls, "OUTPUT_IS_LIST", [False] * len(node_cls.RETURN_TYPES)),
        "output_name": getattr(node_cls, "RETURN_NAMES", node_cls.RETURN_TYPES),
        "name": node_id,
        "display_name": display_names.get(node_id, node_id),
        "description": getattr(node_cls, "DESCRIPTION", ""),
        "python_module": getattr(node_cls, "RELATIVE_PYTHON_MODULE", "nodes"),
        "category": getattr(node_cls, "CATEGORY", "sd"),
        "output_node": getattr(node_cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(node_cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = node_cls.OUTPUT_TOOLTIPS
    if getattr(node_cls, "DEPRECATED", False):
        info["deprecated"] = True
    if getattr(node_cls, "EXPERIMENTAL", False):
        info["experimental"] = True
    if hasattr(node_cls, "API_NODE"):
        info["api_node"] = node_cls.API_NODE
    return info


def pack_object_info(node_ids: list[str]) -> dict[str, Any]:
    """What ``GET /object_info`` returns for ``node_ids``, as parsed JSON: ``{id: info}``.

    V3 nodes (``comfy_api`` ``io.ComfyNode``) report ``GET_NODE_INFO_V1()``, as server.py does;
    V1 nodes report the same fields server.py builds from ``INPUT_TYPES``/``RETURN_TYPES`` etc.
    The dict goes through a JSON round trip (tuples become lists), like the HTTP response.
    Unknown ids raise KeyError. Needs the node registry fixture.
    """
    from comfy_api.internal import _ComfyNodeInternal

    import nodes

    info = {}
    for node_id in node_ids:
        if node_id not in nodes.NODE_CLASS_MAPPINGS:
            raise KeyError(f"node id {node_id!r} is not registered in ComfyUI's NODE_CLASS_MAPPINGS")
        node_cls = nodes.NODE_CLASS_MAPPINGS[node_id]
        if issubclass(node_cls, _ComfyNodeInternal):
            info[node_id] = node_cls.GET_NODE_INFO_V1()
        else:
            info[node_id] = _v1_node_info(node_id, node_cls, nodes.NODE_DISPLAY_NAME_MAPPINGS)
    return json.loads(json.dumps(info))


TINY_CLIP_VISION = {
    "hidden_act": "quick_gelu", "hidden_size": 32, "image_size": 32, "intermediate_size": 64,
    "layer_norm_eps": 1e-05, "model_type": "clip_vision_model", "num_attention_heads": 2, "num_channels": 3,
    "num_hidden_layers": 2, "patch_size": 8, "projection_dim": 24,
}


def tiny_clip_vision(tmp_path, **overrides):
    """A ComfyUI CLIP_VISION (what Load CLIP Vision returns) with random weights from transformers."""
    import comfy.clip_vision
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(3)
    config = dict(TINY_CLIP_VISION, **overrides)
    fields = {key: value for key, value in config.items() if key != "model_type"}
    reference = CLIPVisionModelWithProjection(CLIPVisionConfig(**fields)).eval()
    config_path = tmp_path / "tiny_clip_vision.json"
    config_path.write_text(json.dumps(config))
    clip_vision = comfy.clip_vision.ClipVisionModel(str(config_path))
    missing, _ = clip_vision.load_sd(reference.state_dict())
    assert not missing, missing
    return clip_vision
