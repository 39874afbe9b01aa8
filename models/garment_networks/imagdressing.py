"""IMAGDressing-v1 (muzishen/IMAGDressing, AAAI 2025): its published weights on Atelier's mechanism.

The published file ``IMAGDressing-v1_512.pt`` (HF ``feishen29/IMAGDressing``; fp16 pickle of
``{"module": OrderedDict}``; only ``_rebuild_tensor_v2``/``HalfStorage``/``OrderedDict`` inside, so
``torch.load(weights_only=True)`` reads it) holds, as saved by DeepSpeed from train.py's ``SDModel``:

- ``ref_unet.*``: the garment UNet, a complete diffusers SD1.5 ``UNet2DConditionModel`` (4 input
  channels, cross-attention kept; 686 keys), trained in full;
- ``proj.*``: IP-Adapter-Plus's ``Resampler`` (dim 768, depth 4, 12 heads × 64, 16 queries,
  embedding_dim 1280 = CLIP ViT-H/14, output_dim 768, ff_mult 4), trained;
- ``adapter_modules.{2j}.to_k_ref.weight`` / ``.to_v_ref.weight``: (C, C), no bias, on the 16 attn1
  processors of the denoiser (index order in imagdressing_layout.py), initialised from the base
  to_k / to_v and trained;
- ``unet.*``: the frozen SD1.5 denoiser of training (its ``…attn1.processor.to_{k,v}_ref.weight``
  keys alias the adapter tensors). The public inference collects it and never loads it; the user's
  MODEL is the denoiser, so it is ignored here and dropped on conversion.

The public pipeline (dressing_sd/pipelines/IMAGDressing_v1_pipeline.py):

1. Garment pass, once before the first step: ``ref_unet(z_g, t=0, Resampler(CLIP_ViT-H(g).hidden_states[-2]))``
   with z_g = VAE(g).latent_dist.mean × 0.18215; every attn1's processor input norm1(x) is banked.
2. Denoiser, attn1 of each site (RefSAttnProcessor2_0), before to_out:
   ``Z = Softmax(QKᵀ/√d)V + scale · Softmax(Q K_refᵀ/√d) V_ref``, K_ref = F·W_k_refᵀ, V_ref = F·W_v_refᵀ,
   Q the layer's own queries, the layer's heads (8 in SD1.5), separate softmax over the garment
   tokens only. That is Atelier's CROSS read with W'k = to_k_ref, W'v = to_v_ref and λ = scale.
3. CFG: the conditional pass (prompt) reads the garment, the unconditional one (negative prompt)
   reads nothing: Atelier's ``uncond = none``.

Pure torch; no ComfyUI import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import WeightFileError
from ..reference_config import (
    ReadMode,
    ReferenceConfig,
    ReferenceSize,
    Refresh,
    UncondPolicy,
)
from ..reference_projections import ReferenceProjections
from ..sites import SD15_CHANNEL_MULT, SD15_SITES, SITE_GROUPS
from .files import unwrap_state_dict
from .imagdressing_layout import ADAPTER_INDEX_TO_SITE, PROCESSOR_COUNT
from .sd15_layout import sd15_diffusers_unet_keys

FAMILY = "imagdressing"
DISPLAY_NAME = "IMAGDressing-v1"

GARMENT_UNET_PREFIX = "ref_unet."
RESAMPLER_PREFIX = "proj."
ADAPTER_PREFIX = "adapter_modules."
BASE_UNET_PREFIX = "unet."  # the frozen training denoiser: recognised, not used

# Defaults of the public inference (inference_IMAGdressing.py, IMAGDressing_v1_pipeline.py).
PUBLISHED_STEPS = 50  # DDIM, scaled_linear 0.00085–0.012, steps_offset 1, set_alpha_to_one False
PUBLISHED_GUIDANCE = 7.5
PUBLISHED_SCALE = 1.0  # image_scale: λ of the garment read
PUBLISHED_WIDTH, PUBLISHED_HEIGHT = 512, 640
PUBLISHED_PROMPT_SUFFIX = ", best quality, high quality"
PUBLISHED_NEGATIVE = "bare, naked, nude, undressed, monochrome, lowres, bad anatomy, worst quality, low quality"
PUBLISHED_VAE_SCALE = 0.18215
PUBLISHED_DIM_HEAD = 64  # the Resampler's head width; shapes give only heads × dim_head

_ADAPTER_KEY = re.compile(r"^adapter_modules\.(\d+)\.(.+)$")


class ImagDressingFileError(WeightFileError):
    """An IMAGDressing-v1 file is of another family, truncated, or has a key or shape we do not expect."""


# ---------------------------------------------------------------- reading and recognising the file


def matches(keys: Iterable[str]) -> bool:
    """Whether a (flat) key set is IMAGDressing-v1's: garment-UNet, Resampler and to_k_ref/to_v_ref
    keys all present. A plain diffusers UNet (MagicClothing, OMS), an IP-Adapter or an Atelier file
    has none of the three prefixes."""
    has_unet = has_proj = has_adapter = False
    for key in keys:
        key = key.removeprefix("module.")
        has_unet = has_unet or key.startswith(GARMENT_UNET_PREFIX)
        has_proj = has_proj or key.startswith(RESAMPLER_PREFIX)
        has_adapter = has_adapter or bool(_ADAPTER_KEY.match(key)) and key.endswith(("to_k_ref.weight", "to_v_ref.weight"))
    return has_unet and has_proj and has_adapter


def describe_family(keys: Iterable[str]) -> str:
    """A short guess at what a non-IMAGDressing file is, for error messages."""
    keys = list(keys)
    if matches(keys):
        return DISPLAY_NAME
    if any(key.startswith(("image_proj.", "ip_adapter.")) for key in keys):
        return "an IP-Adapter file"
    if any(key.startswith("model.diffusion_model.") for key in keys):
        return "a full LDM/ComfyUI checkpoint"
    if "conv_in.weight" in keys and any(key.startswith("down_blocks.") for key in keys):
        return "a bare diffusers UNet (e.g. MagicClothing/OMS garment UNet or a base SD1.5 UNet)"
    if any(key.startswith(("input_blocks.", "middle_block.")) for key in keys):
        return "a bare LDM UNet"
    if any(key.startswith(("reference_proj.", "anydressing_", "igr_", "truepose_")) for key in keys):
        return "an Atelier weight file"
    return f"an unknown layout (first keys: {sorted(keys)[:3]})"


# ---------------------------------------------------------------- the Resampler


@dataclass(frozen=True)
class ResamplerConfig:
    """IP-Adapter-Plus's Resampler as IMAGDressing builds it (defaults: the published SD1.5 file)."""

    dim: int = 768
    depth: int = 4
    dim_head: int = PUBLISHED_DIM_HEAD
    heads: int = 12
    num_queries: int = 16
    embedding_dim: int = 1280
    output_dim: int = 768
    ff_mult: int = 4

    @property
    def inner_dim(self) -> int:
        return self.dim_head * self.heads

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], dim_head: int = PUBLISHED_DIM_HEAD,
                        source: str = "state dict", prefix: str = "") -> ResamplerConfig:
        """The config whose shapes ``state`` (Resampler keys, ``prefix`` stripped) has; the head width
        is not in the shapes and is ``dim_head`` (64 in the published model)."""

        def shape(key: str) -> tuple[int, ...]:
            if key not in state:
                raise ImagDressingFileError(f"{source}: missing Resampler key '{prefix}{key}'")
            return tuple(state[key].shape)

        _, num_queries, dim = shape("latents")
        embedding_dim = shape("proj_in.weight")[1]
        output_dim = shape("proj_out.weight")[0]
        depth = len({int(m.group(1)) for key in state if (m := re.match(r"layers\.(\d+)\.", key))})
        inner = shape("layers.0.0.to_q.weight")[0]
        ff_inner = shape("layers.0.1.1.weight")[0]
        if inner % dim_head or ff_inner % dim:
            raise ImagDressingFileError(
                f"{source}: Resampler width {inner} ('{prefix}layers.0.0.to_q.weight') is not a multiple of the head "
                f"width {dim_head}, or its feed-forward width {ff_inner} not a multiple of {dim}"
            )
        return cls(dim=dim, depth=depth, dim_head=dim_head, heads=inner // dim_head, num_queries=num_queries,
                   embedding_dim=embedding_dim, output_dim=output_dim, ff_mult=ff_inner // dim)


class PerceiverAttention(nn.Module):
    """The latents attend to [image features; latents] (keys/values over both)."""

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__()
        self.dim_head = dim_head
        self.heads = heads
        inner = dim_head * heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _heads(self, tensor: torch.Tensor) -> torch.Tensor:
        batch, length, _ = tensor.shape
        return tensor.reshape(batch, length, self.heads, self.dim_head).transpose(1, 2)  # (B, H, L, D)

    def forward(self, features: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        features = self.norm1(features)  # (B, N, dim)
        latents = self.norm2(latents)  # (B, Q, dim)
        q = self._heads(self.to_q(latents))
        k, v = (self._heads(t) for t in self.to_kv(torch.cat([features, latents], dim=1)).chunk(2, dim=-1))
        # 1/√D split as D^-1/4 on each side, softmax in fp32: as the public code, for fp16 stability
        gain = self.dim_head ** -0.25
        logits = (q * gain) @ (k * gain).transpose(-2, -1)  # (B, H, Q, N + Q)
        weights = torch.softmax(logits.float(), dim=-1).to(logits.dtype)
        out = (weights @ v).transpose(1, 2).reshape(latents.shape[0], latents.shape[1], -1)  # (B, Q, inner)
        return self.to_out(out)


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    # indices 0..3 are part of the key names (layers.i.1.{0,1,3})
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class Resampler(nn.Module):
    """IP-Adapter-Plus's Perceiver Resampler: CLIP penultimate tokens (B, N, embedding_dim) ->
    ``num_queries`` context tokens (B, Q, output_dim). State-dict keys equal the public module's."""

    def __init__(self, config: ResamplerConfig = ResamplerConfig()) -> None:
        super().__init__()
        self.config = config
        self.latents = nn.Parameter(torch.randn(1, config.num_queries, config.dim) / math.sqrt(config.dim))
        self.proj_in = nn.Linear(config.embedding_dim, config.dim)
        self.proj_out = nn.Linear(config.dim, config.output_dim)
        self.norm_out = nn.LayerNorm(config.output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(config.dim, config.dim_head, config.heads), _feed_forward(config.dim, config.ff_mult)])
            for _ in range(config.depth)
        )

    def forward(self, image_states: torch.Tensor) -> torch.Tensor:
        features = self.proj_in(image_states)  # (B, N, dim)
        latents = self.latents.expand(image_states.shape[0], -1, -1)  # (B, Q, dim)
        for attention, feed_forward in self.layers:
            latents = attention(features, latents) + latents
            latents = feed_forward(latents) + latents
        return self.norm_out(self.proj_out(latents))  # (B, Q, output_dim)


