"""The toy-world restoration evaluation of an IGR run.

Protocol: for each held-out toy pair (persons from ``HELD_OUT_START``, one pair per worn upper /
lower / dress garment), GarmNet runs once over E(p) and m, the IP path embeds p_g, and the flat
garment is sampled from noise fixed by (seed, pair) with DDIM (``--steps``, the paper's 25) and
classifier-free guidance (``--guidance``, the paper's 1.5): the conditional chunk reads the garment
features with the category prompt, the unconditional chunk reads none and has the empty prompt,
as in training's condition drop. The restored garment is scored against the ground-truth flat
garment (the toy world's shop image at the cloth size):

- ``ssim`` and ``psnr`` over the whole picture (train.metrics.similarity);
- ``color_fidelity``: fraction of the true garment's pixels within 15 ΔE of one of its colours;
- ``pattern_fidelity``: the pattern signatures of the garment region compared (train.metrics.pattern).

Also ``eps_mse``: the denoiser's noise-prediction MSE on the true flat garment noised to
``ERROR_TIMESTEP`` (noise fixed per pair), conditional chunk only: how much the garment features
tell the denoiser, independent of sampling (lower is better); ``eps_mse_no_features`` is the same
with the same (trained) denoiser and prompt but no garment features, so the gap between the two is
what the garment paths contribute (equal for the prior).

Without ``--weights`` the plain denoiser samples from the category prompt alone (no garment
features): the prior's baseline.

``python -m atelier.train.igr.evaluate --weights OUT --init-unet BASE/base_unet.safetensors``
prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler

from ...models.igr.config import PAPER_GUIDANCE, IGRConfig
from ...models.igr.diffusers_igr import DiffusersIGRHost
from ...models.weights import load_weight_file
from ..command_line import add_out_option, add_seed_option, add_threads_option, make_parser, output_file, run_cli
from ..anydressing.components import BaseComponents, encode_text, load_base
from ..loop import start_cli
from ..metrics.color import color_fidelity
from ..metrics.pattern import pattern_fidelity
from ..metrics.similarity import psnr, ssim
from ..text2graph.lora_export import read_metadata
from .cli import parse_size
from .components import FROZEN_SEED, ImageEncoder, load_image_encoder
from .data import IGRBatch, ToyIGR, collate
from .previous import (
    DENOISER_LORA_FILE,
    DENOISER_UNET_FILE,
    WEIGHT_FILE,
    PreviousRunError,
    load_previous,
)
from .steps import (
    DenoiserUpdate,
    IGRTrainables,
    build_trainables,
    garment_features,
    prompts_for,
    reading_config,
)

REPORT_FILE = "evaluation.json"

logger = logging.getLogger("atelier.train.igr")

HELD_OUT_START = 100_000  # toy-world person indices of the evaluation set (training uses 0..N-1)
METRICS = ("ssim", "psnr", "color_fidelity", "pattern_fidelity", "eps_mse", "eps_mse_no_features")
ERROR_TIMESTEP = 500


def load_igr(components: BaseComponents, weights: str) -> tuple[IGRConfig, IGRTrainables]:
    """Config and modules of a run's output folder (or its ``igr.safetensors``), with the denoiser
    update applied to ``components.unet``."""
    folder = Path(weights)
    folder = folder.parent if folder.is_file() else folder
    config = IGRConfig.from_dict(load_weight_file(str(folder / WEIGHT_FILE), expected_system="igr", needed_by="--weights").config)
    if (folder / DENOISER_LORA_FILE).is_file():
        metadata = read_metadata(folder / DENOISER_LORA_FILE)
        update = DenoiserUpdate("lora", int(metadata["ss_network_dim"]), float(metadata["ss_network_alpha"]))
    elif (folder / DENOISER_UNET_FILE).is_file():
        update = DenoiserUpdate("full")
    else:
        raise PreviousRunError(f"--weights {str(folder)!r} holds neither {DENOISER_LORA_FILE} nor {DENOISER_UNET_FILE}")
    trainables = build_trainables(components, config, update)
    load_previous(trainables, folder, config, update)
    return config, trainables.requires_grad_(False).eval()


def _features_run(components: BaseComponents, batch: IGRBatch, igr: tuple[IGRConfig, IGRTrainables] | None,
                  encoder: ImageEncoder | None):
    """An installed host and a run over the batch's garment features, or (None, None) for the prior."""
    if igr is None:
        return None, None
    config, trainables = igr
    host = DiffusersIGRHost(trainables.unet, trainables.garmnet if config.high_level else None,
                            trainables.ip_adapter if config.low_level else None, reading_config(config))
    host.install()
    try:
        bank, tokens = garment_features(components, trainables, config, encoder, host, batch)
    except BaseException:
        host.remove()
        raise
    return host, host.new_run(bank, tokens, 1.0)


