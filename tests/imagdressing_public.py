"""Opt-in equivalence with the public IMAGDressing-v1 code (muzishen/IMAGDressing), on random weights.

Set IMAGDRESSING_PATH to a work tree of that repository (it is never committed or downloaded here;
fetch it yourself). This module imports its ``adapter/resampler.py``, ``adapter/attention_processor.py``
and ``dressing_sd/pipelines/IMAGDressing_v1_pipeline.py``, builds the public model at small width the
way ``inference_IMAGdressing.py``/``train.py`` do, saves it in the published layout
(``{"module": SDModel.state_dict()}``), reads that back through Atelier's loader and compares:

1. ``resampler``: their Resampler vs ours on the same weights;
2. ``noise_pred``: one CFG step's conditional and unconditional noise predictions: their ref_unet
   + RefSAttnProcessor2_0 vs Atelier's diffusers host (garment bank + CROSS read, uncond = none);
3. ``pipeline``: their whole ``IMAGDressing_v1.__call__`` (tiny VAE / CLIP vision, DDIM) vs the same
   loop written with Atelier's parts.

Run directly: ``IMAGDRESSING_PATH=/tmp/imagdressing python tests/imagdressing_public.py``.
"""

from __future__ import annotations

import builtins
import copy
import importlib
import os
import sys
import typing
from dataclasses import dataclass

import torch
from atelier.models.diffusers_host import DiffusersReferenceHost
from atelier.models.garment_networks import imagdressing as im
from atelier.models.garment_networks.files import read_tensors
from atelier.train.tiny import tiny_unet
from torch import nn

ENV = "IMAGDRESSING_PATH"
CONTEXT_DIM = 64  # tiny UNet cross-attention width = Resampler output width
EMBED_DIM = 48  # tiny "CLIP ViT-H" hidden size
DIM_HEAD = 16  # the Resampler's head width (64 in the published model)
RESAMPLER = {"dim": CONTEXT_DIM, "depth": 2, "dim_head": DIM_HEAD, "heads": 4, "num_queries": 4, "embedding_dim": EMBED_DIM,
                 "output_dim": CONTEXT_DIM, "ff_mult": 4}


def public_path() -> str | None:
    path = os.environ.get(ENV)
    return path if path and os.path.isdir(os.path.join(path, "adapter")) else None


def import_public(path: str) -> dict[str, object]:
    """Their modules. The pipeline file relies on names that older diffusers re-exported through
    ``from diffusers.pipelines... import *`` (``typing.Union`` …, ``LoraLoaderMixin``); with
    diffusers >= 0.3x they are missing (NameError), so they are provided as builtins."""
    if path not in sys.path:
        sys.path.insert(0, path)
    for name in ("Union", "Optional", "List", "Dict", "Any", "Callable", "Tuple"):
        if not hasattr(builtins, name):
            setattr(builtins, name, getattr(typing, name))
    if not hasattr(builtins, "LoraLoaderMixin"):  # renamed StableDiffusionLoraLoaderMixin in diffusers 0.3x
        from diffusers.loaders import StableDiffusionLoraLoaderMixin

        builtins.LoraLoaderMixin = StableDiffusionLoraLoaderMixin
    resampler = importlib.import_module("adapter.resampler")
    processors = importlib.import_module("adapter.attention_processor")
    pipeline = importlib.import_module("dressing_sd.pipelines.IMAGDressing_v1_pipeline")
    return {"Resampler": resampler.Resampler, "Cache": processors.CacheAttnProcessor2_0,
            "RefS": processors.RefSAttnProcessor2_0, "CAttn": processors.CAttnProcessor2_0,
            "Pipeline": pipeline.IMAGDressing_v1}


class SDModel(nn.Module):
    """train.py's container (same attribute names, hence the published key prefixes)."""

    def __init__(self, unet, ref_unet, proj, adapter_modules) -> None:
        super().__init__()
        self.unet = unet
        self.ref_unet = ref_unet
        self.proj = proj
        self.adapter_modules = adapter_modules


@dataclass
class PublicModel:
    unet: nn.Module  # their denoiser with RefS/CAttn processors
    ref_unet: nn.Module  # their garment UNet with CacheAttnProcessor2_0
    proj: nn.Module
    adapter_modules: nn.ModuleList
    base: nn.Module  # the plain denoiser (the user's MODEL on Atelier's side)


