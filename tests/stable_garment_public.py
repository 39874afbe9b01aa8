"""Opt-in equivalence with the public StableGarment code, for tests/test_garment_networks_stable_garment.py.

Set ``STABLE_GARMENT_PATH`` to a local checkout of logn-2024/StableGarment (verified at cccb6e3).
Nothing of it is committed or downloaded here: ``stablegarment/models/garment_encoder.py`` and
``self_attention_modules.py`` are imported from that path. Two things break on today's diffusers
and are bridged while importing: the package ``__init__`` imports every pipeline and ControlNet (not
needed, skipped by registering bare package modules), and ``garment_encoder.py`` imports the
pre-0.28 module paths ``diffusers.models.unet_2d_blocks`` / ``unet_2d_condition`` (aliased to
``diffusers.models.unets.*`` for the import only).

The glue follows ``StableGarmentPipeline.__call__`` (pipeline_text2img_attn.py): a writer
``ReferenceAttentionControl`` on the garment encoder, a reader on the denoiser sharing its bank, the
garment pass at the current timestep on the clean latent, then the CFG batch [negative, prompt].
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import torch
from atelier.models.diffusers_host import DiffusersReferenceHost, ReferenceAttnProcessor
from atelier.models.garment_networks.stable_garment import (
    StableGarmentRead,
    add_output_bias,
)
from atelier.models.reference_attention import multihead_attention
from atelier.models.sites import SITES_BY_NAME

ENV = "STABLE_GARMENT_PATH"
_ALIASES = {
    "diffusers.models.unet_2d_blocks": "diffusers.models.unets.unet_2d_blocks",
    "diffusers.models.unet_2d_condition": "diffusers.models.unets.unet_2d_condition",
}


def checkout() -> Path | None:
    """The public checkout named by ``STABLE_GARMENT_PATH``, or None."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def import_public(root: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """(garment_encoder module, self_attention_modules module) of the checkout."""
    package = root / "stablegarment"
    added = []
    for old, new in _ALIASES.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)
            added.append(old)
    for name, path in (("stablegarment", package), ("stablegarment.models", package / "models")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module
            added.append(name)
    try:
        encoder = importlib.import_module("stablegarment.models.garment_encoder")
        attention = importlib.import_module("stablegarment.models.self_attention_modules")
    finally:
        for name in added:
            sys.modules.pop(name, None)
    return encoder, attention


@torch.no_grad()
def public_step(attention: types.ModuleType, garment_encoder, denoiser, garment_latent, garment_context, latents,
                timestep, negative, positive, fusion_blocks: str = "midup", style_fidelity: float = 1.0) -> torch.Tensor:
    """One denoising step's UNet call of StableGarmentPipeline: (2B, 4, h, w) for [negative, prompt]."""
    writer = attention.ReferenceAttentionControl(garment_encoder, mode="write", fusion_blocks=fusion_blocks,
                                                 do_classifier_free_guidance=False)
    reader = attention.ReferenceAttentionControl(denoiser, mode="read", fusion_blocks=fusion_blocks,
                                                 do_classifier_free_guidance=True, style_fidelity=style_fidelity,
                                                 repeats=1)
    reader.share_bank(writer)
    try:
        garment_encoder(garment_latent, timestep, encoder_hidden_states=garment_context, return_dict=False)
        return denoiser(torch.cat([latents] * 2), timestep, encoder_hidden_states=torch.cat([negative, positive])).sample
    finally:
        writer.clear()
        reader.clear()
        reader.reset()
        writer.reset()


class BiasedCrossProcessor(ReferenceAttnProcessor):
    """Atelier's CROSS read plus the public read's extra ``to_out.0.bias`` (``add_output_bias``)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        run = self.host.run
        if self.host.writing is not None or run is None or run.strength_at(self.site) == 0.0:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        k_ref, v_ref = run.reference_kv(self.site, lambda states: (attn.to_k(states), attn.to_v(states)))
        out = run.read(self.site, q, k, v, k_ref, v_ref, attn.heads,
                       lambda q_, k_, v_: multihead_attention(q_, k_, v_, attn.heads))
        out = attn.to_out[1](attn.to_out[0](out))
        return add_output_bias(out, attn.to_out[0].bias, run.call.plan, run.query_mask(self.site, out),
                               scale=run.strength_at(self.site))


class BiasedHost(DiffusersReferenceHost):
    """DiffusersReferenceHost with BiasedCrossProcessor on its sites (when ``output_bias``)."""

    def __init__(self, unet, config, output_bias: bool) -> None:
        super().__init__(unet, config)
        self.output_bias = output_bias

    def processors(self, original: dict, modules: dict) -> dict:
        installed = super().processors(original, modules)
        if not self.output_bias:
            return installed
        return {key: BiasedCrossProcessor(proc.site, self, proc.original) for key, proc in installed.items()}


@torch.no_grad()
def atelier_step(garment_unet, denoiser, garment_latent, garment_context, latents, timestep, negative, positive,
                 output_bias: bool = True, settings: StableGarmentRead | None = None) -> torch.Tensor:
    """The same UNet call through Atelier: the garment UNet (loaded from ``garment_unet_state``) banks
    the read sites at the current timestep on the clean latent, the denoiser reads them in CROSS mode
    (W' = W, λ = 1, uncond NONE) with [negative, prompt] = cond_or_uncond [1, 0]."""
    settings = settings or StableGarmentRead()
    config = settings.reference_config()
    rows = garment_latent.shape[0]
    with DiffusersReferenceHost(garment_unet, config) as host:
        bank = host.capture(garment_latent, torch.as_tensor(timestep).reshape(1).expand(rows), garment_context)
    assert set(bank.site_names) == {SITES_BY_NAME[name].name for name in settings.sites}
    with BiasedHost(denoiser, config, output_bias) as host:
        run = host.new_run(bank)
        return host.forward(run, torch.cat([latents] * 2), timestep, torch.cat([negative, positive]),
                            cond_or_uncond=[1, 0]).sample
