"""``python -m atelier.train.truepose``: TruePose pose-transfer training (../../shared/papers/truepose.txt
§4.4) on accelerate + diffusers + peft: the shared SourceNet/TargetNet UNet update (peft LoRA or full),
the HPFA and CAA projections and the pose encoder, with condition dropout, checkpoints with exact
resume, and the weight files. Design decisions are in ``steps.py``'s docstring.

Stages:
- ``base`` (``--base tiny`` only, optional): the whole tiny UNet learns toy people with the empty
  prompt, so the stand-in for SD1.5 already draws people; writes ``base_unet.safetensors``, the
  shared starting point (``--init-unet``) of every variant.
- ``truepose``: the ``--variant`` (full, no-hpfa, no-caa, concat).

Files written by the ``truepose`` stage:
- ``truepose.safetensors`` (variants full / no-hpfa / no-caa): the "truepose" system file
  (``models.weights.save_weight_file`` with the TRUEPOSE spec: HPFA, CAA, pose encoder), the one the
  ComfyUI nodes load. Its ``atelier.config`` is the TruePoseConfig (``parsing_guidance`` false for
  no-hpfa, ``caa_sites`` empty for no-caa: the nodes then refuse a CAA strength above 0) and the
  extra metadata ``atelier.truepose_variant`` names the variant.
- ``truepose_concat.safetensors`` (variant concat): the pose encoder alone under ``truepose_pose.``,
  with the config, base model and variant as metadata but no ``atelier.system``: the nodes load only
  TRUEPOSE-spec files and refuse it; ``evaluate`` reads it (B2 is a baseline, not a product).
- the UNet update: ``truepose_unet_lora.safetensors`` (kohya keys, the core LoraLoader; apply it to
  the MODEL before the TruePose nodes, since SourceNet = TargetNet) or ``truepose_unet.safetensors``
  (a diffusers UNet state dict, ``--unet full``).

Example (toy world, CPU)::

    python -m atelier.train.truepose --stage base --size 64x48 --steps 600 --lr 1e-3 --out out/tp-base
    python -m atelier.train.truepose --variant full --size 64x48 --init-unet out/tp-base/base_unet.safetensors \\
        --steps 400 --lr 1e-4 --out out/tp-full
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file

from ...models.truepose.config import PAPER_CONDITION_DROPOUT, TruePoseConfig
from ...models.truepose.spec import TRUEPOSE
from ...models.weight_format import META_BASE_MODEL, META_CONFIG, BaseModel
from ...models.weights import save_weight_file
from ..anydressing.components import load_base
from ..igr.components import FROZEN_SEED, load_image_encoder
from ..igr.steps import DenoiserUpdate
from ..loop import (
    LoopSettings,
    add_loop_options,
    run_steps,
    save_diffusers_unet,
    start_cli,
    step_generator,
)
from ..text2graph.lora_export import read_metadata, save_kohya_lora
from .data import (
    DATA_SOURCES,
    DEFAULT_HIDDEN_PART_FRACTION,
    PARSING_LABEL_SETS,
    PRESETS,
    batch_for_step,
    build_dataset,
    parse_size,
)
from .steps import (
    VARIANTS,
    TruePoseTrainables,
    base_losses,
    build_trainables,
    truepose_config_for,
    truepose_losses,
    uses_caa,
)

logger = logging.getLogger("atelier.train.truepose")

STAGES = ("base", "truepose")
BASE_UNET_FILE = "base_unet.safetensors"
WEIGHT_FILE = "truepose.safetensors"
CONCAT_FILE = "truepose_concat.safetensors"
UNET_LORA_FILE = "truepose_unet_lora.safetensors"
UNET_FILE = "truepose_unet.safetensors"
META_VARIANT = "atelier.truepose_variant"
CONCAT_POSE_PREFIX = TRUEPOSE.prefixes["pose_encoder"]


class TrainingOptionError(ValueError):
    """A command-line option is out of range or does not fit the others; the message names the flag."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(prog="python -m atelier.train.truepose", description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=STAGES, default="truepose", help="base (tiny UNet learns people) or truepose")
    p.add_argument("--variant", choices=VARIANTS, default="full", help="full, no-hpfa (B4), no-caa (B3), concat (B2)")
    p.add_argument("--data", choices=DATA_SOURCES, default="toyworld", help="training pairs")
    p.add_argument("--data-root", default=None, help="DeepFashion folder (cfld or pidm layout)")
    p.add_argument("--parsing-dir", default=None, help="DeepFashion: folder of <source image stem>.png parsing maps")
    p.add_argument("--parsing-label-set", choices=tuple(PARSING_LABEL_SETS), default="lip", help="palette of --parsing-dir")
    p.add_argument("--split", default="train", help="DeepFashion split")
    p.add_argument("--people", type=int, default=1000, help="toy-world pose pairs 0..N-1 to train on")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--hidden-part-fraction", type=float, default=DEFAULT_HIDDEN_PART_FRACTION,
                   help="toy world: probability that a target hides body parts (back, far arm, waist-up, head-cut)")
    p.add_argument("--preset", choices=tuple(PRESETS), default=None, help="the paper's sizes (default 256x176)")
    p.add_argument("--size", type=parse_size, default=None, help="HxW picture size, multiples of 8 (toy runs)")
    p.add_argument("--base", default="tiny", help="'tiny' (tiny SD1.5-layout UNet + pixel VAE) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="diffusers-format UNet weights to start from (--stage base output)")
    p.add_argument("--image-encoder", default="tiny", help="'tiny' (seeded CLIP vision model) or a transformers folder")
    p.add_argument("--unet", choices=("lora", "full"), default="lora", help="the shared SourceNet/TargetNet update")
    p.add_argument("--unet-rank", type=int, default=8, help="UNet LoRA rank")
    p.add_argument("--unet-alpha", type=float, default=8.0, help="UNet LoRA alpha")
    p.add_argument("--condition-dropout", type=float, default=PAPER_CONDITION_DROPOUT,
                   help="probability that a batch drops C (source bank, CLIP regions, pose) as a whole")
    add_loop_options(p, lr=1e-5, lr_help="AdamW learning rate (paper: 1e-5 on SD1.5; toy runs need more)",
                     batch_help="pairs per step")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options, with ``args.size`` resolved from ``--size`` / ``--preset``; cross-field checks raise
    TrainingOptionError naming the flag."""
    args = build_parser().parse_args(argv)
    check_args(args)
    if args.size is None:
        args.size = PRESETS[args.preset or "256x176"]
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks."""
    for flag, value, least in (("--steps", args.steps, 0), ("--batch-size", args.batch_size, 1),
                               ("--keep-checkpoints", args.keep_checkpoints, 1), ("--unet-rank", args.unet_rank, 1),
                               ("--people", args.people, 1)):
        if value < least:
            raise TrainingOptionError(f"{flag} must be >= {least}, got {value}")
    for flag, value in (("--condition-dropout", args.condition_dropout),
                        ("--hidden-part-fraction", args.hidden_part_fraction)):
        if not 0.0 <= value <= 1.0:
            raise TrainingOptionError(f"{flag} must lie in [0, 1], got {value}")
    if args.threads is not None and args.threads < 1:
        raise TrainingOptionError(f"--threads must be >= 1, got {args.threads}")
    if args.size is not None and args.preset is not None:
        raise TrainingOptionError("give --size or --preset, not both")
    if args.data == "deepfashion" and (args.data_root is None or args.parsing_dir is None):
        raise TrainingOptionError("--data deepfashion needs --data-root and --parsing-dir")
    if args.stage == "base" and args.base != "tiny":
        raise TrainingOptionError("--stage base trains the tiny UNet only; a real SD1.5 folder already draws people")


@dataclass
class TrainResult:
    """What a run produced: written files, per-step losses, and the trained module (unwrapped)."""

    outputs: list[Path]
    losses: list[dict[str, float]] = field(default_factory=list)
    modules: dict[str, torch.nn.Module] = field(default_factory=dict)


def _dataset(args: argparse.Namespace):
    return build_dataset(args.data, args.size, people=args.people, world_seed=args.world_seed, data_root=args.data_root,
                         parsing_dir=args.parsing_dir, label_set=args.parsing_label_set, split=args.split,
                         hidden_part_fraction=args.hidden_part_fraction)


def train(args: argparse.Namespace) -> TrainResult:
    """Run the asked stage (resuming when asked) and export; returns the files and losses."""
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu)
    set_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    components = load_base(args.base, FROZEN_SEED, args.init_unet).to(accelerator.device)
    dataset = _dataset(args)
    logger.info("stage %s, variant %s: %d pairs at %dx%d", args.stage, args.variant, len(dataset), *args.size)
    encoder = config = None
    if args.stage == "base":
        trained = components.unet.requires_grad_(True).train()
    else:
        encoder = load_image_encoder(args.image_encoder).to(accelerator.device)
        config = truepose_config_for(args.variant, encoder.embed_dim)
        update = DenoiserUpdate(args.unet, args.unet_rank, args.unet_alpha)
        trained = build_trainables(components, config, args.variant, update).to(accelerator.device).train()
    optimizer = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad], lr=args.lr)
    prepared, optimizer = accelerator.prepare(trained, optimizer)

    def step_losses(step: int):
        batch = batch_for_step(dataset, step, args.batch_size, args.seed,
                               process=accelerator.process_index).to(accelerator.device)
        generator = step_generator(args.seed, step)
        if args.stage == "base":
            losses = base_losses(components, prepared, batch, generator)
        else:
            losses = truepose_losses(components, accelerator.unwrap_model(prepared), args.variant, config,
                                     encoder if uses_caa(args.variant) else None, batch, generator,
                                     args.condition_dropout)
        return losses, losses["ldm"]

    history = run_steps(accelerator, prepared, optimizer, out, args.stage, LoopSettings.from_args(args), step_losses,
                        average=args.stage != "base")
    module = accelerator.unwrap_model(prepared)
    outputs = export(accelerator, args, components.base_model, config, module)
    return TrainResult(outputs, history, {"trained": module})


