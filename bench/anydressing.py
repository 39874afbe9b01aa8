"""Benchmark: AnyDressing (1, 2, 4 garments) against plain sampling, and its weights/memory per
garment against a ReferenceNet (one UNet copy) per garment. Measured in one run.

    COMFYUI_PATH=/path/to/ComfyUI python bench/anydressing.py --size 256 --steps 10

Not a test. Wall-clock ratios are measured back to back in this process, interleaved per repeat,
median of the repeats (shared machines are noisy: compare ratios, not seconds). Random weights, no
checkpoint file: the tiny SD1.5-shaped UNet and the full SD1.5 architecture (model_channels 320,
context_dim 768). What is timed is what a ComfyUI graph runs:

* encode: the GarmentsNet pass of Encode Garments (``run_garments_net``: one batched UNet call at
  t = 0 over the N garment latents with the GFE LoRA), once per set of garments. The VAE encode of
  the garment images is not included (it is the same for any garment method).
* sampling: KSampler (euler, CFG 7 so batch 2) on the MODEL that Apply Dressing returns
  (DressingAttachment with uncond = no_garment, the node's default), the bank already encoded.

Uses a CUDA GPU when torch sees one (then try --size 512), else the CPU. The full-size model on
a 2-core CPU uses --sd15-steps / --sd15-repeats (4 steps, 3 repeats) so the whole run finishes in
about 7 minutes; the CPU run uses one torch thread unless --threads says otherwise.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
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
    time_sampling,
)

GARMENT_COUNTS = (1, 2, 4)
MIB = 2**20


@dataclass
class ModelResult:
    """Timings and sizes of one model: medians in seconds, bank bytes per garment count."""

    name: str
    size: int
    steps: int
    repeats: int
    plain: float
    sampling: dict[int, float]
    encode: dict[int, float]
    bank_bytes: dict[int, int]
    unet_params: int


def dressing_modules(model_channels: int, context_dim: int, seed: int = 0) -> dict[str, torch.nn.Module]:
    """GFE LoRA (non-zero B, like a trained file) and DA projections for a UNet of these widths."""
    from atelier.models.anydressing.config import DressingConfig
    from atelier.models.anydressing.spec import build_anydressing
    from atelier.models.weight_format import BaseModel

    torch.manual_seed(seed)
    modules = build_anydressing(DressingConfig().to_dict(), BaseModel(model_channels=model_channels, context_dim=context_dim))
    with torch.no_grad():
        for parameter in modules["garment_lora"].up.values():
            parameter.normal_(0.0, 0.05)
    return {name: module.eval() for name, module in modules.items()}


def encode_garments(comfy, model, lora, count: int, size: int, context_dim: int):
    """The Encode Garments pass for ``count`` garments of ``size`` pixels: (GarmentBank, seconds)."""
    from atelier.models.anydressing.config import DEFAULT_SLOTS, DressingConfig
    from atelier.models.anydressing.garment_bank import GarmentBank
    from atelier.nodes.dressing_garments import run_garments_net

    config = DressingConfig()
    categories = list(DEFAULT_SLOTS[:count])
    slot_ids = torch.tensor([config.slot_index(name) for name in categories])
    comfy.model_management.load_models_gpu([model])
    device = model.load_device
    latent = torch.randn(count, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(count))  # (N, 4, h, w)
    latent = latent.to(device)
    lora = lora.to(device)
    synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        rows = run_garments_net(model.model, latent, slot_ids, lora, config.sites, context_dim)
        bank = GarmentBank.from_rows(rows, categories)
    synchronize()
    return bank, time.perf_counter() - start


def dressed(model, bank, projections_patcher):
    """The MODEL Apply Dressing returns for ``bank`` (λ 0.7, uncond = no_garment, all sites).

    ``projections_patcher`` wraps the DA projections once, as Load Dressing does for a loaded file.
    """
    from atelier.models.anydressing.config import PAPER_LAMBDA
    from atelier.models.reference_config import ReadMode, ReferenceConfig, UncondPolicy
    from atelier.nodes.dressing_attachment import DressingAttachment

    config = ReferenceConfig(mode=ReadMode.CROSS, strength=PAPER_LAMBDA, uncond=UncondPolicy.NONE)
    patched = model.clone()
    attachment = DressingAttachment(config, bank, projections_patcher.model, projections_patcher=projections_patcher)
    attachment.install(patched)
    return patched


def bench_model(comfy, name: str, size: int, steps: int, repeats: int) -> ModelResult:
    """Time plain sampling, the garment encode and dressed sampling for 1, 2, 4 garments."""
    from atelier.nodes.weights_loader import managed_module

    channels, context_dim = MODEL_WIDTHS[name]
    model = random_unet(comfy, channels, context_dim)
    modules = dressing_modules(channels, context_dim)
    projections = managed_module(modules["projections"])
    time_sampling(comfy, model, context_dim, size, 1)  # warm-up: load weights, first-call costs
    warm_bank, _ = encode_garments(comfy, model, modules["garment_lora"], 1, size, context_dim)
    time_sampling(comfy, dressed(model, warm_bank, projections), context_dim, size, 1)
    plain: list[float] = []
    sampling: dict[int, list[float]] = {count: [] for count in GARMENT_COUNTS}
    encode: dict[int, list[float]] = {count: [] for count in GARMENT_COUNTS}
    bank_bytes: dict[int, int] = {}
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every variant alike
        plain.append(time_sampling(comfy, model, context_dim, size, steps))
        for count in GARMENT_COUNTS:
            bank, seconds = encode_garments(comfy, model, modules["garment_lora"], count, size, context_dim)
            encode[count].append(seconds)
            bank_bytes[count] = bank.nbytes
            sampling[count].append(time_sampling(comfy, dressed(model, bank, projections), context_dim, size, steps))
    unet_params = sum(p.numel() for p in model.model.diffusion_model.parameters())
    return ModelResult(
        name=name, size=size, steps=steps, repeats=repeats, plain=statistics.median(plain),
        sampling={count: statistics.median(values) for count, values in sampling.items()},
        encode={count: statistics.median(values) for count, values in encode.items()},
        bank_bytes=bank_bytes, unet_params=unet_params,
    )


def print_timings(comfy, result: ModelResult) -> None:
    """Print one model's medians and their ratios to plain sampling and to one plain CFG step."""
    from comfy.ldm.modules import attention

    per_step = result.plain / result.steps
    print(f"\n{result.name}: {result.size}x{result.size}, {result.steps} steps, euler, cfg 7 (batch 2), "
          f"median of {result.repeats} repeat(s), device {comfy.model_management.get_torch_device()}, "
          f"ComfyUI attention {attention.optimized_attention.__name__}, UNet {result.unet_params / 1e6:.1f} M params")
    print(f"  plain sampling            {result.plain:8.2f} s   ({per_step:.3f} s per CFG step)")
    for count in GARMENT_COUNTS:
        print(f"  {count} garment(s): sampling {result.sampling[count]:8.2f} s   ratio to plain {result.sampling[count] / result.plain:6.3f}"
              f"   | encode {result.encode[count]:6.3f} s = {result.encode[count] / per_step:5.2f} plain CFG steps"
              f" = {result.encode[count] / result.plain:6.3f} of the plain run")


