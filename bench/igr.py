"""Benchmark: IGR try-off sampling against plain sampling, and the one-off cost of Garment Restoration
(GarmNet pass + CLIP vision) against one sampling step. Measured in one run.

    COMFYUI_PATH=/path/to/ComfyUI python bench/igr.py --size 256 --steps 10

Not a test. Wall-clock ratios are measured back to back in this process, interleaved per repeat,
median of the repeats (shared machines are noisy: compare ratios, not seconds). Random weights, no
checkpoint file: the tiny SD1.5-shaped UNet and the full SD1.5 architecture (model_channels 320,
context_dim 768), with a random CLIP ViT-L/14 image encoder (768-wide embeddings; the IGR modules
are built for that width). What is timed is what the try-off graph runs:

* sampling: KSampler (ddim, ddim_uniform, CFG 1.5 so batch 2, the paper's setting) on the MODEL
  that Garment Restoration returns: GarmNet's bank captured once in the node and appended to K/V
  at every self-attention (high level), plus the IP-Adapter's decoupled cross-attention at every
  attn2 (low level), both per step, for the conditional rows only (the node's UncondPolicy.NONE).
  Also each path alone, to split the cost. Plain sampling runs the same sampler on the same UNet.
* one-off: GarmNet's UNet pass over the person latent (``run_garmnet``) and the CLIP vision encode
  of the garment crop plus the IP projection (``ip_tokens``), each once per person. The VAE encode
  of the person is not included (any method that reads the photo pays it).

Uses a CUDA GPU when torch sees one (then try --size 512), else the CPU with one torch thread.
The full-size model on a 2-core CPU uses --sd15-steps / --sd15-repeats (4 steps, 3 repeats).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_attention import (  # the sibling bench script
    MODEL_WIDTHS,
    random_unet,
    synchronize,
    system_bench_setup,
    time_ksampler,
)

CLIP_VISION_EMBED_DIM = 768  # ViT-L/14
CFG = 1.5  # Table 3
SAMPLER, SCHEDULER = "ddim", "ddim_uniform"
VARIANTS = ("plain", "tryoff", "high_only", "low_only")
MIB = 2**20


@dataclass
class ModelResult:
    """Medians in seconds of one model: sampling per variant and the one-off node costs."""

    name: str
    size: int
    steps: int
    repeats: int
    sampling: dict[str, float]
    garmnet: float
    clip_vision: float
    bank_bytes: int


def igr_weights(model_channels: int, context_dim: int, seed: int = 0):
    """IGRWeights with random GarmNet (non-zero LoRA B and mask channel, like a trained file) and IP-Adapter."""
    from atelier.models.igr.config import IGRConfig
    from atelier.models.igr.spec import IGR
    from atelier.models.weight_format import BaseModel
    from atelier.nodes.igr_nodes import IGRWeights
    from atelier.nodes.weights_loader import managed_module

    base = BaseModel(model_channels=model_channels, context_dim=context_dim)
    config = IGRConfig(image_embed_dim=CLIP_VISION_EMBED_DIM)
    torch.manual_seed(seed)
    modules = IGR.build(config.to_dict(), base)
    with torch.no_grad():
        for parameter in modules["garmnet"].lora.up.values():
            parameter.normal_(0.0, 0.05)
        modules["garmnet"].mask_in.weight.normal_(0.0, 0.1)
    return IGRWeights(name="bench", config=config, base=base, garmnet=managed_module(modules["garmnet"].eval()),
                      ip_adapter=managed_module(modules["ip_adapter"].eval()))


def random_clip_vision():
    """ComfyUI's CLIP_VISION for a random ViT-L/14 (what Load CLIP Vision returns for such a file)."""
    import comfy.clip_vision

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from workflow_assets_igr import random_vitl_state

    return comfy.clip_vision.load_clipvision_from_sd(random_vitl_state(seed=11))