# ---------------------------------------------------------------- splitting the file


@dataclass(frozen=True, eq=False)
class ImagDressingParts:
    """The published file, split for Atelier.

    Args:
        garment_unet: the garment UNet's state dict, diffusers key names (``ref_unet.`` stripped).
        resampler: the Resampler's state dict (``proj.`` stripped); ``resampler_config`` its shapes.
        reference_kv: site name -> (to_k_ref weight, to_v_ref weight), each (C, C); no biases exist.
        model_channels: the garment UNet's base width (320 for the published SD1.5 file).
        context_dim: its cross-attention width = the Resampler's output width (768).
        ignored_keys: keys recognised and not used (the frozen ``unet.*`` training denoiser).
    """

    garment_unet: dict[str, torch.Tensor]
    resampler: dict[str, torch.Tensor]
    resampler_config: ResamplerConfig
    reference_kv: dict[str, tuple[torch.Tensor, torch.Tensor]]
    model_channels: int
    context_dim: int
    ignored_keys: tuple[str, ...] = ()


def _first(keys: Iterable[str], count: int = 5) -> list[str]:
    return sorted(keys)[:count]


def _adapter_hint(key: str) -> str:
    match = _ADAPTER_KEY.match(key)
    if match is None:
        return ""
    index, rest = int(match.group(1)), match.group(2)
    if "lora" in rest:
        return " (a LoRA processor key: the LoRA variants are not in the published file)"
    if index % 2 == 1 and index < PROCESSOR_COUNT:
        return f" (index {index} is an attn2 processor; IMAGDressing-v1 has weights only on attn1, even indices)"
    if index >= PROCESSOR_COUNT:
        return f" (SD1.5 has {PROCESSOR_COUNT} attention processors, indices 0..{PROCESSOR_COUNT - 1})"
    return " (expected only to_k_ref.weight and to_v_ref.weight, without bias)"


