"""Opt-in equivalence with the public MagicClothing code, for tests/test_garment_networks_magic_clothing.py.

Set ``MAGIC_CLOTHING_PATH`` to a local checkout of ShineChen1024/MagicClothing (verified at 5f88a2e).
Nothing of it is committed or downloaded here: its attention processors are imported from that path
(``garment_adapter/attention_processor.py``; importing ``garment_diffusion.py`` would need
torchvision/cv2 for its segmentation model). Their processors pass ``scale`` to ``to_q`` unless
diffusers runs with the PEFT backend, so ``peft`` must be installed with diffusers ≥ 0.26.

The glue around their processors follows ``ClothAdapter`` (a deep copy of the UNet loaded with the
file ``strict=False``; attn1 processors "read" (= store) in the garment UNet, "write" (= read the
store) in the denoiser) and ``OmsDiffusionPipeline`` (three chunks, joint CFG).
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import torch
from atelier.models.diffusers_host import DiffusersReferenceHost
from atelier.models.garment_networks.magic_clothing import (
    MagicClothingRead,
    cloth_guidance,
)
from atelier.models.reference_attention import concat_reference_attention
from atelier.models.reference_run import ReferenceRun

ENV = "MAGIC_CLOTHING_PATH"


def checkout() -> Path | None:
    """The public checkout named by ``MAGIC_CLOTHING_PATH``, or None."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def import_processors(root: Path) -> ModuleType:
    """``garment_adapter/attention_processor.py`` of the checkout, under a private module name."""
    path = root / "garment_adapter" / "attention_processor.py"
    spec = importlib.util.spec_from_file_location("_public_magic_clothing_attention_processor", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _set_processors(processors: ModuleType, unet, kind: str) -> None:
    procs = {}
    for name in unet.attn_processors:
        procs[name] = processors.REFAttnProcessor2_0(name=name, type=kind) if "attn1" in name else processors.AttnProcessor2_0()
    unet.set_attn_processor(procs)


def public_garment_unet(processors: ModuleType, pipeline_unet, file_state: dict):
    """ClothAdapter's ref_unet: a deep copy of the pipeline's UNet, the file loaded ``strict=False``,
    attn1 processors of type "read" (they store their input)."""
    ref_unet = copy.deepcopy(pipeline_unet)
    ref_unet.load_state_dict(file_state, strict=False)
    _set_processors(processors, ref_unet, "read")
    return ref_unet


def public_denoiser(processors: ModuleType, pipeline_unet):
    """The pipeline's UNet with attn1 processors of type "write" (they read the store)."""
    denoiser = copy.deepcopy(pipeline_unet)
    _set_processors(processors, denoiser, "write")
    return denoiser


@torch.no_grad()
def public_layer_read(processors: ModuleType, attn, hidden: torch.Tensor, garment: torch.Tensor,
                      chunks: int = 1) -> torch.Tensor:
    """Their "write" processor on one attention layer: ``hidden`` (chunks·B, T, C) reads ``garment``
    (B, T, C); chunks 1 = no CFG, 2 = [zeros, garment], 3 = cloth guidance [zeros, garment, garment]."""
    proc = processors.REFAttnProcessor2_0(name="site", type="write")
    return proc(attn, hidden, attn_store={"site": garment}, do_classifier_free_guidance=chunks > 1,
                enable_cloth_guidance=chunks == 3, use_independent_condition=False)


@torch.no_grad()
def atelier_layer_read(attn, hidden: torch.Tensor, garment: torch.Tensor, chunks: int = 1) -> torch.Tensor:
    """Atelier's CONCAT read (strength 1) of the same layer: the first chunk of a CFG batch reads zeros."""
    rows = garment.shape[0]
    bank = [torch.zeros_like(garment)] * (chunks > 1) + [garment] * (chunks - (chunks > 1))
    bank = torch.cat(bank) if chunks > 1 else garment
    q, k, v = attn.to_q(hidden), attn.to_k(hidden), attn.to_v(hidden)
    out = concat_reference_attention(q, k, v, attn.to_k(bank), attn.to_v(bank), attn.heads, 1.0)
    assert out.shape[0] == chunks * rows
    return attn.to_out[1](attn.to_out[0](out))


@torch.no_grad()
def public_step(garment_unet, denoiser, garment_latent, null_context, latents, timestep, negative, positive,
                guidance_scale: float, cloth_guidance_scale: float) -> dict[str, torch.Tensor]:
    """One denoiser call of OmsDiffusionPipeline after ClothAdapter's garment pass (timestep 0, empty prompt)."""
    store: dict = {}
    garment_unet(garment_latent, 0, null_context, cross_attention_kwargs={"attn_store": store})
    pred = denoiser(torch.cat([latents] * 3), timestep, encoder_hidden_states=torch.cat([negative, negative, positive]),
                    cross_attention_kwargs={"attn_store": store, "do_classifier_free_guidance": True,
                                            "enable_cloth_guidance": True}).sample
    uncond, cloth, text = pred.chunk(3)
    return {"uncond": uncond, "cloth": cloth, "text": text,
            "guided": uncond + guidance_scale * (text - cloth) + cloth_guidance_scale * (cloth - uncond)}


@torch.no_grad()
def atelier_step(garment_unet, denoiser, garment_latent, null_context, latents, timestep, negative, positive,
                 guidance_scale: float, cloth_guidance_scale: float) -> dict[str, torch.Tensor]:
    """The same call through Atelier: bank at timestep 0 via DiffusersReferenceHost, then the denoiser
    with UncondPolicy.ZERO ([cond, uncond] chunks, uncond reading zero tokens) plus the cloth pass
    (negative prompt reading the garment), blended by ``cloth_guidance``."""
    config = MagicClothingRead().reference_config()
    with DiffusersReferenceHost(garment_unet, config) as host:
        bank = host.capture(garment_latent, torch.zeros(garment_latent.shape[0]), null_context)
    with DiffusersReferenceHost(denoiser, config) as host:
        run = ReferenceRun(config)
        run.set_bank(bank)
        pred = host.forward(run, torch.cat([latents] * 2), timestep, torch.cat([positive, negative]),
                            cond_or_uncond=[0, 1]).sample
        text, uncond = pred.chunk(2)
        cloth = host.forward(run, latents, timestep, negative, cond_or_uncond=[0]).sample
    return {"uncond": uncond, "cloth": cloth, "text": text,
            "guided": cloth_guidance(uncond, cloth, text, guidance_scale, cloth_guidance_scale)}
