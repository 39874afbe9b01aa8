"""The toy-world colour evaluation of a dressing weight file (or of the plain denoiser).

Protocol (img2img, so every garment's region is known): for each held-out toy person, paint its
garments' regions neutral grey, encode, noise to ``noise_strength`` of the schedule with a noise
fixed by (seed, sample), denoise with DDIM while DressingNet reads the garments (λ = ``strength``),
decode, and measure for each garment k against its ground-truth mask M_k:

- ``fidelity``: fraction of M_k's pixels within 15 ΔE of one of the garment's colours (color_fidelity);
- ``color_error``: ΔE between the mean L*a*b* colours of the picture and of the ground truth inside
  M_k (mean_color_error: the garment as drawn, pattern included; a median would name a check
  pattern's colour when it covers more than half of a small garment);
- ``leak_garments``: fraction of the other garments' pixels that took garment k's main colour
  (color_leakage, pixels already that colour in the ground truth not counted);
- ``leak_background``: the same over the background (everything outside the person).

Also ``eps_mse_garments``: the denoiser's noise-prediction MSE inside the garments' regions for the
clean person noised to t = 800 (fixed noise per sample), a direct measure of how much garment
information reaches DressingNet, independent of sampling.

``python -m atelier.train.anydressing.evaluate --weights OUT/anydressing.safetensors --init-unet
OUT/base_unet.safetensors`` prints one JSON line; without ``--weights`` it measures the no-garment
baseline (same protocol, plain denoiser).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler

from ...models.anydressing.config import PAPER_LAMBDA, DressingConfig
from ...models.anydressing.dressing_run import DressingRun
from ...models.diffusers_host import DiffusersReferenceHost
from ...models.weights import load_weight_file
from ..command_line import add_out_option, add_seed_option, add_threads_option, make_parser, output_file, run_cli
from ..loop import start_cli
from ..metrics.color import color_fidelity, color_leakage, mean_color_error
from .components import BaseComponents, encode_text, load_base
from .data import TILED_CATEGORY, ToyDressing, collate, tiled
from .steps import DressingTrainables, encode_garments, reading_config

logger = logging.getLogger("atelier.train.anydressing")

NEUTRAL_GREY = 0.5
REPORT_FILE = "evaluation.json"
HELD_OUT_START = 100_000  # toy-world person indices of the evaluation set (training uses 0..N-1)
METRICS = ("fidelity", "color_error", "leak_garments", "leak_background")
ERROR_TIMESTEP = 800  # t of the garment-region noise-prediction error


def load_dressing(path: str) -> tuple[DressingConfig, DressingTrainables]:
    """Config and modules of an AnyDressing weight file (LoRA-mode GarmentsNet)."""
    loaded = load_weight_file(path, expected_system="anydressing", needed_by="--weights")
    config = DressingConfig.from_dict(loaded.config)
    return config, DressingTrainables(loaded.modules["garment_lora"], loaded.modules["projections"]).eval()


def grey_out(person: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``person`` (3, H, W) with the union of ``masks`` (N, H, W) painted neutral grey."""
    union = masks.amax(0, keepdim=True) > 0  # (1, H, W)
    return torch.where(union, torch.full_like(person, NEUTRAL_GREY), person)


@torch.no_grad()
def denoise(components: BaseComponents, start: torch.Tensor, noise_strength: float, steps: int,
            generator: torch.Generator, read=None) -> torch.Tensor:
    """Img2img from images ``start`` (B, 3, H, W): DDIM from ``noise_strength`` of the schedule to 0;
    ``read(host_forward_args) -> noise`` is the dressing call or None for the plain UNet."""
    scheduler = DDIMScheduler.from_config(components.scheduler.config)
    scheduler.set_timesteps(steps)
    limit = noise_strength * scheduler.config.num_train_timesteps
    timesteps = [t for t in scheduler.timesteps if float(t) <= limit]
    latents = components.vae.encode(start)  # (B, 4, h, w)
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    latents = scheduler.add_noise(latents, noise, timesteps[0].reshape(1))
    context = encode_text(components, [""] * start.shape[0])
    for t in timesteps:
        batch_t = t.reshape(1).repeat(latents.shape[0]).to(latents.device)
        prediction = read(latents, batch_t, context) if read is not None else components.unet(latents, batch_t, encoder_hidden_states=context).sample
        latents = scheduler.step(prediction, t, latents).prev_sample
    return components.vae.decode(latents).clamp(0.0, 1.0)  # (B, 3, H, W)


@torch.no_grad()
def garment_region_noise_error(components: BaseComponents, person: torch.Tensor, masks: torch.Tensor, timestep: int,
                               generator: torch.Generator, read=None) -> float:
    """MSE of the predicted noise ε inside the garments' regions (latent grid) for the clean person
    (1, 3, H, W) noised to ``timestep``: lower means the garments told the denoiser more."""
    latents = components.vae.encode(person)  # (1, 4, h, w)
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    t = torch.tensor([timestep], device=latents.device)
    noisy = components.scheduler.add_noise(latents, noise, t)
    context = encode_text(components, [""])
    prediction = read(noisy, t, context) if read is not None else components.unet(noisy, t, encoder_hidden_states=context).sample
    region = F.interpolate(masks.amax(0)[None, None].to(latents), size=latents.shape[-2:], mode="area")  # (1, 1, h, w)
    squared = (prediction - noise).pow(2).mean(1, keepdim=True)  # (1, 1, h, w)
    return float((squared * region).sum() / region.sum().clamp(min=1e-6))


