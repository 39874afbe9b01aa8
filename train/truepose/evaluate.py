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
  garment's colours, averaged over garments (the pixel VAE's blur mixes edge pixels with their
  neighbours and caps it well below 1, see ``vae_ceiling``); ``color_error``: ΔE between the mean
  L*a*b* colours of the sample and of the true target inside each garment's mask (``mean_color_error``:
  the garment as drawn, pattern included; a median would name a check pattern's second colour as the
  garment's colour when it covers more than half of a small garment), lower is better;
- ``eps_mse``: the noise-prediction MSE on the true target noised to ``ERROR_TIMESTEP`` with C
  (noise fixed per pair), and ``eps_mse_no_condition`` the same without C: sampling-free, lower is better;
- ``eps_person`` / ``eps_person_no_condition``: the same inside the target's person region (each latent
  token weighted by its share of person pixels), and ``eps_person_target_source`` with the **target
  itself given as the source** (its own picture and parsing as C, the skeleton unchanged): an oracle
  reference, so the gap to ``eps_person`` is how much a perfectly aligned source could still give.

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
import torch.nn.functional as F
from diffusers import DDIMScheduler
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file

from ...models.errors import AtelierError
from ...models.truepose.config import PAPER_GUIDANCE, TruePoseConfig
from ...models.weight_format import META_CONFIG
from ...models.weights import load_weight_file
from ..command_line import add_out_option, add_seed_option, add_threads_option, make_parser, output_file, run_cli
from ..anydressing.components import BaseComponents, load_base
from ..igr.components import FROZEN_SEED, ImageEncoder, load_image_encoder
from ..igr.previous import kohya_name
from ..igr.steps import DenoiserUpdate
from ..loop import start_cli
from ..metrics.color import color_fidelity, mean_color_error
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
from .data import (
    DEFAULT_HIDDEN_PART_FRACTION,
    PoseTransferBatch,
    ToyPosePairs,
    collate,
    parse_size,
)
from .steps import TruePoseTrainables, build_trainables, conditioned_unet, uses_caa

REPORT_FILE = "evaluation.json"

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
        loaded = load_weight_file(str(folder / WEIGHT_FILE), expected_system="truepose", needed_by="--weights")
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


def target_as_source(batch: PoseTransferBatch, target_parsings: list[np.ndarray]) -> PoseTransferBatch:
    """The oracle batch: each target picture (with its own parsing ``target_parsings``) as its own source."""
    return PoseTransferBatch(batch.targets, batch.targets, batch.skeletons, target_parsings, batch.target_poses,
                             batch.names)