def split_state_dict(state: Mapping[str, torch.Tensor] | Mapping[str, object], source: str = "state dict",
                     dim_head: int = PUBLISHED_DIM_HEAD) -> ImagDressingParts:
    """Split a published IMAGDressing-v1 state dict (``{"module": …}`` or flat) and check it.

    Every key must be consumed: a missing or unexpected key, a wrong shape or another family raises
    ImagDressingFileError naming ``source`` and the file key that is wrong.
    """
    tensors = unwrap_state_dict(state, source)
    if not matches(tensors):
        raise ImagDressingFileError(
            f"{source} is not an {DISPLAY_NAME} file: it looks like {describe_family(tensors)}; expected "
            f"{DISPLAY_NAME} (keys '{GARMENT_UNET_PREFIX}*', '{RESAMPLER_PREFIX}*', "
            f"'{ADAPTER_PREFIX}<i>.to_k_ref.weight')"
        )
    garment_unet: dict[str, torch.Tensor] = {}
    resampler: dict[str, torch.Tensor] = {}
    adapter: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    unexpected: list[str] = []
    for key, value in tensors.items():
        if key.startswith(GARMENT_UNET_PREFIX):
            garment_unet[key[len(GARMENT_UNET_PREFIX):]] = value
        elif key.startswith(RESAMPLER_PREFIX):
            resampler[key[len(RESAMPLER_PREFIX):]] = value
        elif key.startswith(ADAPTER_PREFIX):
            adapter[key] = value
        elif key.startswith(BASE_UNET_PREFIX):
            ignored.append(key)
        else:
            unexpected.append(key)
    if unexpected:
        raise ImagDressingFileError(
            f"{source}: {len(unexpected)} key(s) outside the {DISPLAY_NAME} groups "
            f"({GARMENT_UNET_PREFIX}, {RESAMPLER_PREFIX}, {ADAPTER_PREFIX}, {BASE_UNET_PREFIX}), e.g. {_first(unexpected)}"
        )

    # garment UNet: the full SD1.5 diffusers key set
    expected_unet = sd15_diffusers_unet_keys()
    missing = expected_unet - set(garment_unet)
    if missing:
        raise ImagDressingFileError(
            f"{source}: the garment UNet lacks {len(missing)} of its {len(expected_unet)} keys, e.g. "
            f"{[GARMENT_UNET_PREFIX + k for k in _first(missing)]}; the file is truncated or not SD1.5"
        )
    extra = set(garment_unet) - expected_unet
    if extra:
        raise ImagDressingFileError(
            f"{source}: unexpected garment-UNet key(s) {[GARMENT_UNET_PREFIX + k for k in _first(extra)]}; "
            f"expected a diffusers SD1.5 UNet2DConditionModel"
        )
    conv_in = tuple(garment_unet["conv_in.weight"].shape)
    if len(conv_in) != 4 or conv_in[1] != 4:
        raise ImagDressingFileError(
            f"{source}: '{GARMENT_UNET_PREFIX}conv_in.weight' is {conv_in}; the garment UNet must take 4 latent channels"
        )
    model_channels = conv_in[0]
    context_dim = garment_unet["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"].shape[1]
    for site in SD15_SITES:
        key = f"{site.diffusers_attn1}.to_k.weight"
        width = site.channels(model_channels)
        if tuple(garment_unet[key].shape) != (width, width):
            raise ImagDressingFileError(
                f"{source}: '{GARMENT_UNET_PREFIX}{key}' is {tuple(garment_unet[key].shape)}, expected ({width}, {width}) "
                f"for an SD1.5 layout of base width {model_channels} (channel mult {SD15_CHANNEL_MULT})"
            )

    # adapter: to_k_ref / to_v_ref on the 16 attn1 processors
    expected_adapter = {
        f"{ADAPTER_PREFIX}{index}.{name}.weight": site
        for index, site in ADAPTER_INDEX_TO_SITE.items()
        for name in ("to_k_ref", "to_v_ref")
    }
    missing = set(expected_adapter) - set(adapter)
    if missing:
        raise ImagDressingFileError(
            f"{source}: {len(missing)} reference projection(s) missing, e.g. {_first(missing)}; the file is truncated"
        )
    extra = sorted(set(adapter) - set(expected_adapter))
    if extra:
        raise ImagDressingFileError(f"{source}: unexpected adapter key '{extra[0]}'{_adapter_hint(extra[0])}")
    reference_kv: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for index, site in ADAPTER_INDEX_TO_SITE.items():
        width = site.channels(model_channels)
        pair = []
        for name in ("to_k_ref", "to_v_ref"):
            key = f"{ADAPTER_PREFIX}{index}.{name}.weight"
            if tuple(adapter[key].shape) != (width, width):
                raise ImagDressingFileError(
                    f"{source}: '{key}' (site {site.name}) is {tuple(adapter[key].shape)}, expected ({width}, {width}) "
                    f"for base width {model_channels}"
                )
            pair.append(adapter[key])
        reference_kv[site.name] = (pair[0], pair[1])

    # Resampler: every key and shape of the config its shapes imply
    config = ResamplerConfig.from_state_dict(resampler, dim_head=dim_head, source=source, prefix=RESAMPLER_PREFIX)
    with torch.device("meta"):
        reference = Resampler(config).state_dict()
    missing = set(reference) - set(resampler)
    extra = set(resampler) - set(reference)
    if missing or extra:
        raise ImagDressingFileError(
            f"{source}: Resampler keys do not match a depth-{config.depth} IP-Adapter Resampler: missing "
            f"{[RESAMPLER_PREFIX + k for k in _first(missing)]}, unexpected {[RESAMPLER_PREFIX + k for k in _first(extra)]}"
        )
    for key, value in reference.items():
        if value.shape != resampler[key].shape:
            raise ImagDressingFileError(
                f"{source}: '{RESAMPLER_PREFIX}{key}' is {tuple(resampler[key].shape)}, expected {tuple(value.shape)}"
            )
    if config.output_dim != context_dim:
        raise ImagDressingFileError(
            f"{source}: the Resampler outputs {config.output_dim}-wide tokens ('{RESAMPLER_PREFIX}proj_out.weight') but "
            f"the garment UNet's cross-attention takes {context_dim}"
        )
    return ImagDressingParts(
        garment_unet=garment_unet, resampler=resampler, resampler_config=config, reference_kv=reference_kv,
        model_channels=model_channels, context_dim=context_dim, ignored_keys=tuple(sorted(ignored)),
    )