@dataclass
class FileSizes:
    """Bytes of an untrained full-size AnyDressing file and its parts, and the SD1.5 UNet's size."""

    file_bytes: int
    lora_params: int
    lora_slots: int
    projection_params: int
    unet_params: int


def file_sizes(unet_params: int) -> FileSizes:
    """Write export_untrained(BaseModel()) to a temp dir and stat it; count its parts' parameters."""
    from atelier.models.anydressing.spec import ANYDRESSING
    from atelier.models.weight_format import BaseModel
    from atelier.models.weights import export_untrained

    base = BaseModel()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "anydressing_sd15.safetensors")
        export_untrained(path, ANYDRESSING, base)
        file_bytes = os.path.getsize(path)
    modules = ANYDRESSING.build(ANYDRESSING.default_config(base), base)
    lora = modules["garment_lora"]
    return FileSizes(
        file_bytes=file_bytes,
        lora_params=sum(p.numel() for p in lora.parameters()),
        lora_slots=next(iter(lora.down.values())).shape[0],
        projection_params=sum(p.numel() for p in modules["projections"].parameters()),
        unet_params=unet_params,
    )


def sd15_unet_params(comfy) -> int:
    """Parameter count of the SD1.5 UNet, from ComfyUI's own model class (built, not initialised)."""
    model = random_unet(comfy, *MODEL_WIDTHS["sd15"])
    return sum(p.numel() for p in model.model.diffusion_model.parameters())


