"""The toy-world pose-transfer evaluation of a TruePose run (every variant, concat included).

Protocol: held-out toy-world pose pairs (persons from ``HELD_OUT_START``; training uses 0..N-1; a
``--hidden-part-fraction`` of the targets hide body parts, as in training): the source pass runs once per pair over z_s with the empty prompt, and the target is sampled from noise
fixed by (seed, pair) with DDIM (``--steps``, 20–35 in the paper's range) and classifier-free guidance
ω (``--guidance``, the paper's 3.5): the conditional chunk reads C (SourceNet bank, CLIP regions, pose
features), the unconditional chunk reads none (UncondPolicy.NONE), as in training's condition dropout.
The re-posed person is scored against the ground-truth target image (``train.metrics``):

- ``ssim`` and ``psnr`` over the whole picture, and ``ssim_person`` / ``psnr_person`` restricted to
  the target's person region (SSIM windows centred there; the person mask of the toy world);
- ``color_fidelity``: for each worn upper / lower / dress garment, the fraction of the TARGET's
  garment pixels (the target's own garment mask) whose sampled colour is within 15 ΔE of one of the
  garment's colours, averaged over garments; ``color_error``: ΔE between the median colour of those
  pixels and the garment's main colour (lower is better; robust to the pixel VAE's blur, which
  mixes edge pixels with their neighbours and caps ``color_fidelity`` well below 1, see ``vae_ceiling``);
- ``eps_mse``: the noise-prediction MSE on the true target noised to ``ERROR_TIMESTEP`` with C
  (noise fixed per pair), and ``eps_mse_no_condition`` the same without C: sampling-free, lower is better.

With ``--floor`` the same model is also sampled with the unconditional chunk alone (``no_condition``:
no C at all), the floor every variant must beat; ``vae_ceiling`` scores D(E(target)), the best any
sample can reach through the (pixel) VAE.

``python -m atelier.train.truepose.evaluate --weights OUT --init-unet BASE/base_unet.safetensors --size 64x48``
prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file

from ...models.errors import AtelierError
from ...models.truepose.config import PAPER_GUIDANCE, TruePoseConfig
from ...models.weight_format import META_CONFIG
from ...models.weights import load_weight_file
from ..anydressing.components import BaseComponents, load_base
from ..igr.components import FROZEN_SEED, ImageEncoder, load_image_encoder
from ..igr.previous import kohya_name
from ..igr.steps import DenoiserUpdate
from ..loop import start_cli
from ..metrics.color import color_fidelity, region_color_error
from ..metrics.similarity import psnr, ssim
from ..text2graph.lora_export import read_metadata
from .cli import (
    CONCAT_FILE,
    CONCAT_POSE_PREFIX,
    META_VARIANT,
    UNET_FILE,
    UNET_LORA_FILE,
    WEIGHT_FILE,
)
from .components import empty_context, source_conditions
from .data import DEFAULT_HIDDEN_PART_FRACTION, PoseTransferBatch, ToyPosePairs, collate, parse_size
from .steps import TruePoseTrainables, build_trainables, conditioned_unet, uses_caa

HELD_OUT_START = 100_000  # toy-world person indices of the evaluation set
ERROR_TIMESTEP = 500
GARMENT_SLOTS = ("upper", "lower", "dress")
MIN_GARMENT_PIXELS = 4


class TrainedRunError(AtelierError, FileNotFoundError):
    """--weights names a folder without a TruePose run's files, or --image-encoder does not fit the run."""


@dataclass
class TrainedTruePose:
    """A run's variant, config and modules (UNet update applied), frozen for sampling."""

    variant: str
    config: TruePoseConfig
    trainables: TruePoseTrainables


