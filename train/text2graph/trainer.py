"""The Text2Graph fine-tune (paper: Stable Diffusion fine-tuned with LoRA on triple prompts, AdamW):
epsilon-prediction MSE on (image, prompt) pairs, peft LoRA on the UNet attention projections, one
accelerate loop (single device here; multi-GPU/DeepSpeed through ``accelerate launch``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset

from ..datasets import sample as keys
from .config import Text2GraphTrainConfig
from .data import TRIPLES, HMTriplePairs, ToyWorldOutfitGrid, ToyWorldPeople, collate
from .lora_export import save_kohya_lora
from .models import Components, load_components
from .text_encoding import encode_batch

logger = logging.getLogger("atelier.train.text2graph")

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass
class TrainResult:
    """What a run produced: the written file, the per-step losses and the trained components."""

    output: Path
    losses: list[float] = field(default_factory=list)
    components: Components | None = None


def build_dataset(config: Text2GraphTrainConfig) -> Dataset:
    """The (image, caption, triples) data set the config names."""
    if config.data == "toyworld":
        return ToyWorldPeople(config.resolution, config.num_samples, config.seed)
    if config.data == "toyworld_outfits":
        return ToyWorldOutfitGrid(config.resolution, config.num_samples, config.seed)
    return HMTriplePairs(config.hm_root, config.resolution)


def _prepare_trainable(config: Text2GraphTrainConfig, components: Components) -> list[torch.nn.Parameter]:
    components.text_encoder.requires_grad_(config.train_text_encoder and config.adapter == "full")
    if components.vae is not None:
        components.vae.requires_grad_(False).eval()
    if config.adapter == "lora":
        components.unet.requires_grad_(False)
        components.unet.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                                               target_modules=LORA_TARGETS))
    trainable = [p for p in components.unet.parameters() if p.requires_grad]
    return trainable + [p for p in components.text_encoder.parameters() if p.requires_grad]


def _targets(components: Components, images: torch.Tensor) -> torch.Tensor:
    pixels = images * 2.0 - 1.0  # (B, 3, H, W) in [-1, 1]
    if components.vae is None:
        return pixels
    with torch.no_grad():
        return components.vae.encode(pixels).latent_dist.sample() * components.latent_scale  # (B, 4, H/8, W/8)


def _drop_captions(captions: list[str], triples: list, probability: float,
                   generator: torch.Generator) -> tuple[list[str], list]:
    """Replace each sample's prompt by the empty one with ``probability`` (classifier-free guidance)."""
    if probability <= 0.0:
        return captions, triples
    keep = (torch.rand(len(captions), generator=generator) >= probability).tolist()
    return ([c if k else "" for c, k in zip(captions, keep)], [t if k else [] for t, k in zip(triples, keep)])


def train(config: Text2GraphTrainConfig) -> TrainResult:
    """Run ``config.steps`` optimiser steps and write ``config.output``; returns the losses."""
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    components = load_components(config)
    trainable = _prepare_trainable(config, components)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(build_dataset(config), batch_size=config.batch_size, shuffle=True, collate_fn=collate,
                        generator=generator, drop_last=False, num_workers=config.num_workers,
                        persistent_workers=config.num_workers > 0)
    unet, text_encoder, optimizer, loader = accelerator.prepare(components.unet, components.text_encoder, optimizer, loader)
    if components.vae is not None:
        components.vae.to(accelerator.device)
    scheduler = components.scheduler
    losses: list[float] = []
    unet.train()
    while len(losses) < config.steps:
        for batch in loader:
            targets = _targets(components, batch[keys.IMAGE])
            noise = torch.randn_like(targets)
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (targets.shape[0],), device=targets.device)
            noisy = scheduler.add_noise(targets, noise, timesteps)
            captions, triples = _drop_captions(batch[keys.CAPTION], batch[TRIPLES], config.caption_dropout, generator)
            with torch.set_grad_enabled(config.train_text_encoder and config.adapter == "full"):
                context = encode_batch(components.tokenizer, accelerator.unwrap_model(text_encoder),
                                       captions, triples, config.prompt_mode)  # (B, 77·k, C)
            prediction = unet(noisy, timesteps, encoder_hidden_states=context).sample
            loss = F.mse_loss(prediction.float(), noise.float())
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            if len(losses) % 50 == 0:
                logger.info("step %d loss %.4f", len(losses), sum(losses[-50:]) / 50)
            if len(losses) >= config.steps:
                break
    components.unet = accelerator.unwrap_model(unet).eval()
    components.text_encoder = accelerator.unwrap_model(text_encoder).eval()
    output = _export(config, components)
    return TrainResult(output, losses, components)


def _export(config: Text2GraphTrainConfig, components: Components) -> Path:
    """LoRA: kohya keys for ComfyUI's LoraLoader. Full: the UNet's diffusers state dict."""
    metadata = {"atelier_prompt_mode": config.prompt_mode, "atelier_data": config.data}
    if config.adapter == "lora":
        state = get_peft_model_state_dict(components.unet)
        return save_kohya_lora(config.output, state, config.rank, config.alpha, metadata)
    path = Path(config.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in components.unet.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return path
