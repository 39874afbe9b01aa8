"""The Text2Graph fine-tune (paper: Stable Diffusion fine-tuned with LoRA on triple prompts, AdamW):
epsilon-prediction MSE on (image, prompt) pairs, peft LoRA on the UNet attention projections, through
the shared loop (``loop.run_steps``: the standard controls, checkpoints, exact resume; several
processes or nodes through ``accelerate launch``)."""

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

from ..batch_stream import BatchStream
from ..controls import ControlSettings
from ..datasets import sample as keys
from ..loop import LoopSettings, global_randn_like, hyperparameters_of, process_slice, run_steps
from ..optimisation import LOG_FOLDER, tracker_names
from .config import Text2GraphTrainConfig
from .data import TRIPLES, HMTriplePairs, ToyWorldOutfitGrid, ToyWorldPeople, collate
from .lora_export import save_kohya_lora
from .models import Components, load_components
from .text_encoding import encode_batch
from .validation import validation_for

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
    """Pixels, or latents sampled from the VAE posterior with this process's rows of a global-batch
    draw of the global RNG (one process: the posterior's own ``sample()``)."""
    pixels = images * 2.0 - 1.0  # (B, 3, H, W) in [-1, 1]
    if components.vae is None:
        return pixels
    with torch.no_grad():
        posterior = components.vae.encode(pixels).latent_dist
        count, _, rows = process_slice(pixels.shape[0])
        eps = torch.randn((count * pixels.shape[0], *posterior.mean.shape[1:]), device=posterior.mean.device,
                          dtype=posterior.mean.dtype)[rows]  # (B, 4, H/8, W/8)
        return (posterior.mean + posterior.std * eps) * components.latent_scale


def _drop_captions(captions: list[str], triples: list, probability: float,
                   generator: torch.Generator) -> tuple[list[str], list]:
    """Replace each sample's prompt by the empty one with ``probability`` (classifier-free guidance);
    drawn for the global batch, this process's rows kept."""
    if probability <= 0.0:
        return captions, triples
    count, _, rows = process_slice(len(captions))
    keep = (torch.rand(count * len(captions), generator=generator)[rows] >= probability).tolist()
    return ([c if k else "" for c, k in zip(captions, keep)], [t if k else [] for t, k in zip(triples, keep)])


def loop_settings_of(config: Text2GraphTrainConfig, args=None) -> LoopSettings:
    """The loop and control settings: the CLI's options where it has them (``args``), else no
    checkpoint but the last, a log line every 50 steps and every control off."""
    return LoopSettings(config.steps, getattr(args, "log_every", 50), getattr(args, "checkpoint_every", 0),
                        getattr(args, "keep_checkpoints", 1), getattr(args, "resume", False),
                        ControlSettings.from_args(args) if args is not None else ControlSettings(),
                        {"--pretrained": config.pretrained},
                        hyperparameters_of(args) if args is not None else {})


def train(config: Text2GraphTrainConfig, settings: LoopSettings | None = None) -> TrainResult:
    """Run ``config.steps`` optimiser steps through the shared loop (``loop.run_steps``: controls,
    checkpoints under ``checkpoints-text2graph`` beside ``config.output``) and write ``config.output``;
    returns the losses. Batches come from a shuffling loader (``BatchStream``), noise and timesteps
    from the global RNG, as the trainer always drew them."""
    settings = settings or loop_settings_of(config)
    out = Path(config.output).parent
    accelerator = Accelerator(mixed_precision=config.mixed_precision, log_with=tracker_names(settings.controls.report_to),
                              project_dir=str(out / LOG_FOLDER))
    set_seed(config.seed)
    logger.info("loading the %s models (%s adapter, %s space)", config.pretrained, config.adapter, config.space)
    components = load_components(config)
    trainable = _prepare_trainable(config, components)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    dataset = build_dataset(config)
    logger.info("data: %s, %d samples at %d px (%s prompts); %d steps of batch %d, output %s", config.data,
                len(dataset), config.resolution, config.prompt_mode, config.steps, config.batch_size, config.output)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, collate_fn=collate,
                        generator=generator, drop_last=False, num_workers=config.num_workers,
                        persistent_workers=config.num_workers > 0)
    trains_text = config.train_text_encoder and config.adapter == "full"
    if trains_text:  # DDP refuses a module without trainable parameters
        unet, text_encoder, optimizer, loader = accelerator.prepare(components.unet, components.text_encoder, optimizer, loader)
    else:
        unet, optimizer, loader = accelerator.prepare(components.unet, optimizer, loader)
        text_encoder = components.text_encoder.to(accelerator.device)
    if components.vae is not None:
        components.vae.to(accelerator.device)
    scheduler = components.scheduler
    stream = BatchStream(loader, generator)
    unet.train()

    def step_losses(step: int):
        batch = stream.next()
        targets = _targets(components, batch[keys.IMAGE])
        count, _, rows = process_slice(targets.shape[0])
        noise = global_randn_like(targets)  # (B, C, h, w)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (count * targets.shape[0],),
                                  device=targets.device)[rows]
        noisy = scheduler.add_noise(targets, noise, timesteps)
        captions, triples = _drop_captions(batch[keys.CAPTION], batch[TRIPLES], config.caption_dropout, generator)
        with torch.set_grad_enabled(trains_text):
            context = encode_batch(components.tokenizer, accelerator.unwrap_model(text_encoder),
                                   captions, triples, config.prompt_mode)  # (B, 77·k, C)
        prediction = unet(noisy, timesteps, encoder_hidden_states=context).sample
        loss = F.mse_loss(prediction.float(), noise.float())
        return {"loss": loss}, loss

    trained = torch.nn.ModuleDict({"unet": accelerator.unwrap_model(unet),
                                   "text_encoder": accelerator.unwrap_model(text_encoder)})
    validate = validation_for(Components(trained["unet"], trained["text_encoder"], components.tokenizer, components.vae,
                                         scheduler, components.latent_scale),
                              dataset, settings.controls.validation_samples, config.prompt_mode, config.resolution,
                              config.seed)
    history = run_steps(accelerator, trained, optimizer, out, "text2graph", settings, step_losses,
                        average=trains_text, validate=validate, extras={"batches": stream})
    components.unet = accelerator.unwrap_model(unet).eval()
    components.text_encoder = accelerator.unwrap_model(text_encoder).eval()
    output = _export(config, components) if accelerator.is_main_process else Path(config.output)
    accelerator.wait_for_everyone()
    return TrainResult(output, [values["loss"] for values in history], components)


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