def _unet_update(folder: Path) -> DenoiserUpdate:
    if (folder / UNET_LORA_FILE).is_file():
        metadata = read_metadata(folder / UNET_LORA_FILE)
        return DenoiserUpdate("lora", int(metadata["ss_network_dim"]), float(metadata["ss_network_alpha"]))
    if (folder / UNET_FILE).is_file():
        return DenoiserUpdate("full")
    raise TrainedRunError(f"--weights {str(folder)!r} holds neither {UNET_LORA_FILE} nor {UNET_FILE}")


def load_trained(components: BaseComponents, weights: str) -> TrainedTruePose:
    """A run's output folder (or one of its files) -> its modules, with the UNet update applied to
    ``components.unet``. Reads ``truepose.safetensors`` or, for concat, ``truepose_concat.safetensors``."""
    folder = Path(weights)
    folder = folder.parent if folder.is_file() else folder
    if (folder / WEIGHT_FILE).is_file():
        loaded = load_weight_file(str(folder / WEIGHT_FILE), expected_system="truepose")
        config = TruePoseConfig.from_dict(loaded.config)
        variant = read_metadata(folder / WEIGHT_FILE).get(META_VARIANT, "full" if config.parsing_guidance else "no-hpfa")
        states = {name: module.state_dict() for name, module in loaded.modules.items()}
    elif (folder / CONCAT_FILE).is_file():
        metadata = read_metadata(folder / CONCAT_FILE)
        config, variant = TruePoseConfig.from_dict(json.loads(metadata[META_CONFIG])), "concat"
        tensors = load_file(str(folder / CONCAT_FILE))
        states = {"pose_encoder": {key[len(CONCAT_POSE_PREFIX):]: value for key, value in tensors.items()}}
    else:
        raise TrainedRunError(f"--weights {str(folder)!r} holds neither {WEIGHT_FILE} nor {CONCAT_FILE}")
    update = _unet_update(folder)
    trainables = build_trainables(components, config, variant, update)
    for name in ("hpfa", "caa", "pose_encoder"):
        module = getattr(trainables, name)
        if module is not None:
            module.load_state_dict(states[name])
    if update.mode == "full":
        trainables.unet.load_state_dict(load_file(str(folder / UNET_FILE)))
    else:
        kohya = load_file(str(folder / UNET_LORA_FILE))
        own = get_peft_model_state_dict(trainables.unet)
        set_peft_model_state_dict(trainables.unet, {key: kohya[kohya_name(key)] for key in own})
    return TrainedTruePose(variant, config, trainables.requires_grad_(False).eval())


def _encoder_for(trained: TrainedTruePose, encoder: ImageEncoder | None) -> ImageEncoder | None:
    return encoder if uses_caa(trained.variant) else None


@torch.no_grad()
def repose(components: BaseComponents, trained: TrainedTruePose, batch: PoseTransferBatch, encoder: ImageEncoder | None,
           noise: torch.Tensor, guidance: float, steps: int, condition: bool = True) -> torch.Tensor:
    """Sample the targets (B, 3, H, W) in [0, 1] from ``noise`` (B, 4, h, w): CFG over [uncond, cond]
    chunks, or the unconditional chunk alone when ``condition`` is False."""
    scheduler = DDIMScheduler.from_config(components.scheduler.config)
    scheduler.set_timesteps(steps)
    rows = noise.shape[0]
    unet = trained.trainables.unet
    latents = noise * scheduler.init_noise_sigma
    if not condition:
        context = empty_context(components, rows)  # (B, 77, C)
        for t in scheduler.timesteps:
            eps = unet(latents, t.reshape(1).repeat(rows).to(latents.device), encoder_hidden_states=context).sample
            latents = scheduler.step(eps, t, latents).prev_sample
        return components.vae.decode(latents).clamp(0.0, 1.0)
    conditions = source_conditions(components, batch, _encoder_for(trained, encoder))
    with conditioned_unet(trained.trainables, trained.variant, trained.config, conditions, batch.skeletons,
                          empty_context(components, rows), keep_grad=False) as predict:
        context = empty_context(components, 2 * rows)  # (2B, 77, C): chunks [uncond, cond]
        for t in scheduler.timesteps:
            doubled = torch.cat([latents, latents])  # (2B, 4, h, w)
            eps_uncond, eps_cond = predict(doubled, t.reshape(1).repeat(2 * rows).to(latents.device), context,
                                           [1, 0]).chunk(2)  # (B, 4, h, w) each
            latents = scheduler.step(eps_uncond + guidance * (eps_cond - eps_uncond), t, latents).prev_sample
    return components.vae.decode(latents).clamp(0.0, 1.0)  # (B, 3, H, W)


