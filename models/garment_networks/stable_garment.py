"""StableGarment text2img (logn-2024/StableGarment@cccb6e3): the published garment encoder mapped
onto Atelier's reference attention. Pure torch, no ComfyUI import.

What the public code does (verified in ``stablegarment/models/garment_encoder.py``,
``stablegarment/models/self_attention_modules.py``, ``stablegarment/pipelines/pipeline_text2img_attn.py``,
``infer_t2i.py``, ``app.py``):

- **Files.** HF ``loooooong/StableGarment_text2img``, subfolder ``garment_encoder``: a diffusers model
  folder (``config.json`` + ``diffusion_pytorch_model.safetensors``) of ``GarmentEncoderModel``, a
  ``UNet2DConditionModel`` subclass with the SD1.5 config and ``disable_last=True``. That flag removes
  the tail of the last transformer block (``up_blocks.3.attentions.2``: attn1's q/k/v/out, norm2,
  attn2, norm3, ff, proj_out) and ``conv_norm_out``/``conv_out``: 24 of the UNet's 686 tensors
  (``PRUNED_KEYS``). Everything up to that block's ``norm1`` — the last banked input — is kept,
  so the pruned tensors never affect the bank; ``garment_unet_state`` fills them with zeros (inert),
  ``merge_with_base`` with the base UNet's (the training code shared them with the denoiser).
- **Garment pass.** At *every* denoising step, before the denoiser: ``garment_encoder(garment_latent,
  t, CLIP(garment_prompt))`` with the *clean* latent (``vae.encode(..).latent_dist.mean × 0.18215``,
  image resized/centre-cropped to the output size, no mask), the *current* timestep t, not scaled by
  ComfyUI's ``c_in``. Garment prompt: "" in ``app.py``, "bad quality, worst quality" in
  ``infer_t2i.py`` (training: a garment caption). Each hooked ``BasicTransformerBlock`` appends
  ``norm1(x)`` to its bank.
- **Read** (``fusion_blocks="midup"`` for text2img: mid + 9 up sites; "full" = 16 for the try-on
  model): ``out = x + attn1(n) + attn1(n_cond, K/V from bank)`` for the conditional rows, where
  ``attn1(·)`` is the denoiser's *whole* frozen self-attention, ``to_out`` and its bias included. So
  ``extra = W_o·softmax(Q Kgᵀ/√d)Vg + b_o``: Atelier's CROSS read with W' = W and λ = 1 *plus the
  output bias b_o once more* (``add_output_bias``; in ComfyUI an ``attn1_output_patch``). Several
  banked writes are joined along the tokens (``cat(bank, dim=1)``): several garments = one softmax
  over all their tokens; the pipeline itself takes one garment per prompt.
- **CFG.** Two chunks [negative, prompt]; ``style_fidelity`` (default 1) gives the unconditional
  rows ``(1 − sf)·extra`` computed with the *conditional* rows' queries; at sf = 1 the unconditional
  chunk does not see the garment (uncond NONE). Guidance 4 (``infer_t2i.py``, ``app.py``), 30 steps
  (DDIM / UniPC), 512 × 384.
- **Licence.** README: CC BY-NC-SA 4.0 (code); HF model card: cc-by-nc-sa-4.0 (weights); ``setup.py``
  says cc-by-nc-4.0. No commercial use either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from ..reference_config import (
    ReadMode,
    ReferenceConfig,
    ReferenceSize,
    Refresh,
    UncondPolicy,
)
from ..row_plan import RowPlan
from ..sites import SITE_GROUPS
from ..weight_format import SD15, BaseModel
from .magic_clothing import (
    CORE_KEYS,
    FOREIGN_PREFIXES,
    GarmentPass,
    check_layout,
)
from .magic_clothing import (
    merge_with_base as _merge_with_base,
)
from .sd15_layout import sd15_unet_shapes

FAMILY = "stable_garment"
LICENCE = "CC BY-NC-SA 4.0 (README, HF card; setup.py says CC BY-NC 4.0): non-commercial use only"
PUBLISHED_FOLDER = "garment_encoder"  # of loooooong/StableGarment_text2img
CONFIG_CLASS_NAME = "GarmentEncoderModel"

_LAST = "up_blocks.3.attentions.2"
_LAST_BLOCK = f"{_LAST}.transformer_blocks.0"
# What GarmentEncoderModel(disable_last=True) removes from the SD1.5 UNet (24 tensors).
PRUNED_KEYS: tuple[str, ...] = (
    *(f"{_LAST_BLOCK}.attn1.{name}.weight" for name in ("to_q", "to_k", "to_v")),
    f"{_LAST_BLOCK}.attn1.to_out.0.weight", f"{_LAST_BLOCK}.attn1.to_out.0.bias",
    f"{_LAST_BLOCK}.norm2.weight", f"{_LAST_BLOCK}.norm2.bias",
    *(f"{_LAST_BLOCK}.attn2.{name}.weight" for name in ("to_q", "to_k", "to_v")),
    f"{_LAST_BLOCK}.attn2.to_out.0.weight", f"{_LAST_BLOCK}.attn2.to_out.0.bias",
    f"{_LAST_BLOCK}.norm3.weight", f"{_LAST_BLOCK}.norm3.bias",
    f"{_LAST_BLOCK}.ff.net.0.proj.weight", f"{_LAST_BLOCK}.ff.net.0.proj.bias",
    f"{_LAST_BLOCK}.ff.net.2.weight", f"{_LAST_BLOCK}.ff.net.2.bias",
    f"{_LAST}.proj_out.weight", f"{_LAST}.proj_out.bias",
    "conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias",
)


def matches(keys: Iterable[str]) -> bool:
    """True for the pruned garment-encoder layout: bare diffusers UNet keys up to the last block's
    ``norm1``, without that block's ``proj_out`` and without ``conv_out``. Neither a whole UNet
    (MagicClothing, a plain UNet) nor IMAGDressing's prefixed file matches. A garment encoder saved
    whole (``disable_last=False``) has a plain UNet's keys: ``matches_config`` tells it by its folder's
    ``config.json``."""
    keys = set(keys)
    if any(key.startswith(prefix) for key in keys for prefix in FOREIGN_PREFIXES):
        return False
    return (all(key in keys for key in CORE_KEYS) and "conv_out.weight" not in keys
            and f"{_LAST}.proj_out.weight" not in keys)


def matches_config(config: Mapping) -> bool:
    """True for the published folder's ``config.json`` (``"_class_name": "GarmentEncoderModel"``)."""
    return config.get("_class_name") == CONFIG_CLASS_NAME