@torch.no_grad()
def noise_prediction_error(components: BaseComponents, batch: IGRBatch, igr: tuple[IGRConfig, IGRTrainables] | None,
                           encoder: ImageEncoder | None, noise: torch.Tensor, timestep: int = ERROR_TIMESTEP,
                           region: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair MSE (B,) of the predicted ε for the true garments noised with ``noise`` to ``timestep``
    with the category prompt: with the garment features (the prompt alone for the prior), and without.
    ``region`` (B, 1, hc, wc), weights on the latent grid (e.g. the garment's area share per token),
    restricts the mean to it; without it the mean runs over the whole latent."""
    latents = components.vae.encode(batch.garments)  # (B, 4, hc, wc)
    timesteps = torch.full((latents.shape[0],), timestep, device=latents.device)
    noisy = components.scheduler.add_noise(latents, noise, timesteps)
    context = encode_text(components, prompts_for(batch.categories))  # (B, 77, C)
    plain = components.unet(noisy, timesteps, encoder_hidden_states=context).sample
    host, run = _features_run(components, batch, igr, encoder)
    try:
        prediction = plain if host is None else host.forward(run, noisy, timesteps, context, cond_or_uncond=[0]).sample
    finally:
        if run is not None:
            run.release()
            host.remove()

    def error(predicted: torch.Tensor) -> torch.Tensor:
        squared = (predicted.float() - noise.float()).pow(2)  # (B, 4, hc, wc)
        if region is None:
            return squared.flatten(1).mean(1)  # (B,)
        weights = region.float().expand_as(squared)  # (B, 4, hc, wc)
        return (squared * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1e-8)  # (B,)

    return error(prediction), error(plain)


@torch.no_grad()
def restore(components: BaseComponents, batch: IGRBatch, igr: tuple[IGRConfig, IGRTrainables] | None,
            encoder: ImageEncoder | None, guidance: float, steps: int, noise: torch.Tensor) -> torch.Tensor:
    """Sample flat garments (B, 3, Hc, Wc) in [0, 1] for the batch's persons from ``noise`` (B, 4, hc, wc)."""
    scheduler = DDIMScheduler.from_config(components.scheduler.config)
    scheduler.set_timesteps(steps)
    rows = noise.shape[0]
    cond = encode_text(components, prompts_for(batch.categories))  # (B, 77, C)
    uncond = encode_text(components, [""] * rows)  # (B, 77, C)
    context = torch.cat([uncond, cond])  # (2B, 77, C): chunks [uncond, cond]
    latents = noise * scheduler.init_noise_sigma
    host, run = _features_run(components, batch, igr, encoder)
    try:
        for t in scheduler.timesteps:
            doubled = torch.cat([latents, latents])  # (2B, 4, hc, wc)
            batch_t = t.reshape(1).repeat(2 * rows).to(latents.device)
            if host is None:
                prediction = components.unet(doubled, batch_t, encoder_hidden_states=context).sample
            else:
                prediction = host.forward(run, doubled, batch_t, context, cond_or_uncond=[1, 0]).sample
            eps_uncond, eps_cond = prediction.chunk(2)  # (B, 4, hc, wc) each
            eps = eps_uncond + guidance * (eps_cond - eps_uncond)
            latents = scheduler.step(eps, t, latents).prev_sample
    finally:
        if run is not None:
            run.release()
        if host is not None:
            host.remove()
    return components.vae.decode(latents).clamp(0.0, 1.0)  # (B, 3, Hc, Wc)


def _pixels(image: torch.Tensor) -> np.ndarray:
    return (image.permute(1, 2, 0).cpu().float().numpy() * 255).round().astype(np.uint8)  # (H, W, 3)


def garment_scores(restored: torch.Tensor, truth: torch.Tensor, mask: np.ndarray, colors: list[tuple[int, int, int]]) -> dict[str, float]:
    """The four metrics of one restored garment (3, Hc, Wc) against the truth (3, Hc, Wc) and its mask (Hc, Wc)."""
    image, reference = _pixels(restored), _pixels(truth)
    return {
        "ssim": ssim(image, reference), "psnr": psnr(image, reference),
        "color_fidelity": color_fidelity(image, mask, colors), "pattern_fidelity": pattern_fidelity(image, reference, mask),
    }


def truth_mask(shop_mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The shop mask (H, W) bool nearest-resized to the cloth size."""
    resized = F.interpolate(torch.from_numpy(shop_mask)[None, None].float(), size=size, mode="nearest")  # (1, 1, Hc, Wc)
    return resized[0, 0].numpy() > 0.5


@torch.no_grad()
def evaluate(components: BaseComponents, dataset: ToyIGR, count: int, igr: tuple[IGRConfig, IGRTrainables] | None,
             encoder: ImageEncoder | None, guidance: float = PAPER_GUIDANCE, steps: int = 25, seed: int = 0,
             batch_size: int = 8) -> dict:
    """Mean metrics over the first ``count`` pairs of ``dataset``, overall and per category."""
    components.unet.eval()
    scores: list[tuple[str, dict[str, float]]] = []
    total = min(count, len(dataset))
    for first in range(0, total, batch_size):
        positions = list(range(first, min(first + batch_size, total)))
        batch = collate([dataset[p] for p in positions]).to(components.unet.device)
        factor = batch.persons.shape[-1] // components.vae.encode(batch.persons[:1]).shape[-1]
        shape = (4, batch.garments.shape[-2] // factor, batch.garments.shape[-1] // factor)
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + p))
                             for p in positions]).to(batch.persons)  # (B, 4, hc, wc)
        restored = restore(components, batch, igr, encoder, guidance, steps, noise)
        error_noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + p + 1))
                                   for p in positions]).to(batch.persons)  # (B, 4, hc, wc)
        errors, plain_errors = noise_prediction_error(components, batch, igr, encoder, error_noise)  # (B,) each
        for row, position in enumerate(positions):
            garment = dataset.person(position).garments[batch.categories[row]]
            mask = truth_mask(garment.shop_mask, tuple(batch.garments.shape[-2:]))
            colors = [c.rgb for c in garment.spec.colors()]
            metrics = garment_scores(restored[row], batch.garments[row], mask, colors)
            scores.append((batch.categories[row], metrics | {"eps_mse": float(errors[row]),
                                                          "eps_mse_no_features": float(plain_errors[row])}))
    result: dict = {name: float(np.mean([s[name] for _, s in scores])) for name in METRICS}
    result["pairs"] = len(scores)
    result["by_category"] = {
        category: {name: float(np.mean([s[name] for c, s in scores if c == category])) for name in METRICS}
        | {"pairs": sum(c == category for c, _ in scores)}
        for category in sorted({c for c, _ in scores})
    }
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of the evaluation command."""
    p = make_parser("python -m atelier.train.igr.evaluate", __doc__)
    p.add_argument("--weights", default=None, help="an IGR run's output folder (or its igr.safetensors); without it: the prior alone")
    p.add_argument("--base", default="tiny", help="'tiny' or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="the denoiser's diffusers-format weights (the base stage's base_unet.safetensors)")
    p.add_argument("--vae-factor", type=int, default=None, help="toy --base: the pixel VAE's factor (default: the substrate's)")
    p.add_argument("--image-encoder", default="tiny", help="the image encoder the run was trained with")
    p.add_argument("--person-size", type=parse_size, default=(64, 64), help="person image N or HxW")
    p.add_argument("--cloth-size", type=parse_size, default=None, help="garment N or HxW (default: person size)")
    p.add_argument("--garments", default="upper,lower,dress", help="garment categories of the held-out pairs")
    p.add_argument("--mask", choices=("agnostic", "garment"), default="agnostic", help="m: agnostic mask or worn pixels")
    p.add_argument("--count", type=int, default=32, help="held-out pairs")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--guidance", type=float, default=PAPER_GUIDANCE, help="CFG scale (paper: 1.5)")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps (paper: 25)")
    add_seed_option(p, "noise seed")
    p.add_argument("--batch-size", type=int, default=8, help="pairs sampled together")
    add_threads_option(p)
    p.add_argument("--cpu", action="store_true", help="evaluate on the CPU even when a GPU is present")
    add_out_option(p, f"also write the metrics there as {REPORT_FILE}", required=False)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Print the metrics as one JSON line."""
    start_cli(args)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    components = load_base(args.base, FROZEN_SEED, args.init_unet, args.vae_factor)
    igr = load_igr(components, args.weights) if args.weights else None
    components.to(device)
    if igr is not None:
        igr[1].to(device)
    encoder = load_image_encoder(args.image_encoder).to(device) if igr is not None and igr[0].low_level else None
    categories = tuple(c for c in args.garments.split(",") if c)
    dataset = ToyIGR(args.person_size, args.cloth_size, HELD_OUT_START, args.count, args.world_seed, categories,
                     args.mask, rule=None)
    result = evaluate(components, dataset, args.count, igr, encoder, args.guidance, args.steps, args.seed, args.batch_size)
    line = json.dumps({"weights": args.weights, "guidance": args.guidance, "steps": args.steps, **result})
    if args.out:
        output_file(args.out, REPORT_FILE).write_text(line + "\n")
    print(line)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point; a user error is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