def install_public_processors(mods: dict[str, object], unet) -> None:
    """Their denoiser processors on ``unet``, as inference_IMAGdressing.prepare() sets them:
    RefSAttnProcessor2_0 on every attn1, CAttnProcessor2_0 on every attn2."""
    procs = {}
    widths = unet.config.block_out_channels
    for name in unet.attn_processors:
        if name.startswith("mid_block"):
            hidden = widths[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(widths))[int(name[len("up_blocks.")])]
        else:
            hidden = widths[int(name[len("down_blocks.")])]
        if name.endswith("attn1.processor"):
            procs[name] = mods["RefS"](name, hidden)
        else:
            procs[name] = mods["CAttn"](name, hidden_size=hidden, cross_attention_dim=unet.config.cross_attention_dim)
    unet.set_attn_processor(procs)


def build_public(mods: dict[str, object], seed: int = 0) -> PublicModel:
    """The public model at small width, set up as inference_IMAGdressing.prepare() does."""
    base = tiny_unet(seed=seed, context_dim=CONTEXT_DIM).eval()
    unet = copy.deepcopy(base)
    ref_unet = tiny_unet(seed=seed + 1, context_dim=CONTEXT_DIM).eval()
    torch.manual_seed(seed + 2)
    proj = mods["Resampler"](**RESAMPLER).eval()
    install_public_processors(mods, unet)
    adapter_modules = nn.ModuleList(unet.attn_processors.values())
    ref_unet.set_attn_processor({name: mods["Cache"]() for name in ref_unet.attn_processors})
    return PublicModel(unet, ref_unet, proj, adapter_modules, base)


def published_file(model: PublicModel, path: str) -> None:
    """Save as the published file is laid out: a dict ``{"module": SDModel.state_dict()}``."""
    container = SDModel(model.unet, model.ref_unet, model.proj, model.adapter_modules)
    torch.save({"module": container.state_dict()}, path)


def atelier_side(path: str):
    """Atelier's objects from the saved file: garment UNet, Resampler, projections."""
    parts = im.split_state_dict(read_tensors(path), source=path, dim_head=DIM_HEAD)
    garment_unet = tiny_unet(seed=99, context_dim=CONTEXT_DIM).eval()
    garment_unet.load_state_dict(parts.garment_unet, strict=True)
    return parts, garment_unet, im.build_resampler(parts).eval(), im.reference_projections(parts)


def _public_cond_uncond(model: PublicModel, z_g, clip_states, x, t, text, negative):
    ctx = torch.cat([model.proj(torch.zeros_like(clip_states)), model.proj(clip_states)])
    model.ref_unet(z_g.repeat(2, 1, 1, 1), torch.zeros_like(t), encoder_hidden_states=ctx, return_dict=False)
    bank = {name: proc.cache["hidden_states"][1].unsqueeze(0) for name, proc in model.ref_unet.attn_processors.items()}
    cond = model.unet(x, t, encoder_hidden_states=text, cross_attention_kwargs={"sa_hidden_states": bank}).sample
    uncond = model.unet(x, t, encoder_hidden_states=negative).sample
    return cond, uncond


def _atelier_cond_uncond(base, garment_unet, resampler, projections, z_g, clip_states, x, t, text, negative, scale):
    config = im.reference_config(scale)
    with DiffusersReferenceHost(garment_unet, config) as garment_host:
        bank = garment_host.capture(z_g, torch.zeros(1), resampler(clip_states))
    with DiffusersReferenceHost(base, config, projections) as host:
        run = host.new_run(bank)
        both = host.forward(run, torch.cat([x, x]), t.expand(2), torch.cat([text, negative]), cond_or_uncond=(0, 1)).sample
    return both[:1], both[1:]


def compare(path: str, tmp_dir: str, scale: float = 0.8, seed: int = 0) -> dict[str, float]:
    """Max abs differences (their code vs Atelier) on random weights, fp32 CPU."""
    torch.manual_seed(seed)
    mods = import_public(path)
    model = build_public(mods, seed)
    for processor in model.adapter_modules:  # random, not the to_k/to_v init, so a wrong site mapping shows
        for name, param in processor.named_parameters():
            torch.nn.init.normal_(param, std=0.2)
    for processor in model.unet.attn_processors.values():
        if isinstance(processor, mods["RefS"]):
            processor.scale = scale
    file = os.path.join(tmp_dir, "IMAGDressing-v1_tiny.pt")
    published_file(model, file)
    parts, garment_unet, resampler, projections = atelier_side(file)

    g = torch.Generator().manual_seed(seed + 10)
    clip_states = torch.randn(1, 17, EMBED_DIM, generator=g)
    z_g = torch.randn(1, 4, 8, 8, generator=g)
    x = torch.randn(1, 4, 8, 8, generator=g)
    text, negative = torch.randn(2, 1, 7, CONTEXT_DIM, generator=g)
    t = torch.tensor(601)
    out: dict[str, float] = {}
    with torch.no_grad():
        out["resampler"] = (model.proj(clip_states) - resampler(clip_states)).abs().max().item()
        pub = _public_cond_uncond(model, z_g, clip_states, x, t, text, negative)
        ours = _atelier_cond_uncond(model.base, garment_unet, resampler, projections, z_g, clip_states, x, t, text,
                                    negative, scale)
        out["noise_pred_cond"] = (pub[0] - ours[0]).abs().max().item()
        out["noise_pred_uncond"] = (pub[1] - ours[1]).abs().max().item()
        out["garment_effect"] = (pub[0] - model.base(x, t, encoder_hidden_states=text).sample).abs().max().item()
        out.update(_compare_pipeline(mods, model, garment_unet, resampler, projections, scale, seed))
    out["ignored_unet_keys"] = float(len(parts.ignored_keys))
    return out