def _region_mean(squared: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """(B, 4, h, w) squared errors -> (B,) mean, over the whole latent or weighted by ``region`` (B, 1, h, w)."""
    if region is None:
        return squared.flatten(1).mean(1)
    weights = region.expand_as(squared)  # (B, 4, h, w)
    return (squared * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1e-8)


def latent_region(masks: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
    """Pixel masks (B, H, W) -> (B, 1, h, w): each latent token's share of masked pixels."""
    return F.interpolate(masks[:, None].float(), size=latent_hw, mode="area")  # (B, 1, h, w)


@torch.no_grad()
def noise_prediction_error(components: BaseComponents, trained: TrainedTruePose, batch: PoseTransferBatch,
                           encoder: ImageEncoder | None, noise: torch.Tensor, region: torch.Tensor | None = None,
                           plain: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-pair ε MSE (B,) at ERROR_TIMESTEP on the true targets, with C and (``plain``) without;
    ``region`` (B, 1, h, w) weights the mean (``latent_region``), else it runs over the whole latent."""
    latents = components.vae.encode(batch.targets)  # (B, 4, h, w)
    timesteps = torch.full((latents.shape[0],), ERROR_TIMESTEP, device=latents.device)
    noisy = components.scheduler.add_noise(latents, noise, timesteps)
    context = empty_context(components, latents.shape[0])
    conditions = source_conditions(components, batch, _encoder_for(trained, encoder))
    with conditioned_unet(trained.trainables, trained.variant, trained.config, conditions, batch.skeletons, context,
                          keep_grad=False) as predict:
        conditioned = predict(noisy, timesteps, context, [0])

    def error(predicted: torch.Tensor) -> torch.Tensor:
        return _region_mean((predicted.float() - noise.float()).pow(2), region)  # (B,)

    if not plain:
        return error(conditioned), None
    return error(conditioned), error(trained.trainables.unet(noisy, timesteps, encoder_hidden_states=context).sample)


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
    errors = [mean_color_error(sampled, reference, target.masks[slot]) for slot in slots]
    person = target.masks["person"]  # (H, W) bool
    return {"ssim": ssim(sampled, reference), "psnr": psnr(sampled, reference),
            "ssim_person": ssim(sampled, reference, person),
            "psnr_person": psnr(sampled, reference, person) if person.any() else float("nan"),
            "color_fidelity": float(np.mean(fidelities)) if slots else float("nan"),
            "color_error": float(np.mean(errors)) if slots else float("nan")}


def pair_noise(shape: tuple[int, ...], seed: int, positions: list[int], offset: int) -> torch.Tensor:
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
        noise = pair_noise(shape, seed, positions, 0).to(batch.targets)
        sampled = repose(components, trained, batch, encoder, noise, guidance, steps)
        error_noise = pair_noise(shape, seed, positions, 1).to(batch.targets)
        errors, plain_errors = noise_prediction_error(components, trained, batch, encoder, error_noise)
        pairs = [dataset.pair(p) for p in positions]
        person = latent_region(torch.from_numpy(np.stack([pair.target.masks["person"] for pair in pairs])),
                               shape[-2:]).to(batch.targets)  # (B, 1, h, w)
        person_errors, person_plain = noise_prediction_error(components, trained, batch, encoder, error_noise, person)
        oracle = target_as_source(batch, [pair.target.parsing.astype(np.int64) for pair in pairs])
        oracle_errors, _ = noise_prediction_error(components, trained, oracle, encoder, error_noise, person, plain=False)
        unconditioned = repose(components, trained, batch, encoder, noise, guidance, steps, condition=False) if floor else None
        ceiling = components.vae.decode(components.vae.encode(batch.targets)).clamp(0.0, 1.0)
        for row, pair in enumerate(pairs):
            target = pair.target
            scores.append(pair_scores(sampled[row], batch.targets[row], target)
                          | {"eps_mse": float(errors[row]), "eps_mse_no_condition": float(plain_errors[row]),
                             "eps_person": float(person_errors[row]), "eps_person_no_condition": float(person_plain[row]),
                             "eps_person_target_source": float(oracle_errors[row])})
            ceilings.append(pair_scores(ceiling[row], batch.targets[row], target))
            if unconditioned is not None:
                floors.append(pair_scores(unconditioned[row], batch.targets[row], target))
    result: dict = {"variant": trained.variant, "pairs": len(scores), **_mean(scores), "vae_ceiling": _mean(ceilings)}
    if floors:
        result["no_condition"] = _mean(floors)
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of the evaluation command."""
    p = make_parser("python -m atelier.train.truepose.evaluate", __doc__)
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
    add_seed_option(p, "noise seed")
    p.add_argument("--batch-size", type=int, default=8, help="pairs sampled together")
    p.add_argument("--floor", action="store_true", help="also sample without C (the unconditional chunk alone)")
    add_threads_option(p)
    p.add_argument("--cpu", action="store_true", help="evaluate on the CPU even when a GPU is present")
    add_out_option(p, f"also write the metrics there as {REPORT_FILE}", required=False)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Print the metrics as one JSON line."""
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
        output_file(args.out, REPORT_FILE).write_text(line + "\n")
    print(line)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point; a user error is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
