"""The training half of ``python -m atelier.train.igr``, run once ``options.py`` has parsed the
options (its docstring is the command's ``--help``: what it does, the files it writes, examples)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from peft.utils import get_peft_model_state_dict

from ...models.igr.ip_adapter import (
    load_standard_ip_adapter,
    read_ip_adapter_file,
    write_standard_ip_adapter,
)
from ...models.igr.spec import IGR
from ...models.weights import save_weight_file
from ..anydressing.components import BaseComponents, load_base
from ..loop import (
    LoopSettings,
    run_steps,
    save_diffusers_unet,
    start_cli,
    step_generator,
)
from ..text2graph.lora_export import save_kohya_lora
from .components import FROZEN_SEED, load_image_encoder
from .data import (
    batch_for_step,
    build_dataset,
    stage_positions,
)
from ..command_line import run_cli
from ..optimisation import accelerator_for
from .options import (  # noqa: F401  (light: parsed before torch loads)
    STAGES,
    TrainingOptionError,
    build_parser,
    check_args,
    parse_args,
    parse_size,
)
from .previous import (
    DENOISER_LORA_FILE,
    DENOISER_UNET_FILE,
    IP_ADAPTER_FILE,
    WEIGHT_FILE,
    load_previous,
)
from .validation import validation_for
from .steps import (
    DenoiserUpdate,
    base_losses,
    build_trainables,
    igr_config_for,
    igr_losses,
)

logger = logging.getLogger("atelier.train.igr")

BASE_UNET_FILE = "base_unet.safetensors"


@dataclass
class TrainResult:
    """What a run produced: written files, per-step losses, and the trained modules (unwrapped)."""

    outputs: list[Path]
    losses: list[dict[str, float]] = field(default_factory=list)
    modules: dict[str, torch.nn.Module] = field(default_factory=dict)
    pairs: int = 0
    flagged_fraction: float = 0.0


def _dataset(args: argparse.Namespace):
    categories = tuple(c for c in args.garments.split(",") if c)
    return build_dataset(args.data, args.person_size, args.cloth_size, args.data_root, args.people, args.world_seed,
                         categories, args.filter_list, args.mask, args.split, with_quality=args.stage == "fine")


def train(args: argparse.Namespace) -> TrainResult:
    """Run the asked stage (resuming when asked) and export; returns the files and losses."""
    accelerator = accelerator_for(args, args.out)
    set_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    components = load_base(args.base, FROZEN_SEED, args.init_unet, args.vae_factor).to(accelerator.device)
    dataset = _dataset(args)
    positions = stage_positions(dataset, args.stage == "fine")
    logger.info("stage %s: %d of %d pairs (%.1f%% flagged low quality)", args.stage, len(positions), len(dataset),
                100.0 * dataset.flagged_fraction)
    encoder = config = None
    if args.stage == "base":
        trained = components.unet.requires_grad_(True).train()
    else:
        encoder = load_image_encoder(args.image_encoder).to(accelerator.device)
        config = igr_config_for(args.paths, encoder.embed_dim, args.garmnet_rank, args.garmnet_alpha, args.ip_tokens)
        update = DenoiserUpdate(args.denoiser, args.denoiser_rank, args.denoiser_alpha)
        trained = build_trainables(components, config, update)
        if args.init_ip_adapter is not None:
            load_standard_ip_adapter(trained.ip_adapter, read_ip_adapter_file(args.init_ip_adapter), args.init_ip_adapter)
        if args.resume_from is not None:
            load_previous(trained, Path(args.resume_from), config, update)
        trained = trained.to(accelerator.device).train()
    optimizer = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad], lr=args.lr)
    prepared, optimizer = accelerator.prepare(trained, optimizer)

    def step_losses(step: int):
        batch = batch_for_step(dataset, positions, step, args.batch_size, args.seed,
                               process=accelerator.process_index, processes=accelerator.num_processes).to(accelerator.device)
        generator = step_generator(args.seed, step)
        if args.stage == "base":
            losses = base_losses(components, prepared, batch, generator, args.condition_drop)
        else:
            losses = igr_losses(components, accelerator.unwrap_model(prepared), config, encoder, batch, generator,
                                args.condition_drop)
        return losses, losses["ldm"]

    validate = validation_for(components, dataset, positions, args.validation_samples, config,
                              accelerator.unwrap_model(prepared), encoder, args.seed)
    history = run_steps(accelerator, prepared, optimizer, out, args.stage, LoopSettings.from_args(args), step_losses,
                        average=args.stage != "base", validate=validate)
    module = accelerator.unwrap_model(prepared)
    outputs = export(accelerator, args, components, config, module)
    return TrainResult(outputs, history, {"trained": module}, len(positions), dataset.flagged_fraction)


def export(accelerator: Accelerator, args: argparse.Namespace, components: BaseComponents, config,
           module: torch.nn.Module) -> list[Path]:
    """Base: ``base_unet.safetensors``. Coarse / fine: ``igr.safetensors`` (the "igr" system), the
    denoiser update, ``igr_denoiser_lora.safetensors`` (kohya keys, core LoraLoader) or
    ``igr_denoiser_unet.safetensors`` (diffusers UNet state dict, core UNETLoader), and with the IP
    path ``igr_ip_adapter.safetensors`` (the IP-Adapter alone in the standard SD1.5 key layout)."""
    out = Path(args.out)
    paths: list[Path] = []
    if accelerator.is_main_process:
        if config is None:
            paths.append(out / BASE_UNET_FILE)
            save_diffusers_unet(module, paths[-1], "base")
        else:
            paths.append(out / WEIGHT_FILE)
            save_weight_file(str(paths[-1]), IGR, components.base_model, config.to_dict(),
                             {"garmnet": module.garmnet, "ip_adapter": module.ip_adapter})
            if config.low_level:
                paths.append(out / IP_ADAPTER_FILE)
                write_standard_ip_adapter(module.ip_adapter, paths[-1])
            if args.denoiser == "lora":
                paths.append(out / DENOISER_LORA_FILE)
                save_kohya_lora(paths[-1], get_peft_model_state_dict(module.unet), args.denoiser_rank, args.denoiser_alpha,
                                {"atelier_system": "igr", "atelier_stage": args.stage, "atelier_paths": args.paths})
            else:
                paths.append(out / DENOISER_UNET_FILE)
                save_diffusers_unet(module.unet, paths[-1], args.stage)
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