@torch.no_grad()
def noise_prediction_error(components: BaseComponents, trained: TrainedTruePose, batch: PoseTransferBatch,
                           encoder: ImageEncoder | None, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair ε MSE (B,) at ERROR_TIMESTEP on the true targets, with C and without."""
    latents = components.vae.encode(batch.targets)  # (B, 4, h, w)
    timesteps = torch.full((latents.shape[0],), ERROR_TIMESTEP, device=latents.device)
    noisy = components.scheduler.add_noise(latents, noise, timesteps)
    context = empty_context(components, latents.shape[0])
    plain = trained.trainables.unet(noisy, timesteps, encoder_hidden_states=context).sample
    conditions = source_conditions(components, batch, _encoder_for(trained, encoder))
    with conditioned_unet(trained.trainables, trained.variant, trained.config, conditions, batch.skeletons, context,
                          keep_grad=False) as predict:
        conditioned = predict(noisy, timesteps, context, [0])

    def error(predicted: torch.Tensor) -> torch.Tensor:
        return (predicted.float() - noise.float()).pow(2).flatten(1).mean(1)  # (B,)

    return error(conditioned), error(plain)


def _pixels(image: torch.Tensor) -> np.ndarray:
    return (image.permute(1, 2, 0).cpu().float().numpy() * 255).round().astype(np.uint8)  # (H, W, 3)


def pair_scores(image: torch.Tensor, truth: torch.Tensor, target) -> dict[str, float]:
    """SSIM, PSNR (whole and person region) and garment-colour fidelity of one sample (3, H, W) against
    the true target (3, H, W); ``target`` is the toy world's target PersonSample (person and garment
    masks, garment colours)."""
    sampled, reference = _pixels(image), _pixels(truth)
    slots = [slot for slot in GARMENT_SLOTS
             if slot in target.garments and int(target.masks[slot].sum()) >= MIN_GARMENT_PIXELS]
    fidelities = [color_fidelity(sampled, target.masks[slot], [c.rgb for c in target.garments[slot].spec.colors()])
                  for slot in slots]
    errors = [region_color_error(sampled, target.masks[slot], target.garments[slot].spec.color.rgb) for slot in slots]
    person = target.masks["person"]  # (H, W) bool
    return {"ssim": ssim(sampled, reference), "psnr": psnr(sampled, reference),
            "ssim_person": ssim(sampled, reference, person),
            "psnr_person": psnr(sampled, reference, person) if person.any() else float("nan"),
            "color_fidelity": float(np.mean(fidelities)) if slots else float("nan"),
            "color_error": float(np.mean(errors)) if slots else float("nan")}


def _noise(shape: tuple[int, ...], seed: int, positions: list[int], offset: int) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + p + offset))
                        for p in positions])  # (B, 4, h, w)


def _mean(scores: list[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.nanmean([s[name] for s in scores])) for name in scores[0]}


@torch.no_grad()
def evaluate(components: BaseComponents, trained: TrainedTruePose, dataset: ToyPosePairs, count: int,
             encoder: ImageEncoder | None, guidance: float = PAPER_GUIDANCE, steps: int = 25, seed: int = 0,
             batch_size: int = 8, floor: bool = False) -> dict:
    """Mean metrics over the first ``count`` pairs of ``dataset`` (module docstring)."""
    device = next(trained.trainables.unet.parameters()).device
    scores, floors, ceilings = [], [], []
    total = min(count, len(dataset))
    for first in range(0, total, batch_size):
        positions = list(range(first, min(first + batch_size, total)))
        batch = collate([dataset[p] for p in positions]).to(device)
        shape = tuple(components.vae.encode(batch.targets[:1]).shape[1:])
        noise = _noise(shape, seed, positions, 0).to(batch.targets)
        sampled = repose(components, trained, batch, encoder, noise, guidance, steps)
        errors, plain_errors = noise_prediction_error(components, trained, batch, encoder,
                                                      _noise(shape, seed, positions, 1).to(batch.targets))
        unconditioned = repose(components, trained, batch, encoder, noise, guidance, steps, condition=False) if floor else None
        ceiling = components.vae.decode(components.vae.encode(batch.targets)).clamp(0.0, 1.0)
        for row, position in enumerate(positions):
            target = dataset.pair(position).target
            scores.append(pair_scores(sampled[row], batch.targets[row], target)
                          | {"eps_mse": float(errors[row]), "eps_mse_no_condition": float(plain_errors[row])})
            ceilings.append(pair_scores(ceiling[row], batch.targets[row], target))
            if unconditioned is not None:
                floors.append(pair_scores(unconditioned[row], batch.targets[row], target))
    result: dict = {"variant": trained.variant, "pairs": len(scores), **_mean(scores), "vae_ceiling": _mean(ceilings)}
    if floors:
        result["no_condition"] = _mean(floors)
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of the evaluation command."""
    p = argparse.ArgumentParser(prog="python -m atelier.train.truepose.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="a TruePose run's output folder")
    p.add_argument("--base", default="tiny", help="'tiny' or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="the base UNet the run started from (base_unet.safetensors)")
    p.add_argument("--image-encoder", default="tiny", help="the image encoder the run was trained with")
    p.add_argument("--size", type=parse_size, default=(64, 48), help="HxW picture size (the run's)")
    p.add_argument("--count", type=int, default=32, help="held-out pairs")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--hidden-part-fraction", type=float, default=DEFAULT_HIDDEN_PART_FRACTION,
                   help="probability that a held-out target hides body parts (the training run's)")
    p.add_argument("--guidance", type=float, default=PAPER_GUIDANCE, help="CFG scale ω (paper: 3.5)")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--batch-size", type=int, default=8, help="pairs sampled together")
    p.add_argument("--floor", action="store_true", help="also sample without C (the unconditional chunk alone)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (1 is faster on a busy CPU)")
    p.add_argument("--cpu", action="store_true", help="evaluate on the CPU even when a GPU is present")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the metrics as one JSON line."""
    args = parse_args(argv)
    start_cli(args)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    components = load_base(args.base, FROZEN_SEED, args.init_unet)
    trained = load_trained(components, args.weights)
    components.to(device)
    trained.trainables.to(device)
    encoder = load_image_encoder(args.image_encoder).to(device) if uses_caa(trained.variant) else None
    if encoder is not None and encoder.embed_dim != trained.config.clip_embed_dim:
        raise TrainedRunError(
            f"--image-encoder {args.image_encoder!r} gives {encoder.embed_dim}-wide embeddings but the run was trained "
            f"with clip_embed_dim {trained.config.clip_embed_dim}; pass the image encoder the run was trained with"
        )
    dataset = ToyPosePairs(args.size, HELD_OUT_START, args.count, args.world_seed, args.hidden_part_fraction)
    result = evaluate(components, trained, dataset, args.count, encoder, args.guidance, args.steps, args.seed,
                      args.batch_size, args.floor)
    line = json.dumps({"weights": args.weights, "guidance": args.guidance, "steps": args.steps,
                       "hidden_part_fraction": args.hidden_part_fraction, **result})
    if args.out:
        Path(args.out).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