def bank_bytes_per_garment(size: int, model_channels: int, element_size: int) -> int:
    """Bytes of one garment's bank at ``size`` pixels: F_k (L, C) at every Dressing-Attention site."""
    from atelier.models.anydressing.config import DressingConfig
    from atelier.models.sites import SITES_BY_NAME

    latent = size // 8
    total = 0
    for name in DressingConfig().sites:
        site = SITES_BY_NAME[name]
        total += site.token_count(latent, latent) * site.channels(model_channels) * element_size
    return total


def print_sizes(sizes: FileSizes, results: dict[str, ModelResult], size: int) -> list[tuple[str, str, str]]:
    """Print the weight-file and per-garment memory comparison; return its rows for the table."""
    fp32, fp16 = 4, 2
    unet32 = sizes.unet_params * fp32
    unet16 = sizes.unet_params * fp16
    lora_slot = sizes.lora_params // sizes.lora_slots
    projections = sizes.projection_params * fp32
    print("\nWeights, full SD1.5 size (export_untrained(BaseModel()), fp32 safetensors incl. header):")
    print(f"  AnyDressing file            {sizes.file_bytes / MIB:9.2f} MiB")
    print(f"    GFE LoRA, {sizes.lora_slots} slots        {sizes.lora_params * fp32 / MIB:9.2f} MiB  "
          f"({sizes.lora_params / 1e6:.2f} M params)")
    print(f"    GFE LoRA per slot         {lora_slot * fp32 / MIB:9.2f} MiB  ({lora_slot / 1e6:.3f} M params)")
    print(f"    DA projections W'k, W'v   {projections / MIB:9.2f} MiB  ({sizes.projection_params / 1e6:.2f} M params)")
    print(f"  SD1.5 UNet                  {unet32 / MIB:9.2f} MiB fp32, {unet16 / MIB:.2f} MiB fp16 "
          f"({sizes.unet_params / 1e6:.1f} M params)")
    print(f"  file / one UNet (fp32)      {sizes.file_bytes / unet32:9.4f}")
    print(f"  LoRA slot / one UNet        {lora_slot / sizes.unet_params:9.5f}  (a ReferenceNet per garment adds one UNet per garment)")

    print("\nMemory per extra garment at inference (a ReferenceNet per garment: one UNet copy each):")
    element = 2 if torch.cuda.is_available() else 4
    for name, result in results.items():
        measured = {count: result.bank_bytes[count] / count for count in GARMENT_COUNTS}
        print(f"  {name}: GarmentBank.nbytes / count at {result.size}x{result.size}: "
              + ", ".join(f"N={count}: {value / MIB:.2f} MiB" for count, value in measured.items()))
    computed = bank_bytes_per_garment(size, MODEL_WIDTHS["sd15"][0], element)
    at512 = bank_bytes_per_garment(512, MODEL_WIDTHS["sd15"][0], element)
    if "sd15" in results:
        agrees = all(results["sd15"].bank_bytes[count] == count * computed for count in GARMENT_COUNTS)
        print(f"  sd15 bank per garment from the site token grids: {computed / MIB:.2f} MiB at {size}x{size} "
              f"({'equals' if agrees else 'DIFFERS FROM'} the measured bank), {at512 / MIB:.2f} MiB at 512x512")
    else:
        print(f"  sd15 bank per garment from the site token grids: {computed / MIB:.2f} MiB at {size}x{size}, "
              f"{at512 / MIB:.2f} MiB at 512x512")
    print(f"  sd15 GFE LoRA per slot: {lora_slot / 1e6:.3f} M params ({lora_slot * element / MIB:.2f} MiB), loaded once "
          f"for all {sizes.lora_slots} slots; a garment of a category already worn adds no LoRA")
    print(f"  sd15 UNet copy: {sizes.unet_params / 1e6:.1f} M params ({sizes.unet_params * element / MIB:.0f} MiB)")
    print(f"  extra garment (bank + LoRA slot) / UNet copy at {size}x{size}: "
          f"{(computed + lora_slot * element) / (sizes.unet_params * element):.4f}")
    dtype = "fp16" if element == 2 else "fp32"
    return [
        ("AnyDressing weight file (all slots + DA)", f"{sizes.file_bytes / MIB:.0f} MiB fp32",
         f"{sizes.file_bytes / unet32:.3f} UNet"),
        ("GFE LoRA per garment slot", f"{lora_slot * fp32 / MIB:.2f} MiB fp32 ({lora_slot / 1e6:.2f} M params)",
         f"{lora_slot / sizes.unet_params:.4f} UNet"),
        ("DA projections (shared by all garments)", f"{projections / MIB:.1f} MiB fp32", f"{projections / unet32:.3f} UNet"),
        (f"Bank per garment, {size}x{size} ({dtype})", f"{computed / MIB:.1f} MiB", f"{computed / (sizes.unet_params * element):.4f} UNet"),
        (f"Bank per garment, 512x512 ({dtype})", f"{at512 / MIB:.1f} MiB", f"{at512 / (sizes.unet_params * element):.4f} UNet"),
        ("ReferenceNet per garment (one SD1.5 UNet)", f"{unet16 / MIB:.0f} MiB fp16 / {unet32 / MIB:.0f} MiB fp32", "1 UNet"),
    ]