def add_metadata(path: Path, extra: dict[str, str]) -> None:
    """Rewrite the safetensors file ``path`` with ``extra`` added to its header metadata."""
    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata={**read_metadata(path), **extra})


def save_concat_file(path: Path, base: BaseModel, config: TruePoseConfig, module: TruePoseTrainables) -> None:
    """The concat baseline's pose encoder under ``truepose_pose.`` with config, base model and variant."""
    tensors = {CONCAT_POSE_PREFIX + key: value.detach().cpu().contiguous()
               for key, value in module.pose_encoder.state_dict().items()}
    metadata = {META_BASE_MODEL: base.to_json(), META_CONFIG: json.dumps(config.to_dict(), sort_keys=True),
                META_VARIANT: "concat"}
    save_file(tensors, str(path), metadata=metadata)


def export(accelerator: Accelerator, args: argparse.Namespace, base: BaseModel, config: TruePoseConfig | None,
           module: torch.nn.Module) -> list[Path]:
    """Write the stage's files (module docstring) in ``args.out``; returns their paths."""
    out = Path(args.out)
    paths: list[Path] = []
    if accelerator.is_main_process:
        if config is None:
            paths.append(out / BASE_UNET_FILE)
            save_diffusers_unet(module, paths[-1], "base")
        else:
            paths.append(out / (CONCAT_FILE if args.variant == "concat" else WEIGHT_FILE))
            if args.variant == "concat":
                save_concat_file(paths[-1], base, config, module)
            else:
                caa = module.caa if module.caa is not None else TRUEPOSE.build(config.to_dict(), base)["caa"]  # no sites
                save_weight_file(str(paths[-1]), TRUEPOSE, base, config.to_dict(),
                                 {"hpfa": module.hpfa, "caa": caa, "pose_encoder": module.pose_encoder})
                add_metadata(paths[-1], {META_VARIANT: args.variant})
            tags = {"atelier_system": "truepose", "atelier_variant": args.variant}
            if args.unet == "lora":
                paths.append(out / UNET_LORA_FILE)
                save_kohya_lora(paths[-1], get_peft_model_state_dict(module.unet), args.unet_rank, args.unet_alpha, tags)
            else:
                paths.append(out / UNET_FILE)
                save_diffusers_unet(module.unet, paths[-1], f"truepose-{args.variant}")
    accelerator.wait_for_everyone()
    return paths


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, train, print the written files."""
    args = parse_args(argv)
    start_cli(args)
    for path in train(args).outputs:
        print(path)