def person_inputs(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random person latent (1, 4, h, w), its pixels (1, H, W, 3) and a garment mask (1, H, W)."""
    g = torch.Generator().manual_seed(5)
    latent = torch.randn(1, 4, size // 8, size // 8, generator=g)
    pixels = torch.rand(1, size, size, 3, generator=g)
    mask = torch.zeros(1, size, size)
    mask[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1.0  # (1, H, W) torso box
    return latent, pixels, mask


def encode_person(comfy, model, igr, clip_vision, context: torch.Tensor, size: int):
    """The node's one-off work: (bank, tokens, GarmNet seconds, CLIP vision + projection seconds)."""
    from atelier.models.igr.garmnet import mask_to_latent
    from atelier.nodes.igr_garmnet import run_garmnet
    from atelier.nodes.igr_nodes import ip_tokens

    latent, pixels, mask = person_inputs(size)
    comfy.model_management.load_models_gpu([model, igr.garmnet])
    device = model.load_device
    mask_latent = mask_to_latent(mask, tuple(latent.shape[-2:]))  # (1, 1, h, w)
    synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        bank = run_garmnet(model.model, latent.to(device), mask_latent.to(device), igr.garmnet.model,
                           igr.config.sites, context.to(device))
        bank = bank.to(comfy.model_management.intermediate_device())
    synchronize()
    garmnet_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with torch.inference_mode():
        tokens = ip_tokens(igr, clip_vision, pixels, mask)
    synchronize()
    return bank, tokens, garmnet_seconds, time.perf_counter() - start


def restored(model, igr, bank, tokens, high: float, low: float):
    """The MODEL Garment Restoration returns for these strengths (as in the node's execute)."""
    from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
    from atelier.nodes.igr_attachment import IGRAttachment

    config = ReferenceConfig(mode=ReadMode.CONCAT, strength=high, site_weights={name: 1.0 for name in igr.config.sites},
                             uncond=UncondPolicy.NONE)
    patched = model.clone()
    IGRAttachment(config, bank if high > 0 else None, igr.ip_adapter.model if low > 0 else None,
                  tokens if low > 0 else None, low, ip_patcher=igr.ip_adapter).install(patched)
    return patched


def bench_model(comfy, clip_vision, name: str, size: int, steps: int, repeats: int) -> ModelResult:
    """Time plain sampling, try-off sampling (both paths, each alone) and the one-off node work."""
    channels, context_dim = MODEL_WIDTHS[name]
    model = random_unet(comfy, channels, context_dim)
    igr = igr_weights(channels, context_dim)
    g = torch.Generator().manual_seed(0)
    context = torch.randn(1, 77, context_dim, generator=g)
    positive = [[context, {"pooled_output": None}]]
    negative = [[torch.randn(1, 77, context_dim, generator=g), {"pooled_output": None}]]
    bank, tokens, _, _ = encode_person(comfy, model, igr, clip_vision, context, size)  # warm-up
    models = {
        "plain": model,
        "tryoff": restored(model, igr, bank, tokens, 1.0, 1.0),
        "high_only": restored(model, igr, bank, tokens, 1.0, 0.0),
        "low_only": restored(model, igr, bank, tokens, 0.0, 1.0),
    }
    for variant in models.values():
        time_ksampler(comfy, variant, positive, negative, size, size, 1, CFG, SAMPLER, SCHEDULER)  # warm-up: load weights, first-call costs
    sampling: dict[str, list[float]] = {key: [] for key in VARIANTS}
    garmnet: list[float] = []
    clip: list[float] = []
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every variant alike
        _, _, garmnet_seconds, clip_seconds = encode_person(comfy, model, igr, clip_vision, context, size)
        garmnet.append(garmnet_seconds)
        clip.append(clip_seconds)
        for key in VARIANTS:
            sampling[key].append(time_ksampler(comfy, models[key], positive, negative, size, size, steps, CFG, SAMPLER, SCHEDULER))
    return ModelResult(name=name, size=size, steps=steps, repeats=repeats,
                       sampling={key: statistics.median(values) for key, values in sampling.items()},
                       garmnet=statistics.median(garmnet), clip_vision=statistics.median(clip), bank_bytes=bank_nbytes(bank))


def bank_nbytes(bank) -> int:
    """Bytes of a ReferenceBank: the banked n of every site."""
    from atelier.models.sites import SITES_BY_NAME

    return sum(bank.get(SITES_BY_NAME[name]).nbytes for name in bank.site_names)


def print_timings(comfy, result: ModelResult) -> None:
    """Print one model's medians and their ratios to plain sampling and to one plain CFG step."""
    from comfy.ldm.modules import attention

    plain = result.sampling["plain"]
    per_step = plain / result.steps
    print(f"\n{result.name}: {result.size}x{result.size}, {result.steps} steps, {SAMPLER}/{SCHEDULER}, cfg {CFG} (batch 2), "
          f"median of {result.repeats} repeat(s), device {comfy.model_management.get_torch_device()}, "
          f"ComfyUI attention {attention.optimized_attention.__name__}")
    print(f"  plain sampling          {plain:8.2f} s   ({per_step:.3f} s per CFG step)")
    for key in VARIANTS[1:]:
        print(f"  {key:<10} sampling     {result.sampling[key]:8.2f} s   ratio to plain {result.sampling[key] / plain:6.3f}")
    one_off = result.garmnet + result.clip_vision
    print(f"  one-off GarmNet pass    {result.garmnet:8.3f} s = {result.garmnet / per_step:5.2f} plain CFG steps")
    print(f"  one-off CLIP vision+IP  {result.clip_vision:8.3f} s = {result.clip_vision / per_step:5.2f} plain CFG steps")
    print(f"  one-off total           {one_off:8.3f} s = {one_off / per_step:5.2f} plain CFG steps "
          f"= {one_off / plain:6.3f} of the plain run")
    print(f"  GarmNet bank            {result.bank_bytes / MIB:8.2f} MiB (16 sites, one person)")


def print_table(results: dict[str, ModelResult]) -> None:
    """The README table: ratios per model."""
    print("\n### IGR try-off cost (paste into README)\n")
    names = list(results)
    header = " | ".join(f"{name} ({results[name].size}px, {results[name].steps} steps, median of {results[name].repeats})"
                        for name in names)
    print(f"| vs plain sampling (ddim, CFG 1.5) | {header} |")
    print("|---|" + "---|" * len(names))
    labels = {"tryoff": "try-off sampling (GarmNet K/V append + IP cross-attention)",
              "high_only": "high level only (K/V append)", "low_only": "low level only (IP cross-attention)"}
    for key, label in labels.items():
        cells = " | ".join(f"{results[n].sampling[key] / results[n].sampling['plain']:.2f}x" for n in names)
        print(f"| {label} | {cells} |")
    for label, attribute in (("GarmNet pass (once per person)", "garmnet"), ("CLIP vision + IP projection (once)", "clip_vision")):
        cells = " | ".join(
            f"{getattr(results[n], attribute) / (results[n].sampling['plain'] / results[n].steps):.2f} plain CFG steps" for n in names
        )
        print(f"| {label} | {cells} |")


def main() -> None:
    args, comfy, names, plan = system_bench_setup(__doc__, "person and garment image side in pixels (latent = size / 8)",
                                                  "the reads")
    started = time.perf_counter()
    clip_vision = random_clip_vision()
    print(f"random CLIP ViT-L/14 built in {time.perf_counter() - started:.0f} s "
          f"(ComfyUI dtype {clip_vision.dtype}, image size {clip_vision.image_size})")
    results: dict[str, ModelResult] = {}
    for name in names:
        steps, repeats = plan[name]
        started = time.perf_counter()
        results[name] = bench_model(comfy, clip_vision, name, args.size, steps, repeats)
        print_timings(comfy, results[name])
        print(f"  ({name} section took {time.perf_counter() - started:.0f} s)")
    print_table(results)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