def print_table(results: dict[str, ModelResult], size_rows: list[tuple[str, str, str]]) -> None:
    """The README table: time ratios per model, then sizes against one UNet."""
    print("\n### AnyDressing cost (paste into README)\n")
    names = list(results)
    header = " | ".join(f"{name} ({results[name].size}px, {results[name].steps} steps, median of {results[name].repeats})" for name in names)
    print(f"| Sampling time vs plain (CFG 7) | {header} |")
    print("|---|" + "---|" * len(names))
    for count in GARMENT_COUNTS:
        cells = " | ".join(f"{results[name].sampling[count] / results[name].plain:.2f}x" for name in names)
        print(f"| {count} garment{'s' if count > 1 else ''}: sampling | {cells} |")
    for count in GARMENT_COUNTS:
        cells = " | ".join(
            f"{results[name].encode[count] / (results[name].plain / results[name].steps):.2f} plain CFG steps" for name in names
        )
        print(f"| {count} garment{'s' if count > 1 else ''}: encode (once per set) | {cells} |")
    if size_rows:
        print("\n| Full SD1.5 size | Size | vs one UNet |")
        print("|---|---|---|")
        for label, value, ratio in size_rows:
            print(f"| {label} | {value} | {ratio} |")


def main() -> None:
    args, comfy, names, plan = system_bench_setup(__doc__, "image and garment side in pixels (latent = size / 8)",
                                                  "Dressing-Attention")
    results: dict[str, ModelResult] = {}
    for name in names:
        steps, repeats = plan[name]
        started = time.perf_counter()
        results[name] = bench_model(comfy, name, args.size, steps, repeats)
        print_timings(comfy, results[name])
        print(f"  ({name} section took {time.perf_counter() - started:.0f} s)")
    unet_params = results["sd15"].unet_params if "sd15" in results else sd15_unet_params(comfy)
    size_rows = print_sizes(file_sizes(unet_params), results, args.size)
    print_table(results, size_rows)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