def _tiny_pipeline_parts(seed: int):
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(seed + 20)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=8).eval()
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=CONTEXT_DIM, intermediate_size=64, num_hidden_layers=1,
                                                num_attention_heads=2, vocab_size=100, max_position_embeddings=16)).eval()
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=EMBED_DIM, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        patch_size=8, projection_dim=16)).eval()
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return vae, text_encoder, image_encoder, scheduler


def _cpu_pipeline(cls):
    """Their pipeline class with ``_execution_device`` fixed to the CPU: with diffusers >= 0.3x,
    ``DiffusionPipeline.components`` raises because IMAGDressing_v1.__init__ lacks the
    ``requires_safety_checker`` that StableDiffusionPipeline registers, and ``_execution_device`` reads it."""

    class CpuPipeline(cls):
        @property
        def _execution_device(self):
            return torch.device("cpu")

    return CpuPipeline


def _compare_pipeline(mods, model, garment_unet, resampler, projections, scale, seed, steps: int = 4) -> dict[str, float]:
    """Their IMAGDressing_v1.__call__ vs the same sampling loop on Atelier's parts (64×64 image, 8×8 latent)."""
    vae, text_encoder, image_encoder, scheduler = _tiny_pipeline_parts(seed)
    g = torch.Generator().manual_seed(seed + 30)
    ref_image = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    ref_clip = torch.randn(1, 3, 32, 32, generator=g)
    text, negative = torch.randn(2, 1, 7, CONTEXT_DIM, generator=g)
    pipe = _cpu_pipeline(mods["Pipeline"])(vae=vae, reference_unet=model.ref_unet, unet=model.unet, tokenizer=None,
                            text_encoder=text_encoder, image_encoder=image_encoder, ImgProj=model.proj,
                            scheduler=copy.deepcopy(scheduler), safety_checker=None, feature_extractor=None)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(prompt=None, null_prompt=None, negative_prompt=None, ref_image=ref_image, width=64, height=64,
                  num_inference_steps=steps, guidance_scale=7.5, ref_clip_image=ref_clip, image_scale=scale,
                  generator=torch.Generator().manual_seed(seed + 40), output_type="latent", prompt_embeds=text,
                  negative_prompt_embeds=negative).images

    # the same loop on Atelier's parts: garment bank once at t = 0, CROSS read, uncond without the garment
    config = im.reference_config(scale)
    z_g = vae.encode(ref_image).latent_dist.mean * im.PUBLISHED_VAE_SCALE
    clip_states = image_encoder(ref_clip, output_hidden_states=True).hidden_states[-2]
    with DiffusersReferenceHost(garment_unet, config) as garment_host:
        bank = garment_host.capture(z_g, torch.zeros(1), resampler(clip_states))
    scheduler.set_timesteps(steps)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed + 40)) * scheduler.init_noise_sigma
    with DiffusersReferenceHost(model.base, config, projections) as host:
        run = host.new_run(bank)
        for t in scheduler.timesteps:
            both = host.forward(run, torch.cat([latents, latents]), t.expand(2), torch.cat([text, negative]),
                                cond_or_uncond=(0, 1)).sample
            cond, uncond = both[:1], both[1:]
            latents = scheduler.step(uncond + 7.5 * (cond - uncond), t, latents).prev_sample
    ours = vae.decode(latents / vae.config.scaling_factor).sample
    return {"pipeline_image": (theirs - ours).abs().max().item(), "pipeline_image_scale": theirs.abs().max().item()}


if __name__ == "__main__":
    import tempfile

    torch.set_num_threads(1)
    root = public_path()
    if root is None:
        raise SystemExit(f"set {ENV} to a work tree of muzishen/IMAGDressing")
    with tempfile.TemporaryDirectory() as tmp:
        for key, value in compare(root, tmp).items():
            print(f"{key}: {value:.3e}")
