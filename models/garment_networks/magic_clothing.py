"""MagicClothing / OMS-Diffusion (ShineChen1024/MagicClothing@5f88a2e, earlyAccess@44aa9cc): the
published garment UNet mapped onto Atelier's reference attention. Pure torch, no ComfyUI import.

What the public code does (verified in ``garment_adapter/garment_diffusion.py``,
``garment_adapter/attention_processor.py``, ``pipelines/OmsDiffusionPipeline.py``):

- **File.** ``magic_clothing_768_vitonhd_joint.safetensors`` and
  ``early_access/OMS_1024_VTHD+DressCode_200000.safetensors`` (HF ShineChen1024/MagicClothing, 3.44 GB
  each = the 859,520,964 parameters of a whole SD1.5 UNet in fp32) hold a *whole* diffusers
  ``UNet2DConditionModel`` state dict: plain diffusers keys, no prefix, no extra layer. The loader
  deep-copies the pipeline's UNet and ``load_state_dict(file, strict=False)``s the file into it, so a
  key missing from a file would silently come from the base UNet (``merge_with_base``); with the
  published files nothing is filled. Such a file cannot be told apart from any other SD1.5 diffusers
  UNet by its keys: every complete SD1.5 UNet in that layout is read as MagicClothing reads its garment
  UNet (magic_clothing_network.py).
- **Garment pass.** Once per generation, before sampling: the garment image (background masked to
  0 in [-1, 1], resized to the *output* height × width) → ``vae.encode(..).latent_dist.mode() *
  0.18215`` → ``ref_unet(latent, timestep 0, CLIP("") of the pipeline's own text encoder)``. Every
  attn1 (all 16 sites) stores its input, ``norm1(x)`` (processor type "read" = store).
- **Read** (processor type "write" in the denoiser, all 16 attn1): ``h = cat([n, g], tokens)``;
  q, k, v = the denoiser's own ``to_q/to_k/to_v`` of ``h``; one softmax; ``chunk(2, tokens)[0]``;
  ``to_out``. Rows are independent, so the kept rows equal Atelier's CONCAT read with strength 1
  (queries of the denoiser tokens, keys/values ``[K; K_g]``) — only when the garment has as many
  tokens as the latent: ``chunk(2)`` splits at half the joined tokens, so the public code needs the
  garment at the output size (``ReferenceSize.RESIZE_TO_LATENT``).
- **CFG.** The unconditional chunk reads ``zeros_like(g)``: T_g zero tokens that still join the
  softmax (SD1.5's attn1 ``to_k``/``to_v`` have no bias, so K = V = 0: logit 0, value 0; they dilute
  the self-attention), which is neither "no garment" nor "same garment" (``UncondPolicy.ZERO``).
  With cloth guidance (768/1024 weights) the batch is [neg+zeros, neg+garment, pos+garment] and
  ``ε = ε_u + g·(ε_text − ε_cloth) + g_c·(ε_cloth − ε_u)``, pipeline defaults g = 5, g_c = 2.5.
  Without it (512 weights) the batch is [neg+zeros, pos+garment] with plain CFG.
- **Licence.** Code and weights CC BY-NC-SA 4.0 (repo LICENSE; HF card ``license: cc-by-nc-sa-4.0``):
  no commercial use.

The whole-UNet key table here is the plain SD1.5 diffusers layout; stable_garment.py reuses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import WeightFileError
from ..reference_config import (
    ReadMode,
    ReferenceConfig,
    ReferenceSize,
    Refresh,
    UncondPolicy,
)
from ..sites import SITE_GROUPS
from ..weight_format import SD15, BaseModel
from .sd15_layout import sd15_unet_shapes

FAMILY = "magic_clothing"
LICENCE = "CC BY-NC-SA 4.0 (code and weights): non-commercial use only"
PUBLISHED_FILES: tuple[str, ...] = (
    "magic_clothing_768_vitonhd_joint.safetensors",
    "OMS_1024_VTHD+DressCode_200000.safetensors",
)
# Prefixes of layouts that are not a bare diffusers UNet (named in errors).
FOREIGN_PREFIXES: Mapping[str, str] = {
    "ref_unet.": "imagdressing",
    "adapter_modules.": "imagdressing",
    "proj.": "imagdressing",
    "model.diffusion_model.": "an LDM/ComfyUI checkpoint (not diffusers UNet keys)",
    "input_blocks.": "an LDM/ComfyUI UNet (not diffusers UNet keys)",
    "unet.": "a diffusers pipeline state dict (keys prefixed 'unet.')",
    "add_embedding.": "an SDXL UNet",
}
# Keys a bare SD1.5 diffusers UNet always has (the "full garment UNet" signature).
CORE_KEYS: tuple[str, ...] = (
    "conv_in.weight",
    "time_embedding.linear_1.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
    "mid_block.attentions.0.transformer_blocks.0.attn1.to_k.weight",
    "up_blocks.3.attentions.2.transformer_blocks.0.norm1.weight",
)
FULL_SIGNATURE: tuple[str, ...] = CORE_KEYS + (
    "up_blocks.3.attentions.2.proj_out.weight",
    "conv_out.weight",
)


class GarmentFileError(WeightFileError):
    """A garment-network file that is not the expected family's published layout.

    The message names the file, the family expected, the family found and the first offending key.

    Args:
        source: the file (or a description of the state dict).
        expected: the family the caller asked for.
        found: what the keys look like (another family, a truncated file, another base size …).
        key: the first key that is wrong, missing or unexpected (None when not about one key).
        detail: what is wrong with it and what to do.
    """

    def __init__(self, source: str, expected: str, found: str, key: str | None, detail: str) -> None:
        self.source, self.expected, self.found, self.key = source, expected, found, key
        where = f" (key {key!r})" if key is not None else ""
        super().__init__(f"{source}: expected a {expected} garment-network file, found {found}{where}: {detail}")


def describe_layout(keys: Iterable[str]) -> str:
    """What a state dict's keys look like, for error messages: another family, another format, a
    full SD1.5 diffusers UNet (MagicClothing, or any plain UNet), StableGarment's pruned garment
    encoder, or unknown."""
    keys = set(keys)
    for prefix, family in FOREIGN_PREFIXES.items():
        if any(key.startswith(prefix) for key in keys):
            return family
    if all(key in keys for key in FULL_SIGNATURE):
        return "a whole SD1.5 diffusers UNet (magic_clothing, or a plain UNet)"
    if all(key in keys for key in CORE_KEYS) and "conv_out.weight" not in keys:
        if "up_blocks.3.attentions.2.proj_out.weight" not in keys:
            return "stable_garment (a garment encoder without its last block's tail and conv_out)"
        return "a truncated diffusers UNet"
    if any(key in keys for key in CORE_KEYS):
        return "a truncated diffusers UNet"
    return "an unknown layout"


def matches(keys: Iterable[str]) -> bool:
    """True for the whole-UNet layout MagicClothing publishes: bare diffusers keys including the last
    block's tail and ``conv_out``, no IMAGDressing / LDM / SDXL / pipeline prefixes.

    A plain SD1.5 diffusers UNet has exactly these keys, so this is also True for one: keys alone
    cannot tell MagicClothing from a plain UNet, so any complete UNet is read the MagicClothing way.
    StableGarment's pruned garment encoder (no ``conv_out``) does not match.
    """
    keys = set(keys)
    if any(key.startswith(prefix) for key in keys for prefix in FOREIGN_PREFIXES):
        return False
    return all(key in keys for key in FULL_SIGNATURE)


def _base_found(state: Mapping[str, torch.Tensor]) -> str:
    """The base size the file's tensors suggest, for the wrong-base error."""
    parts = []
    conv_in = state.get("conv_in.weight")
    if conv_in is not None and conv_in.ndim == 4:
        parts.append(f"model_channels {conv_in.shape[0]}, in_channels {conv_in.shape[1]}")
    to_k = state.get("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight")
    if to_k is not None and to_k.ndim == 2:
        parts.append(f"context_dim {to_k.shape[1]}")
    return ", ".join(parts) or "unknown sizes"


