"""Settings of a Text2Graph fine-tune (one dataclass; the CLI maps its flags onto it)."""

from __future__ import annotations

from dataclasses import dataclass

from ...models.errors import AtelierError

DATA_SOURCES: tuple[str, ...] = ("toyworld", "toyworld_outfits", "hm")
# The text conditions (prompts.py): plain caption, linearised triple prompt (the paper), bound phrases.
PROMPT_MODES: tuple[str, ...] = ("plain", "linearized", "bound")
ADAPTERS: tuple[str, ...] = ("lora", "full")
SPACES: tuple[str, ...] = ("latent", "pixel")


class TrainConfigError(AtelierError, ValueError):
    """A training setting is out of range; the message names the field (and CLI flag)."""


@dataclass(frozen=True)
class Text2GraphTrainConfig:
    """One training run.

    Args:
        data: "toyworld" (people), "toyworld_outfits" (2x2 outfit grids) or "hm" (needs hm_root).
        hm_root: the H&M folder (articles.csv, images/).
        pretrained: a local diffusers SD1.5 folder (unet/, vae/, text_encoder/, tokenizer/,
            scheduler/), or "tiny" for the random tiny SD1.5-layout models (tests, toy runs).
        prompt_mode: "plain" caption, "linearized" triple prompt (the paper) or "bound" phrases.
        adapter: "lora" (the paper: LoRA on the UNet's attention projections; exported for the
            core LoraLoader) or "full" (every UNet weight; toy-world evidence runs from scratch).
        space: "latent" (through the VAE, as SD) or "pixel" (no VAE; toy runs only).
        resolution: image side in pixels.
        steps: optimiser steps.
        batch_size: samples per step.
        learning_rate: AdamW learning rate (the paper: 1e-6 over 200,000 iterations).
        rank: LoRA rank; alpha: LoRA alpha (scale alpha / rank).
        num_samples: toy-world samples to draw from.
        train_text_encoder: also train the text encoder ("full" adapter only).
        widths: UNet channel widths for pretrained="tiny".
        caption_dropout: probability of training on the empty prompt instead (for classifier-free
            guidance at sampling time).
        num_workers: data-loader worker processes (the toy world renders on the fly).
        seed: everything random (data order, noise, initial weights).
        mixed_precision: accelerate's "no", "fp16" or "bf16".
        output: the weight file to write.
    """

    data: str = "toyworld"
    hm_root: str = ""
    pretrained: str = "tiny"
    prompt_mode: str = "linearized"
    adapter: str = "lora"
    space: str = "latent"
    resolution: int = 64
    steps: int = 100
    batch_size: int = 4
    learning_rate: float = 1e-6
    rank: int = 4
    alpha: float = 4.0
    num_samples: int = 1000
    train_text_encoder: bool = False
    widths: tuple[int, ...] = (32, 64, 128, 128)
    caption_dropout: float = 0.0
    num_workers: int = 0
    seed: int = 0
    mixed_precision: str = "no"
    output: str = "atelier_text2graph_lora.safetensors"

    def __post_init__(self) -> None:
        for name, options in (("data", DATA_SOURCES), ("prompt_mode", PROMPT_MODES), ("adapter", ADAPTERS),
                              ("space", SPACES)):
            if getattr(self, name) not in options:
                raise TrainConfigError(f"{name} (--{name.replace('_', '-')}) is {getattr(self, name)!r}; "
                                       f"expected one of {list(options)}")
        if self.data == "hm" and not self.hm_root:
            raise TrainConfigError("data 'hm' needs hm_root (--hm-root), the folder with articles.csv and images/")
        for name in ("resolution", "steps", "batch_size", "rank", "num_samples"):
            if getattr(self, name) <= 0:
                raise TrainConfigError(f"{name} (--{name.replace('_', '-')}) must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise TrainConfigError(f"caption_dropout (--caption-dropout) must lie in [0, 1), got {self.caption_dropout}")
        if self.resolution % 8:
            raise TrainConfigError(f"resolution (--resolution) must be a multiple of 8, got {self.resolution}")
        if self.adapter == "lora" and self.space == "pixel":
            raise TrainConfigError("adapter 'lora' trains an SD1.5 UNet in latent space; use --space latent")
        if self.space == "pixel" and self.pretrained != "tiny":
            raise TrainConfigError("space 'pixel' needs pretrained 'tiny' (a pretrained SD UNet works on latents)")
