"""Checkpoint size of each trainer at SD1.5, computed (not measured on a real run: no GPU and no
SD1.5 weights here): every trainer's trained modules are built on a diffusers UNet2DConditionModel
with SD1.5's configuration on the meta device (shapes, no weights), at the CLI defaults, and counted.

A checkpoint (``train/checkpoints.py``) holds the trained parameters in fp32 (4 B each; accelerate
keeps fp32 master weights under fp16/bf16 mixed precision) and AdamW's two moments (8 B each), plus
4 B per parameter with ``--ema-decay``. The frozen SD1.5 UNet (859.5 M parameters, 3.44 GB in fp32)
is referenced in ``base.json``, not copied. "Before" is what ``accelerate.save_state`` of the whole
prepared module wrote: every parameter of it (frozen ones too) plus the optimizer.

    python bench/sd15_checkpoint_sizes.py
"""

from __future__ import annotations

import torch
from accelerate import init_empty_weights
from diffusers import UNet2DConditionModel

from atelier.models.outfitgan.config import OutfitGANConfig
from atelier.models.outfitgan.discriminator import DiscriminatorConfig
from atelier.train.anydressing.components import BaseComponents
from atelier.train.anydressing.options import parse_args as anydressing_args
from atelier.train.anydressing.cli import dressing_config
from atelier.train.anydressing.steps import build_trainables as anydressing_trainables
from atelier.train.igr.steps import DenoiserUpdate, igr_config_for
from atelier.train.igr.steps import build_trainables as igr_trainables
from atelier.train.outfitgan.steps import build_models
from atelier.train.text2graph.config import Text2GraphTrainConfig
from atelier.train.text2graph.trainer import LORA_TARGETS
from atelier.train.truepose.steps import build_trainables as truepose_trainables
from atelier.train.truepose.steps import truepose_config_for

CLIP_VIT_H_EMBED = 1024  # IP-Adapter SD1.5 and TruePose's CAA read CLIP ViT-H/14 image embeddings
BYTES_TRAINED = 4 + 8  # fp32 weight + AdamW's exp_avg and exp_avg_sq
BYTES_EMA = 4


def sd15_unet() -> UNet2DConditionModel:
    """SD1.5's UNet (diffusers' defaults are its layout; context 768, 8 heads) on the meta device."""
    with init_empty_weights():
        return UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)


def components() -> BaseComponents:
    """A BaseComponents around a fresh meta SD1.5 UNet (the trainers only read its shapes here)."""
    return BaseComponents(unet=sd15_unet(), vae=None, tokenizer=None, text_encoder=None, scheduler=None)


def counts(module: torch.nn.Module) -> tuple[int, int]:
    """(trained, all) parameter counts of ``module``."""
    return (sum(p.numel() for p in module.parameters() if p.requires_grad), sum(p.numel() for p in module.parameters()))


def rows() -> list[tuple[str, int, int]]:
    """(run, trained parameters, parameters in the prepared module) at the CLI defaults."""
    table = []
    for mode in ("lora", "full"):
        args = anydressing_args(["--out", "x", "--garments-net", mode])
        with init_empty_weights():
            trained = anydressing_trainables(dressing_config(args), components(), mode == "full")
        table.append((f"AnyDressing dressing, GarmentsNet {mode}", *counts(trained)))
    for mode in ("lora", "full"):
        with init_empty_weights():
            trained = igr_trainables(components(), igr_config_for("both", CLIP_VIT_H_EMBED, 16, 16.0, 4),
                                     DenoiserUpdate(mode, 8, 8.0))
        table.append((f"IGR coarse/fine, denoiser {mode}", *counts(trained)))
    for mode in ("lora", "full"):
        with init_empty_weights():
            trained = truepose_trainables(components(), truepose_config_for("full", CLIP_VIT_H_EMBED), "full",
                                          DenoiserUpdate(mode, 8, 8.0))
        table.append((f"TruePose full variant, UNet {mode}", *counts(trained)))
    unet = sd15_unet()
    table.append(("stage base (whole UNet; AnyDressing / IGR / TruePose)", *counts(unet)))
    from peft import LoraConfig

    config = Text2GraphTrainConfig()
    with init_empty_weights():
        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.alpha, target_modules=LORA_TARGETS))
    trained = sum(p.numel() for p in unet.parameters() if p.requires_grad)
    table.append((f"Text2Graph LoRA rank {config.rank}", trained, trained))
    full = sum(p.numel() for p in sd15_unet().parameters())
    table.append(("Text2Graph full UNet", full, full))
    models = build_models(OutfitGANConfig(image_size=256), DiscriminatorConfig())
    gan = sum(sum(p.numel() for p in m.parameters()) for m in (models.generator, models.discriminators, models.ccm))
    table.append(("OutfitGAN 256 px (generator, discriminators, CCM; not SD1.5-based)", gan, gan))
    return table


def size(count: int) -> str:
    """Bytes as MB / GB (decimal)."""
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"


def main() -> None:
    """Print the markdown table."""
    print("| run (CLI defaults) | trained parameters | checkpoint | + EMA | before: whole module + optimizer |")
    print("|---|---|---|---|---|")
    for name, trained, total in rows():
        print(f"| {name} | {trained / 1e6:.2f} M | {size(trained * BYTES_TRAINED)} | "
              f"{size(trained * (BYTES_TRAINED + BYTES_EMA))} | {size(total * 4 + trained * 8)} |")


if __name__ == "__main__":
    main()
