"""The training half of ``python -m atelier.train.truepose``, run once ``options.py`` has parsed the
options (its docstring is the command's ``--help``: what it does, the files it writes, examples)."""

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

from ...models.truepose.config import TruePoseConfig
from ...models.truepose.spec import TRUEPOSE
from ...models.weight_format import META_BASE_MODEL, META_CONFIG, BaseModel
from ...models.weights import save_weight_file
from ..anydressing.components import load_base
from ..igr.components import FROZEN_SEED, load_image_encoder
from ..igr.steps import DenoiserUpdate
from ..loop import (
    LoopSettings,
    run_steps,
    save_diffusers_unet,
    start_cli,
    step_generator,
)
from ..substrate import vae_factor_for
from ..text2graph.lora_export import read_metadata, save_kohya_lora
from .data import (
    batch_for_step,
    build_dataset,
)
from ..command_line import run_cli
from ..optimisation import accelerator_for
from .options import STAGES, TrainingOptionError, build_parser, check_args, parse_args  # noqa: F401
from .validation import validation_for
from .steps import (
    TruePoseTrainables,
    base_losses,
    build_trainables,
    truepose_config_for,
    truepose_losses,
    uses_caa,
)

logger = logging.getLogger("atelier.train.truepose")

BASE_UNET_FILE = "base_unet.safetensors"
WEIGHT_FILE = "truepose.safetensors"
CONCAT_FILE = "truepose_concat.safetensors"
UNET_LORA_FILE = "truepose_unet_lora.safetensors"
UNET_FILE = "truepose_unet.safetensors"
META_VARIANT = "atelier.truepose_variant"
CONCAT_POSE_PREFIX = TRUEPOSE.prefixes["pose_encoder"]


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
    accelerator = accelerator_for(args, args.out)
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
        config = truepose_config_for(args.variant, encoder.embed_dim, vae_factor_for(args.base, None))
        update = DenoiserUpdate(args.unet, args.unet_rank, args.unet_alpha)
        trained = build_trainables(components, config, args.variant, update).to(accelerator.device).train()
    optimizer = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad], lr=args.lr)
    prepared, optimizer = accelerator.prepare(trained, optimizer)

    def step_losses(step: int):
        batch = batch_for_step(dataset, step, args.batch_size, args.seed,
                               process=accelerator.process_index, processes=accelerator.num_processes).to(accelerator.device)
        generator = step_generator(args.seed, step)
        if args.stage == "base":
            losses = base_losses(components, prepared, batch, generator)
        else:
            losses = truepose_losses(components, accelerator.unwrap_model(prepared), args.variant, config,
                                     encoder if uses_caa(args.variant) else None, batch, generator,
                                     args.condition_dropout)
        return losses, losses["ldm"]

    validate = validation_for(components, dataset, args.validation_samples, args.variant, config,
                              accelerator.unwrap_model(prepared), encoder, args.seed)
    history = run_steps(accelerator, prepared, optimizer, out, args.stage, LoopSettings.from_args(args), step_losses,
                        average=args.stage != "base", validate=validate)
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


def run(args: argparse.Namespace) -> None:
    """Train with parsed options and print the written files."""
    start_cli(args)
    for path in train(args).outputs:
        print(path)


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, train, print the written files; a user error is one line."""
    run_cli(parse_args, run, argv)