def garment_unet_state(
    state: Mapping[str, torch.Tensor], base: BaseModel = SD15, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """The garment encoder as a whole diffusers SD1.5 UNet state dict (ready for ComfyUI's diffusers
    UNet loader), in ``sd15_unet_shapes`` order: every tensor of the file, and zeros for the
    ``PRUNED_KEYS`` the file lacks. They sit after the last banked input, so they never change the
    bank (a whole-UNet file keeps its own).

    Raises:
        GarmentFileError: another family's file, a truncated file (a missing key outside
            ``PRUNED_KEYS``), an extra key, or another base size; names ``source`` and the key.
    """
    expected = sd15_unet_shapes(base)
    check_layout(state, expected, family=FAMILY, source=source, base=base, optional=PRUNED_KEYS)
    like = state["conv_in.weight"]
    return {
        key: state[key] if key in state else torch.zeros(shape, dtype=like.dtype, device=like.device)
        for key, shape in expected.items()
    }


def merge_with_base(
    garment_state: Mapping[str, torch.Tensor],
    base_state: Mapping[str, torch.Tensor],
    base: BaseModel = SD15,
    source: str = "state dict",
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Complete the garment encoder with the base UNet's ``PRUNED_KEYS`` (the training code shared
    the last block and ``conv_out`` with the denoiser); any other missing key is an error.

    Returns (merged state in ``sd15_unet_shapes`` order, the keys taken from the base)."""
    return _merge_with_base(garment_state, base_state, base=base, source=source, family=FAMILY, fill=PRUNED_KEYS)


# The text2img garment pass: every step, current timestep, clean unscaled latent, CLIP("") (app.py).
EVERY_STEP_PASS = GarmentPass(timestep="current", every_step=True, prompt="")


@dataclass(frozen=True)
class StableGarmentRead:
    """The public StableGarment text2img settings, on Atelier's terms.

    Args:
        mode, strength: CROSS with the denoiser's own K/V projections (W' = W, no learned
            projections) and λ = 1 (the public code has no strength).
        adds_output_bias: the extra term is the whole attn1 output, so it carries ``to_out.0.bias``
            once more (``add_output_bias``; absent from Atelier's CROSS).
        sites: "midup" = middle_0 and output_3..output_11 (10 sites); the try-on model uses all 16.
        uncond: NONE at style_fidelity 1 (the unconditional chunk does not see the garment). For
            sf < 1 the public code adds (1 − sf)·extra computed with the conditional rows' queries,
            which Atelier's row routing does not express.
        garment_pass: every step, current timestep, clean unscaled latent, CLIP(garment prompt).
        reference_size: the pipeline encodes the garment at the output size; the CROSS read itself
            takes any token count.
        guidance_scale, steps, sampler, height, width, negative_prompt: ``app.py``'s text2img defaults
            (``infer_t2i.py``: the same, DDIM, no negative prompt).
    """

    mode: ReadMode = ReadMode.CROSS
    strength: float = 1.0
    adds_output_bias: bool = True
    sites: tuple[str, ...] = SITE_GROUPS["middle+output"]
    uncond: UncondPolicy = UncondPolicy.NONE
    style_fidelity: float = 1.0
    garment_pass: GarmentPass = EVERY_STEP_PASS
    reference_size: ReferenceSize = ReferenceSize.RESIZE_TO_LATENT
    guidance_scale: float = 4.0
    steps: int = 30
    sampler: str = "uni_pc"
    height: int = 512
    width: int = 384
    prompt: str = "a photo of a woman, full body, best quality, high quality"
    negative_prompt: str = "nsfw, unsaturated, abnormal, unnatural, artifact"

    def reference_config(self) -> ReferenceConfig:
        """The foundation config of this read. ``refresh`` is EVERY_STEP, but the foundation's
        every-step pass noises the reference; StableGarment's runs the clean latent at the current
        timestep (``garment_pass``), which the garment source must do itself."""
        return ReferenceConfig(
            mode=self.mode,
            strength=self.strength,
            site_weights={name: 1.0 for name in self.sites},
            uncond=self.uncond,
            refresh=Refresh.EVERY_STEP,
            reference_size=self.reference_size,
        )


STABLE_GARMENT_T2I = StableGarmentRead()


def add_output_bias(
    out: torch.Tensor, bias: torch.Tensor, plan: RowPlan, query_mask: torch.Tensor | None = None,
    scale: float = 1.0,
) -> torch.Tensor:
    """The public read's extra ``to_out.0.bias`` on the reading rows, after ``to_out``.

    Args:
        out: (N, T, C) the site's attn1 output after ``to_out`` (Atelier's CROSS read).
        bias: (C,) that attn1's ``to_out.0.bias``.
        plan: the call's row plan (which rows read).
        query_mask: (R, T, 1) the read's mask, or None.
        scale: λ (1 in the public code; the bias belongs to the λ-weighted term).

    Returns:
        ``out`` with ``scale·bias`` (masked) added to ``plan.rows``.
    """
    if plan.reads_no_row:
        return out
    rows = plan.rows.to(out.device)
    delta = (scale * bias.to(out)).view(1, 1, -1).expand(rows.numel(), out.shape[1], -1)  # (R, T, C)
    if query_mask is not None:
        delta = delta * query_mask
    return out.index_add(0, rows, delta)