def check_layout(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    *,
    family: str,
    source: str,
    base: BaseModel,
    optional: Sequence[str] = (),
) -> None:
    """Raise GarmentFileError unless ``state`` has every key of ``expected`` (``optional`` keys may be
    absent), no other key, and every tensor has its expected shape."""
    keys = set(state)
    found = describe_layout(keys)
    foreign = next((key for key in state for prefix in FOREIGN_PREFIXES if key.startswith(prefix)), None)  # file order
    if foreign is not None:
        raise GarmentFileError(source, family, found, foreign,
                               f"this is not a bare diffusers garment UNet; load it with the {found} loader")
    optional_set = set(optional)
    missing = [key for key in expected if key not in keys and key not in optional_set]
    if missing:
        raise GarmentFileError(
            source, family, found, missing[0],
            f"{len(missing)} of the {len(expected)} tensors are missing (the file is truncated, partial or of "
            f"another family); a file that is partial on purpose can be completed from the base UNet with "
            f"merge_with_base",
        )
    unexpected = sorted(key for key in keys if key not in expected)
    if unexpected:
        raise GarmentFileError(source, family, found, unexpected[0],
                               f"{len(unexpected)} tensors are not part of the SD1.5 UNet layout "
                               f"({unexpected[:3]}…); every key must be consumed")
    for key, shape in expected.items():
        if key in state and tuple(state[key].shape) != tuple(shape):
            raise GarmentFileError(
                source, family, f"another base size ({_base_found(state)})", key,
                f"shape {tuple(state[key].shape)}, expected {tuple(shape)} for base {base.family} "
                f"(model_channels {base.model_channels}, context_dim {base.context_dim})",
            )


