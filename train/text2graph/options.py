"""``python -m atelier.train.text2graph``: a LoRA (or full) fine-tune of an SD1.5 UNet on (image,
triple-prompt) pairs, exported for ComfyUI's core LoraLoader.

Example (toy world, tiny SD1.5-layout models, CPU)::

    python -m atelier.train.text2graph --data toyworld --pretrained tiny --steps 200 --threads 1 --out out/kg

writes out/kg/text2graph_lora.safetensors (kohya keys; text2graph_unet.safetensors with --adapter full).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..command_line import (
    add_checkpoint_options,
    add_out_option,
    add_seed_option,
    add_threads_option,
    make_parser,
)
from ..controls import add_control_options
from .config import ADAPTERS, DATA_SOURCES, PROMPT_MODES, SPACES, Text2GraphTrainConfig

WEIGHT_FILES = {"lora": "text2graph_lora.safetensors", "full": "text2graph_unet.safetensors"}


def build_parser() -> argparse.ArgumentParser:
    """The command-line options; defaults are Text2GraphTrainConfig's."""
    d = Text2GraphTrainConfig()
    p = make_parser("python -m atelier.train.text2graph", __doc__)
    p.add_argument("--data", choices=DATA_SOURCES, default=d.data,
                   help="toyworld (people), toyworld_outfits (2x2 outfit grids) or hm (needs --data-root)")
    p.add_argument("--data-root", "--hm-root", dest="data_root", default=None,
                   help="the H&M folder (articles.csv, images/) for --data hm")
    p.add_argument("--pretrained", default=d.pretrained,
                   help="a local diffusers SD1.5 folder, or 'tiny' (random tiny SD1.5-layout models)")
    p.add_argument("--prompt-mode", choices=PROMPT_MODES, default=d.prompt_mode,
                   help="plain caption, linearized triple prompt (the paper) or bound per-entity phrases")
    p.add_argument("--adapter", choices=ADAPTERS, default=d.adapter,
                   help="lora (the paper; LoRA on the UNet's attention projections) or full (every UNet weight)")
    p.add_argument("--space", choices=SPACES, default=d.space, help="latent (through the VAE) or pixel (tiny only)")
    p.add_argument("--resolution", type=int, default=d.resolution, help="image side in pixels (multiple of 8)")
    p.add_argument("--steps", type=int, default=d.steps, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="samples per step")
    p.add_argument("--lr", "--learning-rate", dest="lr", type=float, default=d.learning_rate,
                   help="AdamW learning rate (the paper: 1e-6 over 200,000 iterations)")
    p.add_argument("--rank", type=int, default=d.rank, help="LoRA rank")
    p.add_argument("--alpha", type=float, default=d.alpha, help="LoRA alpha (scale alpha / rank)")
    p.add_argument("--num-samples", type=int, default=d.num_samples, help="toy-world samples to draw from")
    p.add_argument("--train-text-encoder", action="store_true", help="also train the text encoder (--adapter full)")
    p.add_argument("--widths", type=int, nargs=4, default=list(d.widths), help="tiny UNet channel widths")
    p.add_argument("--caption-dropout", type=float, default=d.caption_dropout,
                   help="probability of training on the empty prompt (for classifier-free guidance)")
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="data-loader worker processes")
    add_seed_option(p, "data order, noise and initial weights")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default=d.mixed_precision,
                   help="passed to accelerate")
    add_threads_option(p)
    add_checkpoint_options(p)
    add_out_option(p, "the weight file (text2graph_lora.safetensors, or text2graph_unet.safetensors with "
                      "--adapter full) and checkpoints-text2graph/", default=None, required=False)
    add_control_options(p)
    p.add_argument("--output", default=None, help=argparse.SUPPRESS)  # the former file flag, still read
    return p


def config_from_args(args: argparse.Namespace) -> Text2GraphTrainConfig:
    """The run's settings; ``--out`` (a folder) names the weight file."""
    if args.output is not None:
        output = args.output
    elif args.out is not None:
        output = str(Path(args.out) / WEIGHT_FILES[args.adapter])
    else:
        output = WEIGHT_FILES[args.adapter]
    return Text2GraphTrainConfig(
        data=args.data, hm_root=args.data_root or "", pretrained=args.pretrained, prompt_mode=args.prompt_mode,
        adapter=args.adapter, space=args.space, resolution=args.resolution, steps=args.steps,
        batch_size=args.batch_size, learning_rate=args.lr, rank=args.rank, alpha=args.alpha,
        num_samples=args.num_samples, train_text_encoder=args.train_text_encoder, widths=tuple(args.widths),
        caption_dropout=args.caption_dropout, num_workers=args.num_workers, seed=args.seed,
        mixed_precision=args.mixed_precision, output=output)


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed options with ``config`` (the Text2GraphTrainConfig) attached; TrainConfigError names
    the flag."""
    args = build_parser().parse_args(argv)
    args.config = config_from_args(args)
    return args


def parse_args(argv: list[str] | None = None) -> Text2GraphTrainConfig:
    """The Text2GraphTrainConfig the flags describe."""
    return parse_options(argv).config
