"""``python -m atelier.train.igr``: IGR garment restoration (try-off) training: GarmNet, the
IP-Adapter and the denoiser update (peft LoRA or full), with condition drop, coarse-to-fine stages,
checkpoints with exact resume, and the weight files.

Stages:

- ``base`` (toy substrates only, optional): the whole toy denoiser learns flat garments from their
  category prompts (text dropped with ``--condition-drop``), so the toy stand-in for SD1.5 already
  draws products, as SD1.5 does; from ``--init-unet`` (e.g. a gated toy32 base that draws people)
  it is a garment prior on that base; writes ``base_unet.safetensors`` for ``--init-unet``.
- ``coarse``: every pair. ``fine``: the high-quality pairs (``--filter-list`` or the toy world's
  rule, quality.py), starting from a coarse run's exported files (``--resume-from``).

Example (toy world, CPU minutes)::

    python -m atelier.train.igr --stage base --person-size 64 --steps 600 --out out/igr-base
    python -m atelier.train.igr --stage coarse --person-size 64 --init-unet out/igr-base/base_unet.safetensors \\
        --steps 400 --out out/igr-coarse
    python -m atelier.train.igr --stage fine --person-size 64 --init-unet out/igr-base/base_unet.safetensors \\
        --resume-from out/igr-coarse --steps 200 --out out/igr-fine
"""

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
    add_loop_options,
    run_steps,
    save_diffusers_unet,
    start_cli,
    step_generator,
)
from ..substrate import is_substrate, vae_factor_for
from ..text2graph.lora_export import save_kohya_lora
from .components import FROZEN_SEED, load_image_encoder
from .data import (
    DATA_SOURCES,
    MASK_KINDS,
    batch_for_step,
    build_dataset,
    stage_positions,
)
from .previous import (
    DENOISER_LORA_FILE,
    DENOISER_UNET_FILE,
    IP_ADAPTER_FILE,
    WEIGHT_FILE,
    load_previous,
)
from .steps import (
    PATHS,
    DenoiserUpdate,
    base_losses,
    build_trainables,
    igr_config_for,
    igr_losses,
)

logger = logging.getLogger("atelier.train.igr")

BASE_UNET_FILE = "base_unet.safetensors"
STAGES = ("base", "coarse", "fine")


class TrainingOptionError(ValueError):
    """A command-line option is out of range or does not fit the others; the message names the flag."""