def garment_unet_state(
    state: Mapping[str, torch.Tensor], base: BaseModel = SD15, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """The garment UNet's state dict in full diffusers UNet key names, ready for ComfyUI's diffusers
    UNet loader: the published file is already that layout, so every key is checked (present, none
    extra, shapes of ``base``) and passed through unchanged.

    Raises:
        GarmentFileError: another family's file, a truncated file, or another base size; the message
            names ``source``, the family found and the key.
    """
    check_layout(state, sd15_unet_shapes(base), family=FAMILY, source=source, base=base)
    return dict(state)


def merge_with_base(
    garment_state: Mapping[str, torch.Tensor],
    base_state: Mapping[str, torch.Tensor],
    base: BaseModel = SD15,
    source: str = "state dict",
    family: str = FAMILY,
    fill: Sequence[str] | None = None,
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Complete a partial garment state from the user's base UNet, as the public loader does
    (``deepcopy(pipe.unet).load_state_dict(file, strict=False)``).

    Args:
        garment_state: the file's tensors (diffusers UNet keys, any subset; no extra keys).
        base_state: the user's SD1.5 UNet in diffusers key names (from the node side: ComfyUI's
            ``comfy.utils.unet_to_diffusers`` map of the MODEL's ``diffusion_model`` state).
        fill: the keys allowed to come from the base (None = any missing key).

    Returns:
        (merged state dict in ``sd15_unet_shapes`` order, the keys taken from the base).

    Raises:
        GarmentFileError: an unexpected or wrongly shaped key in either dict, a key the base lacks, or
            a missing key outside ``fill``.
    """
    expected = sd15_unet_shapes(base)
    optional = list(expected) if fill is None else list(fill)
    check_layout(garment_state, expected, family=family, source=source, base=base, optional=optional)
    merged: dict[str, torch.Tensor] = {}
    filled: list[str] = []
    for key, shape in expected.items():
        if key in garment_state:
            merged[key] = garment_state[key]
            continue
        value = base_state.get(key)
        if value is None or tuple(value.shape) != tuple(shape):
            found = "missing" if value is None else f"shape {tuple(value.shape)}"
            raise GarmentFileError(
                "base UNet", family, describe_layout(base_state), key,
                f"the garment file {source} lacks this tensor and the base UNet has it {found}, expected "
                f"{tuple(shape)} (an SD1.5 base with 4 input channels, model_channels {base.model_channels})",
            )
        merged[key] = value
        filled.append(key)
    return merged, tuple(filled)


# --- how the public code runs it -----------------------------------------------------------------

@dataclass(frozen=True)
class GarmentPass:
    """How a family runs its garment network to write the bank.

    Args:
        timestep: "zero" (t = 0) or "current" (the denoiser's timestep of this step).
        every_step: rerun before every denoiser call (True) or once per generation.
        prompt: the text the garment network's cross-attention sees, encoded by the user's CLIP.
        noised: the garment latent is noised to the current sigma (False: the clean latent).
        c_in_scaled: the latent is scaled by ComfyUI's ``c_in = 1/√(σ²+1)`` (False: the raw
            ``latent × 0.18215`` goes straight into the UNet, as in diffusers; call
            ``diffusion_model`` directly or pre-multiply by √(σ²+1) before ``apply_model``).
    """

    timestep: str
    every_step: bool
    prompt: str
    noised: bool = False
    c_in_scaled: bool = False


# MagicClothing's garment pass: once, timestep 0, clean latent, CLIP("").
ONCE_PASS = GarmentPass(timestep="zero", every_step=False, prompt="")


@dataclass(frozen=True)
class MagicClothingRead:
    """The public MagicClothing settings, on Atelier's terms.

    Args:
        mode, strength, sites: CONCAT with s = 1 at all 16 attn1 sites (the public code has no
            strength; s ≠ 1 is Atelier's log-s logit bias on the garment tokens).
        garment_pass: once, timestep 0, clean latent, CLIP("").
        reference_size: RESIZE_TO_LATENT (the public code resizes the garment *image* to the output
            size before encoding; its ``chunk(2)`` needs equal token counts).
        uncond_reads_zeros: the unconditional chunk joins T_g zero tokens (UncondPolicy.ZERO).
        cloth_guidance: three-way CFG (768/1024 weights) or plain two-way CFG (512 weights).
        guidance_scale, cloth_guidance_scale: g and g_c of ``ε_u + g(ε_t − ε_c) + g_c(ε_c − ε_u)``.
        steps, sampler, height, width, prompt, negative_prompt: the public demo's defaults
            (``gradio_generate.py``: UniPC, 20 steps, 768 × 576; prompt + ", best quality, high quality").
        garment_masked: the garment image is multiplied by its segmentation mask (background 0 in
            [-1, 1], i.e. mid grey) before encoding.
    """

    mode: ReadMode = ReadMode.CONCAT
    strength: float = 1.0
    sites: tuple[str, ...] = SITE_GROUPS["all"]
    garment_pass: GarmentPass = ONCE_PASS
    reference_size: ReferenceSize = ReferenceSize.RESIZE_TO_LATENT
    uncond_reads_zeros: bool = True
    cloth_guidance: bool = True
    guidance_scale: float = 5.0
    cloth_guidance_scale: float = 2.5
    steps: int = 20
    sampler: str = "uni_pc"
    height: int = 768
    width: int = 576
    prompt: str = "a photography of a model, best quality, high quality"
    negative_prompt: str = "bare, monochrome, lowres, bad anatomy, worst quality, low quality"
    garment_masked: bool = True

    def reference_config(self) -> ReferenceConfig:
        """The foundation config of this read (uncond ZERO: the unconditional chunk reads zero tokens)."""
        return ReferenceConfig(
            mode=self.mode,
            strength=self.strength,
            site_weights={name: 1.0 for name in self.sites},
            uncond=UncondPolicy.ZERO,
            refresh=Refresh.ONCE,
            reference_size=self.reference_size,
        )


# The 512 weights (early_access/oms_diffusion_512_*) were trained without the joint CFG: plain CFG,
# gradio default g = 2.5, at 512 × 384 (ClothAdapter.generate).
MAGIC_CLOTHING_512 = MagicClothingRead(cloth_guidance=False, guidance_scale=2.5, height=512, width=384,
                                       negative_prompt="monochrome, lowres, bad anatomy, worst quality, low quality")
MAGIC_CLOTHING_768 = MagicClothingRead()


def cloth_guidance(uncond: torch.Tensor, cloth: torch.Tensor, text: torch.Tensor,
                   guidance_scale: float, cloth_guidance_scale: float) -> torch.Tensor:
    """MagicClothing's joint CFG: ``ε_u + g·(ε_text − ε_cloth) + g_c·(ε_cloth − ε_u)``, where ε_u is
    (negative prompt, zero garment tokens), ε_cloth (negative prompt, garment), ε_text (prompt, garment).

    The same blend as AnyDressing's garment guidance with s_g = g_c, ω = g (nodes/dressing_attachment.py),
    except that ε_u reads zero tokens instead of no garment."""
    return uncond + guidance_scale * (text - cloth) + cloth_guidance_scale * (cloth - uncond)
