"""Benchmark: TruePose pose-transfer sampling against plain sampling, with the source side cached once
per run and recomputed every step, and the one-off cost of Encode Pose Source. Measured in one run.

    COMFYUI_PATH=/path/to/ComfyUI python bench/truepose.py --size 256 --steps 10

Not a test. Wall-clock ratios are measured back to back in this process, interleaved per repeat,
median of the repeats (shared machines are noisy: compare ratios, not seconds). Random weights, no
checkpoint file: the tiny SD1.5-shaped UNet and the full SD1.5 architecture (model_channels 320,
context_dim 768), the default TruePoseConfig (HPFA and CAA at the 9 decoder sites, σ 0.3, δ 0.6,
K 2) with random projections and a random non-zero W^{V^clip} and pose-encoder output conv (a fresh
file has both at zero). The image is H×W = size × 11/16 (the paper's 256×176 by default, 512×352
with --size 512). The CLIP vision for the region embeddings is a small random one (the test
suite's tiny encoder: 2 layers, 32×32 input) with 1024-wide embeddings like ViT-H/14, so the CLIP
part of the one-off cost is far below a real encoder's. What is timed is what the pose-transfer
graph runs:

* sampling: KSampler (ddim, ddim_uniform, CFG 3.5 so batch 2, the paper's ω and the workflow's
  sampler) from a zero latent, one target pose, on
  - plain: the same UNet, unpatched;
  - once: the MODEL Apply TruePose returns (TruePoseAttachment, Refresh.ONCE, UncondPolicy.NONE):
    per run, SourceNet's cached bank from Encode Pose Source is set once and the source side (M on
    each token grid, H', K'_h, V'_h, CAA's region ranking by A', K^clip and V^clip) is computed
    once; the pose encoder runs once; per step only eq. 8 and eq. 9's reads and the pose add run;
  - every_step: the same attachment with Refresh.EVERY_STEP: SourceNet's UNet pass over the
    source latent and the whole source side rerun at every step (the pose encoder still once per
    run). This is what the cache saves.
* one-off (Encode Pose Source, once per source): SourceNet's UNet pass at t = 0 over the source
  latent banking all 16 sites (``run_sourcenet``), and the region masks plus CLIP embeddings of the
  region box crops (``region_embeddings``). The VAE encode of the photo and the parsing conversion
  are not included (any method that reads the photo pays the first; the second is numpy on a map).
* memory: SourceNet's bank in the SOURCE (all 16 sites, and the 9 HPFA sites it serves), the rest
  of the SOURCE (latent, region masks, CLIP embeddings), and the per-run source side (H', K'_h,
  V'_h, K^clip, V^clip at the 9 sites; A' is dropped after the ranking).

Uses a CUDA GPU when torch sees one (then try --size 512), else the CPU with one torch thread.
The full-size model on a 2-core CPU uses --sd15-steps / --sd15-repeats (4 steps, 3 repeats).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from reference_attention import (  # the sibling bench script
    MODEL_WIDTHS,
    random_unet,
    synchronize,
    system_bench_setup,
    time_ksampler,
)

WIDTH_OVER_HEIGHT = 11 / 16  # the paper's 176×256 and 352×512
SMALL_CLIP_EMBED_DIM = 1024  # ViT-H/14's width, TruePoseConfig's default clip_embed_dim
SAMPLER, SCHEDULER = "ddim", "ddim_uniform"
VARIANTS = ("plain", "once", "every_step")
MIB = 2**20
# LIP class -> (y0, y1, x0, x1) as fractions of the image, drawn in order: a standing person.
SOURCE_PARSING = (
    ("left_leg", (0.62, 0.94, 0.38, 0.48)), ("right_leg", (0.62, 0.94, 0.52, 0.62)),
    ("pants", (0.52, 0.80, 0.34, 0.66)), ("left_arm", (0.25, 0.58, 0.19, 0.31)),
    ("right_arm", (0.25, 0.58, 0.69, 0.81)), ("upper_clothes", (0.23, 0.56, 0.31, 0.69)),
    ("hair", (0.02, 0.10, 0.41, 0.59)), ("face", (0.08, 0.23, 0.42, 0.58)),
    ("left_shoe", (0.94, 0.99, 0.34, 0.48)), ("right_shoe", (0.94, 0.99, 0.52, 0.66)),
)
# COCO-18 (x, y) as fractions of the image: a frontal target pose, every point visible.
TARGET_POSE = ((0.50, 0.13), (0.50, 0.23), (0.38, 0.25), (0.31, 0.38), (0.28, 0.48), (0.62, 0.25), (0.69, 0.38),
               (0.72, 0.48), (0.42, 0.52), (0.42, 0.71), (0.42, 0.92), (0.58, 0.52), (0.58, 0.71), (0.58, 0.92),
               (0.47, 0.10), (0.53, 0.10), (0.44, 0.11), (0.56, 0.11))


@dataclass
class ModelResult:
    """Medians in seconds of one model (sampling per variant, the one-off encode parts) and byte counts."""

    name: str
    height: int
    width: int
    steps: int
    repeats: int
    sampling: dict[str, float]
    source_builds: dict[str, int]
    sourcenet: float
    clip_regions: float
    bank_bytes: int
    hpfa_bank_bytes: int
    rest_of_source_bytes: int
    run_cache_bytes: int


def image_size(size: int) -> tuple[int, int]:
    """(H, W) in pixels for ``--size`` H: W = 11/16 of it, rounded to a multiple of 8."""
    return size, max(8, round(size * WIDTH_OVER_HEIGHT / 8) * 8)


def small_clip_vision():
    """A small random CLIP_VISION (the test suite's tiny encoder) with 1024-wide image embeddings."""
    sys.path.insert(0, str(BENCH.parent / "tests"))
    from comfy_fixtures import tiny_clip_vision

    with tempfile.TemporaryDirectory() as directory:
        return tiny_clip_vision(Path(directory), projection_dim=SMALL_CLIP_EMBED_DIM)


def clip_embed_dim(clip_vision) -> int:
    """Width of ``clip_vision``'s image embeddings (one encode of a blank image)."""
    with torch.no_grad():
        return clip_vision.encode_image(torch.zeros(1, 32, 32, 3)).image_embeds.shape[-1]


def truepose_weights(model_channels: int, context_dim: int, embed_dim: int, seed: int = 0):
    """(TruePoseConfig, ModuleDict, its ModelPatcher): the default config with random non-zero CAA/pose weights,
    wrapped as Load TruePose wraps a loaded file."""
    from atelier.models.truepose.config import TruePoseConfig
    from atelier.models.truepose.spec import TRUEPOSE
    from atelier.models.weight_format import BaseModel
    from atelier.nodes.weights_loader import managed_module

    config = TruePoseConfig(clip_embed_dim=embed_dim)
    torch.manual_seed(seed)
    modules = nn.ModuleDict(TRUEPOSE.build(config.to_dict(), BaseModel(model_channels=model_channels, context_dim=context_dim)))
    with torch.no_grad():
        for layer in modules["caa"].to_v.values():
            layer.weight.normal_(0.0, 0.05)
        modules["pose_encoder"].conv_out.weight.normal_(0.0, 0.05)
    modules = modules.eval()
    return config, modules, managed_module(modules)


def source_inputs(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random source latent (1, 4, h, w), its pixels (1, H, W, 3) and LIP labels (1, H, W) of SOURCE_PARSING."""
    from atelier.models.labels import LIP_LABELS

    g = torch.Generator().manual_seed(5)
    latent = torch.randn(1, 4, height // 8, width // 8, generator=g)
    pixels = torch.rand(1, height, width, 3, generator=g)
    labels = torch.zeros(1, height, width, dtype=torch.int64)
    for name, (y0, y1, x0, x1) in SOURCE_PARSING:
        labels[0, round(y0 * height):round(y1 * height), round(x0 * width):round(x1 * width)] = LIP_LABELS.index(name)
    return latent, pixels, labels


def target_pose(height: int, width: int):
    """The frontal TARGET_POSE as a BodyPose on an H×W canvas."""
    from atelier.models.pose import pose_from_array

    rows = np.array([(x * width, y * height, 1.0) for x, y in TARGET_POSE], dtype=np.float32)  # (18, 3)
    return pose_from_array(rows, width, height, min_visible=4)


def encode_pose_source(comfy, model, clip_vision, context: torch.Tensor, height: int, width: int):
    """Encode Pose Source's work past the VAE: (PoseSource, SourceNet seconds, CLIP region seconds)."""
    from atelier.nodes.truepose_source import (
        PoseSource,
        region_embeddings,
        run_sourcenet,
    )

    latent, pixels, labels = source_inputs(height, width)
    comfy.model_management.load_models_gpu([model])
    device = model.load_device
    synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        bank = run_sourcenet(model.model, latent.to(device), context.to(device))
        bank = bank.to(comfy.model_management.intermediate_device())
    synchronize()
    sourcenet_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with torch.inference_mode():
        region_masks, clip_embeds = region_embeddings(clip_vision, pixels, labels)
    synchronize()
    clip_seconds = time.perf_counter() - start
    offload = comfy.model_management.intermediate_device()
    source = PoseSource(bank=bank, latent=latent.to(offload), context=context[:1].to(offload), labels=labels,
                        region_masks=region_masks, clip_embeds=clip_embeds)
    return source, sourcenet_seconds, clip_seconds


def counting_attachment_class():
    """TruePoseAttachment that keeps its last run, so the bench can report how often the source side was built."""
    from atelier.nodes.truepose_attachment import TruePoseAttachment

    class CountingAttachment(TruePoseAttachment):
        """Apply TruePose's attachment; ``last_run`` is the most recent sampling run's TruePoseRun."""

        last_run = None

        def new_run(self, device):
            self.last_run = super().new_run(device)
            return self.last_run

    return CountingAttachment


def applied(model, truepose, modules, patcher, source, height: int, width: int, refresh: str):
    """(MODEL, attachment) as Apply TruePose builds them (strengths 1, whole schedule), with ``refresh``."""
    from atelier.models.reference_config import (
        ReadMode,
        ReferenceConfig,
        Refresh,
        UncondPolicy,
    )
    from atelier.models.sites import SITES_BY_NAME
    from atelier.nodes.truepose_attachment import TargetPose
    from atelier.nodes.truepose_nodes import selected_masks

    poses = [target_pose(height, width)]
    unet = model.model.diffusion_model
    site_heads = {name: unet.get_submodule(SITES_BY_NAME[name].comfy_attn1).heads for name in truepose.hpfa_sites}
    config = ReferenceConfig(mode=ReadMode.CROSS, strength=1.0, site_weights={name: 1.0 for name in truepose.hpfa_sites},
                             uncond=UncondPolicy.NONE, refresh=Refresh(refresh))
    attachment = counting_attachment_class()(
        config, truepose, modules["hpfa"], modules["caa"], modules["pose_encoder"], source,
        selected_masks(source.labels, poses), TargetPose(tuple(poses)), 1.0, site_heads, weights_patcher=patcher,
    )
    patched = model.clone()
    attachment.install(patched)
    return patched, attachment


def tensor_bytes(*tensors: torch.Tensor | None) -> int:
    """Bytes held by the given tensors (None counts 0)."""
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def run_cache_bytes(attachment, device: torch.device) -> int:
    """Bytes of one run's cached source side (H', K'_h, V'_h and K^clip, V^clip at every HPFA site)."""
    with torch.inference_mode():
        run = attachment.new_run(device)
        total = 0
        for site_source in run._sources.values():
            total += tensor_bytes(*(getattr(site_source.hpfa, field.name) for field in dataclasses.fields(site_source.hpfa)))
            if site_source.clip is not None:
                total += tensor_bytes(site_source.clip.k, site_source.clip.v, site_source.clip.bias)
        run.release()
    return total


def bench_model(comfy, clip_vision, name: str, size: int, steps: int, repeats: int, cfg: float) -> ModelResult:
    """Time plain, source-cached and source-every-step sampling and the one-off encode for one model."""
    from atelier.models.sites import SITES_BY_NAME

    height, width = image_size(size)
    channels, context_dim = MODEL_WIDTHS[name]
    model = random_unet(comfy, channels, context_dim)
    truepose, modules, patcher = truepose_weights(channels, context_dim, clip_embed_dim(clip_vision))
    g = torch.Generator().manual_seed(0)
    context = torch.randn(1, 77, context_dim, generator=g)
    positive = [[context, {"pooled_output": None}]]
    negative = [[torch.randn(1, 77, context_dim, generator=g), {"pooled_output": None}]]
    source, _, _ = encode_pose_source(comfy, model, clip_vision, context, height, width)  # warm-up
    variants = {"plain": (model, None)}
    for refresh in VARIANTS[1:]:
        variants[refresh] = applied(model, truepose, modules, patcher, source, height, width, refresh)
    for variant, _ in variants.values():
        time_ksampler(comfy, variant, positive, negative, height, width, 1, cfg, SAMPLER, SCHEDULER)  # warm-up: load weights, first calls
    sampling: dict[str, list[float]] = {key: [] for key in VARIANTS}
    sourcenet: list[float] = []
    clip: list[float] = []
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every variant alike
        _, sourcenet_seconds, clip_seconds = encode_pose_source(comfy, model, clip_vision, context, height, width)
        sourcenet.append(sourcenet_seconds)
        clip.append(clip_seconds)
        for key in VARIANTS:
            sampling[key].append(time_ksampler(comfy, variants[key][0], positive, negative, height, width, steps, cfg, SAMPLER, SCHEDULER))
    builds = {key: variants[key][1].last_run.source_builds for key in VARIANTS[1:]}
    bank_bytes = sum(source.bank.get(SITES_BY_NAME[site]).nbytes for site in source.bank.site_names)
    hpfa_bank_bytes = sum(source.bank.get(SITES_BY_NAME[site]).nbytes for site in truepose.hpfa_sites)
    return ModelResult(
        name=name, height=height, width=width, steps=steps, repeats=repeats,
        sampling={key: statistics.median(values) for key, values in sampling.items()}, source_builds=builds,
        sourcenet=statistics.median(sourcenet), clip_regions=statistics.median(clip), bank_bytes=bank_bytes,
        hpfa_bank_bytes=hpfa_bank_bytes,
        rest_of_source_bytes=tensor_bytes(source.latent, source.context, source.labels, source.region_masks, source.clip_embeds),
        run_cache_bytes=run_cache_bytes(variants["once"][1], model.load_device),
    )


def print_timings(comfy, result: ModelResult, cfg: float) -> None:
    """Print one model's medians, their ratios to plain sampling and to one plain CFG step, and the memory."""
    from comfy.ldm.modules import attention

    plain = result.sampling["plain"]
    per_step = plain / result.steps
    print(f"\n{result.name}: {result.height}x{result.width} (HxW), {result.steps} steps, {SAMPLER}/{SCHEDULER}, "
          f"cfg {cfg} (batch 2), median of {result.repeats} repeat(s), device {comfy.model_management.get_torch_device()}, "
          f"ComfyUI attention {attention.optimized_attention.__name__}")
    print(f"  plain sampling               {plain:8.2f} s   ({per_step:.3f} s per CFG step)")
    for key in VARIANTS[1:]:
        print(f"  TruePose {key:<10} sampling {result.sampling[key]:8.2f} s   ratio to plain "
              f"{result.sampling[key] / plain:6.3f}   (source side built {result.source_builds[key]}x in the last run)")
    print(f"  every_step / once            {result.sampling['every_step'] / result.sampling['once']:8.3f}")
    one_off = result.sourcenet + result.clip_regions
    print(f"  one-off SourceNet pass       {result.sourcenet:8.3f} s = {result.sourcenet / per_step:5.2f} plain CFG steps")
    print(f"  one-off CLIP region embeds   {result.clip_regions:8.3f} s = {result.clip_regions / per_step:5.2f} plain CFG steps")
    print(f"  one-off Encode Pose Source   {one_off:8.3f} s = {one_off / per_step:5.2f} plain CFG steps "
          f"= {one_off / plain:6.3f} of the plain run")
    print(f"  SOURCE: SourceNet bank       {result.bank_bytes / MIB:8.2f} MiB (16 sites; the 9 HPFA sites "
          f"{result.hpfa_bank_bytes / MIB:.2f} MiB), rest {result.rest_of_source_bytes / MIB:.2f} MiB "
          "(latent, labels, region masks, CLIP embeds)")
    print(f"  per-run cached source side   {result.run_cache_bytes / MIB:8.2f} MiB (H', K'_h, V'_h, K/V^clip, 9 sites)")


def print_table(results: dict[str, ModelResult], cfg: float, clip_note: str) -> None:
    """The README table: ratios per model."""
    print("\n### TruePose cost (paste into README)\n")
    names = list(results)
    header = " | ".join(f"{n} ({results[n].height}x{results[n].width}, {results[n].steps} steps, median of "
                        f"{results[n].repeats})" for n in names)
    print(f"| vs plain sampling ({SAMPLER}, CFG {cfg}) | {header} |")
    print("|---|" + "---|" * len(names))
    labels = {"once": "TruePose, source side cached once per run (target <= 1.2x)",
              "every_step": "TruePose, SourceNet + source side every step"}
    for key, label in labels.items():
        cells = " | ".join(f"{results[n].sampling[key] / results[n].sampling['plain']:.2f}x" for n in names)
        print(f"| {label} | {cells} |")
    cells = " | ".join(f"{results[n].sampling['every_step'] / results[n].sampling['once']:.2f}x" for n in names)
    print(f"| what the cache saves (every step / cached) | {cells} |")
    for label, attribute in (("Encode Pose Source: SourceNet pass (once per source)", "sourcenet"),
                             (f"Encode Pose Source: CLIP region embeddings ({clip_note})", "clip_regions")):
        cells = " | ".join(
            f"{getattr(results[n], attribute) / (results[n].sampling['plain'] / results[n].steps):.2f} plain CFG steps"
            for n in names
        )
        print(f"| {label} | {cells} |")
    cells = " | ".join(f"{results[n].bank_bytes / MIB:.2f} MiB" for n in names)
    print(f"| SOURCE memory: SourceNet bank (16 sites) | {cells} |")


def main() -> None:
    from atelier.models.truepose.config import PAPER_GUIDANCE

    args, comfy, names, plan = system_bench_setup(
        __doc__, "image height in pixels; width = 11/16 of it (256 -> 256x176, 512 -> 512x352), latent = /8",
        "the HPFA and CAA reads",
    )
    started = time.perf_counter()
    clip_vision, clip_note = small_clip_vision(), "small random CLIP vision, not a real encoder's cost"
    print(f"{clip_note} built in {time.perf_counter() - started:.0f} s (image size {clip_vision.image_size}, "
          f"embeddings {clip_embed_dim(clip_vision)} wide); the TruePose modules use that width")
    results: dict[str, ModelResult] = {}
    for name in names:
        steps, repeats = plan[name]
        started = time.perf_counter()
        results[name] = bench_model(comfy, clip_vision, name, args.size, steps, repeats, PAPER_GUIDANCE)
        print_timings(comfy, results[name], PAPER_GUIDANCE)
        print(f"  ({name} section took {time.perf_counter() - started:.0f} s)")
    print_table(results, PAPER_GUIDANCE, clip_note)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