def parse_size(text: str) -> tuple[int, int]:
    """"64" -> (64, 64); "96x64" -> (96, 64) as (height, width)."""
    parts = text.lower().split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must be N or HxW (pixels)") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be N or HxW with positive sides")
    return (values[0], values[-1])


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(prog="python -m atelier.train.igr", description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=STAGES, default="coarse", help="base (a toy denoiser learns flat garments), coarse, fine")
    p.add_argument("--data", choices=DATA_SOURCES, default="toyworld", help="training pairs")
    p.add_argument("--data-root", default=None, help="VITON-HD or DressCode folder")
    p.add_argument("--split", default="train", help="split of a real layout")
    p.add_argument("--filter-list", default=None, help="stage-2 list: one kept person-image path or sample id per line")
    p.add_argument("--people", type=int, default=1000, help="toy-world people 0..N-1 to train on")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--person-size", type=parse_size, default=(64, 64), help="person image N or HxW (SD1.5: 1024x768)")
    p.add_argument("--cloth-size", type=parse_size, default=None, help="target garment N or HxW (default: person size)")
    p.add_argument("--garments", default="upper,lower,dress", help="garment categories to restore")
    p.add_argument("--mask", choices=MASK_KINDS, default="agnostic", help="toy world: m = agnostic mask or worn pixels")
    p.add_argument("--base", default="tiny", help="'tiny' (tiny SD1.5-layout UNet + pixel VAE) or a diffusers SD1.5 folder")
    p.add_argument("--init-unet", default=None, help="diffusers-format UNet weights to start from (--stage base output)")
    p.add_argument("--vae-factor", type=int, default=None, help="toy --base: the pixel VAE's down-sampling factor "
                   "(default: the substrate's, tiny 8, toy32 4)")
    p.add_argument("--image-encoder", default="tiny", help="'tiny' (seeded CLIP vision model) or a transformers folder")
    p.add_argument("--init-ip-adapter", default=None, help="a standard SD1.5 IP-Adapter file (.bin / .safetensors) to start from")
    p.add_argument("--paths", choices=PATHS, default="both", help="garment paths: both, ip (the paper's w/o GarmNet), garmnet")
    p.add_argument("--denoiser", choices=("lora", "full"), default="lora", help="the denoiser update")
    p.add_argument("--denoiser-rank", type=int, default=8, help="denoiser LoRA rank")
    p.add_argument("--denoiser-alpha", type=float, default=8.0, help="denoiser LoRA alpha")
    p.add_argument("--garmnet-rank", type=int, default=16, help="GarmNet's attn1 LoRA rank")
    p.add_argument("--garmnet-alpha", type=float, default=16.0, help="GarmNet's attn1 LoRA alpha")
    p.add_argument("--ip-tokens", type=int, default=4, help="IP-Adapter image tokens N")
    p.add_argument("--condition-drop", type=float, default=0.1,
                   help="probability that a batch drops garment features and text together (CFG)")
    p.add_argument("--resume-from", default=None, help="--stage fine: the coarse run's output folder")
    add_loop_options(p, lr=1e-4, lr_help="AdamW learning rate (paper: 1e-5 at batch 32 on SD1.5)",
                     batch_help="pairs per step")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; cross-field checks raise TrainingOptionError naming the flag."""
    args = build_parser().parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks."""
    for flag, value, least in (("--steps", args.steps, 0), ("--batch-size", args.batch_size, 1),
                               ("--keep-checkpoints", args.keep_checkpoints, 1), ("--denoiser-rank", args.denoiser_rank, 1),
                               ("--garmnet-rank", args.garmnet_rank, 1), ("--ip-tokens", args.ip_tokens, 1)):
        if value < least:
            raise TrainingOptionError(f"{flag} must be >= {least}, got {value}")
    if not 0.0 <= args.condition_drop <= 1.0:
        raise TrainingOptionError(f"--condition-drop must lie in [0, 1], got {args.condition_drop}")
    factor = vae_factor_for(args.base, args.vae_factor)
    for flag, size in (("--person-size", args.person_size), ("--cloth-size", args.cloth_size)):
        if size is not None and (size[0] % factor or size[1] % factor):
            raise TrainingOptionError(f"{flag} {size[0]}x{size[1]} must be a multiple of the VAE factor {factor} (--vae-factor)")
    if args.threads is not None and args.threads < 1:
        raise TrainingOptionError(f"--threads must be >= 1, got {args.threads}")
    if args.data != "toyworld" and args.data_root is None:
        raise TrainingOptionError(f"--data {args.data} needs --data-root")
    if args.stage == "fine" and args.resume_from is None:
        raise TrainingOptionError("--stage fine needs --resume-from <the coarse run's output folder>")
    if args.stage == "fine" and args.data != "toyworld" and args.filter_list is None:
        raise TrainingOptionError(f"--stage fine on --data {args.data} needs --filter-list FILE")
    if args.stage == "base" and not is_substrate(args.base):
        raise TrainingOptionError("--stage base trains a toy denoiser only (--base tiny or toy32); a real SD1.5 folder "
                                  "already draws garments")
    if args.init_ip_adapter is not None and args.paths == "garmnet":
        raise TrainingOptionError("--init-ip-adapter needs the IP path (--paths both or ip)")


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
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu)
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
                               process=accelerator.process_index).to(accelerator.device)
        generator = step_generator(args.seed, step)
        if args.stage == "base":
            losses = base_losses(components, prepared, batch, generator, args.condition_drop)
        else:
            losses = igr_losses(components, accelerator.unwrap_model(prepared), config, encoder, batch, generator,
                                args.condition_drop)
        return losses, losses["ldm"]

    history = run_steps(accelerator, prepared, optimizer, out, args.stage, LoopSettings.from_args(args), step_losses,
                        average=args.stage != "base")
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, train, print the written files."""
    args = parse_args(argv)
    start_cli(args)
    for path in train(args).outputs:
        print(path)