def garment_scores(image: np.ndarray, truth: np.ndarray, masks: dict[str, np.ndarray], person: np.ndarray,
                   specs: dict) -> list[dict[str, float]]:
    """The four metrics of each garment (see module docstring)."""
    scores = []
    for category, mask in masks.items():
        spec = specs[category]
        others = np.zeros_like(mask)
        for other, other_mask in masks.items():
            if other != category:
                others |= other_mask
        colors = [c.rgb for c in spec.colors()]
        scores.append({
            "fidelity": color_fidelity(image, mask, colors),
            "color_error": mean_color_error(image, truth, mask),
            "leak_garments": color_leakage(image, spec.color.rgb, others, reference=truth),
            "leak_background": color_leakage(image, spec.color.rgb, ~person, reference=truth),
        })
    return scores


@torch.no_grad()
def evaluate(components: BaseComponents, dataset: ToyDressing, count: int, dressing: tuple[DressingConfig, DressingTrainables] | None,
             strength: float = PAPER_LAMBDA, noise_strength: float = 0.7, steps: int = 20, seed: int = 0) -> dict[str, float]:
    """Mean metrics over the first ``count`` samples of ``dataset`` (and over their garments)."""
    all_scores: list[dict[str, float]] = []
    noise_errors: list[float] = []
    components.unet.eval()
    for position in range(min(count, len(dataset))):
        sample = dataset[position]
        truth = dataset.person(position)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + position)
        start = grey_out(sample.person, sample.garment_masks)[None]  # (1, 3, H, W)
        error_generator = torch.Generator().manual_seed(seed * 1_000_003 + position + 1)
        if dressing is not None:
            config, trainables = dressing
            batch = collate([tiled(sample) if config.slots == (TILED_CATEGORY,) else sample])
            host = DiffusersReferenceHost(components.unet, reading_config(config, strength), trainables.projections)
            with host:
                bank = encode_garments(components, trainables, config, batch.garments, batch.categories)
                run = DressingRun(host.config, bank, trainables.projections)

                def read(x, t, c, host=host, run=run):
                    return host.forward(run, x, t, c, cond_or_uncond=[0]).sample

                image = denoise(components, start, noise_strength, steps, generator, read)
                noise_errors.append(garment_region_noise_error(components, sample.person[None], sample.garment_masks,
                                                               ERROR_TIMESTEP, error_generator, read))
                run.release()
        else:
            image = denoise(components, start, noise_strength, steps, generator)
            noise_errors.append(garment_region_noise_error(components, sample.person[None], sample.garment_masks,
                                                           ERROR_TIMESTEP, error_generator))
        pixels = (image[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)  # (H, W, 3)
        masks = {c: truth.masks[c] for c in sample.categories}
        all_scores.extend(garment_scores(pixels, truth.image, masks, truth.masks["person"], {c: truth.garments[c].spec for c in sample.categories}))
    means = {name: float(np.mean([s[name] for s in all_scores])) for name in METRICS}
    return means | {"eps_mse_garments": float(np.mean(noise_errors)), "garments": len(all_scores)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of the evaluation command."""
    p = make_parser("python -m atelier.train.anydressing.evaluate", __doc__)
    p.add_argument("--weights", default=None, help="AnyDressing weight file; without it: the no-garment baseline")
    p.add_argument("--base", default="tiny", help="'tiny' or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="the denoiser's diffusers-format weights (stage 0's base_unet.safetensors)")
    p.add_argument("--vae-factor", type=int, default=None, help="toy --base: the pixel VAE's factor (default: the substrate's)")
    p.add_argument("--size", type=int, default=64, help="image side")
    p.add_argument("--garments", default="upper,lower", help="garment categories of the held-out people")
    p.add_argument("--count", type=int, default=32, help="held-out people")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--strength", type=float, default=PAPER_LAMBDA, help="λ of Dressing-Attention (paper: 0.7)")
    p.add_argument("--noise-strength", type=float, default=0.7, help="img2img: fraction of the schedule noised")
    p.add_argument("--steps", type=int, default=20, help="DDIM steps over the full schedule")
    add_seed_option(p, "noise seed")
    add_threads_option(p)
    add_out_option(p, f"also write the metrics there as {REPORT_FILE}", required=False)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Print the metrics as one JSON line."""
    start_cli(args)
    components = load_base(args.base, 0, args.init_unet, args.vae_factor)
    categories = tuple(c for c in args.garments.split(",") if c)
    dataset = ToyDressing(args.size, HELD_OUT_START, args.count * 3, args.world_seed, categories)
    dressing = load_dressing(args.weights) if args.weights else None
    result = evaluate(components, dataset, args.count, dressing, args.strength, args.noise_strength, args.steps, args.seed)
    line = json.dumps({"weights": args.weights, "strength": args.strength, **result})
    if args.out:
        output_file(args.out, REPORT_FILE).write_text(line + "\n")
    print(line)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point; a user error is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