# ---------------------------------------------------------------- onto Atelier's mechanism


def build_resampler(parts: ImagDressingParts) -> Resampler:
    """The Resampler with the file's weights (on the CPU, in the file's dtype)."""
    with torch.device("meta"):
        module = Resampler(parts.resampler_config)
    module.load_state_dict(parts.resampler, strict=True, assign=True)
    return module


def reference_projections(parts: ImagDressingParts) -> ReferenceProjections:
    """W'k = to_k_ref, W'v = to_v_ref per site: with these, Atelier's CROSS read
    ``plain + λ·Softmax(QK'ᵀ/√d)V'`` (before to_out) is RefSAttnProcessor2_0 with scale = λ."""
    dims = {name: (weight_k.shape[1], weight_k.shape[0]) for name, (weight_k, _) in parts.reference_kv.items()}
    dtype = next(iter(parts.reference_kv.values()))[0].dtype
    with torch.device("meta"):
        projections = ReferenceProjections(dims)
    projections.to_empty(device="cpu").to(dtype)
    projections.initialise_from(parts.reference_kv)
    return projections.requires_grad_(False)


def reference_config(scale: float = PUBLISHED_SCALE) -> ReferenceConfig:
    """The public inference as a ReferenceConfig: CROSS read at all 16 sites with λ = ``scale``,
    garment banked once at t = 0, unconditional pass without the garment, garment grid as is."""
    return ReferenceConfig(
        mode=ReadMode.CROSS, strength=scale, site_weights={name: 1.0 for name in SITE_GROUPS["all"]},
        uncond=UncondPolicy.NONE, refresh=Refresh.ONCE, reference_size=ReferenceSize.AS_IS,
    )


def converted_state_dict(parts: ImagDressingParts) -> dict[str, torch.Tensor]:
    """The used tensors under their published key names (no ``unet.*``, whose processor keys alias the
    adapter tensors), contiguous, for a one-time safetensors conversion that ``split_state_dict`` reads back."""
    tensors = {GARMENT_UNET_PREFIX + key: value for key, value in parts.garment_unet.items()}
    tensors.update({RESAMPLER_PREFIX + key: value for key, value in parts.resampler.items()})
    for index, site in ADAPTER_INDEX_TO_SITE.items():
        weight_k, weight_v = parts.reference_kv[site.name]
        tensors[f"{ADAPTER_PREFIX}{index}.to_k_ref.weight"] = weight_k
        tensors[f"{ADAPTER_PREFIX}{index}.to_v_ref.weight"] = weight_v
    return {key: value.detach().to("cpu").contiguous() for key, value in tensors.items()}
