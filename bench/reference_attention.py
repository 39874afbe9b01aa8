"""Benchmark: sampling with Atelier Reference Attention against plain sampling, in one run.

Not a test. Prints wall-clock ratios measured back to back in this process (the machines are
shared and noisy; compare ratios, not seconds): bank written once per run vs rewritten at every
step, on the tiny SD1.5-shaped UNet and on the full SD1.5 architecture with random weights.

    COMFYUI_PATH=/path/to/ComfyUI python bench/reference_attention.py --size 256 --steps 10

Uses a CUDA GPU when torch sees one (then try --size 512), else the CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def import_comfyui(path: str, pytorch_attention: bool):
    """Import ComfyUI from a checkout, on the CPU unless CUDA is available.

    With ``pytorch_attention`` ComfyUI's own attention is torch SDPA, the kernel the reference read
    uses; otherwise ComfyUI picks its default (sub-quadratic on the CPU, which is slower than SDPA,
    so a patched run can come out *faster* than plain and the ratio would measure kernels).
    """
    sys.path.insert(0, path)
    import comfy.options  # noqa: F401
    import comfy.cli_args

    comfy.cli_args.args.cpu = not torch.cuda.is_available()
    comfy.cli_args.args.use_pytorch_cross_attention = pytorch_attention
    import comfy.model_management
    import comfy.model_patcher
    import comfy.sample
    import comfy.supported_models

    return comfy


def random_unet(comfy, channels: int, context_dim: int, seed: int = 0):
    """An SD1.5-layout UNet with random weights in a ModelPatcher (no checkpoint file)."""
    sys.path.insert(0, str(REPO / "tests"))
    from comfy_fixtures import init_weights_, sd15_unet_config

    config = comfy.supported_models.SD15(sd15_unet_config(channels, context_dim))
    dtype = torch.float16 if torch.cuda.is_available() else torch.float32
    config.set_inference_dtype(dtype, None)
    model = config.get_model({})
    init_weights_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(
        model, load_device=comfy.model_management.get_torch_device(), offload_device=comfy.model_management.unet_offload_device()
    )


def with_reference(model, latent: torch.Tensor, refresh: str):
    from atelier.models.reference_config import ReferenceConfig, Refresh, ReferenceSize
    from atelier.nodes.reference_attachment import ReferenceAttachment
    from atelier.nodes.reference_source import SameModelReference

    config = ReferenceConfig(refresh=Refresh(refresh))
    patched = model.clone()
    source = SameModelReference(latent, config.enabled_site_names, config.refresh, ReferenceSize.AS_IS)
    ReferenceAttachment(config, source).install(patched)
    return patched


def synchronize() -> None:
    """Wait for queued GPU work, so wall-clock times are complete."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_ksampler(comfy, model, positive, negative, height: int, width: int, steps: int, cfg: float,
                  sampler: str, scheduler: str) -> float:
    """Seconds of one KSampler run from a zero latent of ``height`` × ``width`` pixels (seed 0)."""
    latent = torch.zeros(1, 4, height // 8, width // 8)
    noise = comfy.sample.prepare_noise(latent, 0)
    synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        comfy.sample.sample(model, noise, steps, cfg, sampler, scheduler, positive, negative, latent,
                            disable_pbar=True, seed=0)
    synchronize()
    return time.perf_counter() - start


def time_sampling(comfy, model, context_dim: int, size: int, steps: int) -> float:
    """Seconds of one euler run at CFG 7 with random prompts, ``size`` × ``size`` pixels."""
    g = torch.Generator().manual_seed(0)
    positive = [[torch.randn(1, 77, context_dim, generator=g), {"pooled_output": None}]]
    negative = [[torch.randn(1, 77, context_dim, generator=g), {"pooled_output": None}]]
    return time_ksampler(comfy, model, positive, negative, size, size, steps, 7.0, "euler", "normal")


def bench(comfy, name: str, channels: int, context_dim: int, size: int, steps: int, repeats: int) -> None:
    model = random_unet(comfy, channels, context_dim)
    reference = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(1))
    variants = {
        "plain": model,
        "once": with_reference(model, reference, "once"),
        "every_step": with_reference(model, reference, "every_step"),
    }
    time_sampling(comfy, model, context_dim, size, 1)  # warm-up: load weights, first-call costs
    times = {key: [] for key in variants}
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every variant alike
        for key, variant in variants.items():
            times[key].append(time_sampling(comfy, variant, context_dim, size, steps))
    best = {key: min(values) for key, values in times.items()}
    import comfy.ldm.modules.attention as attention

    print(f"\n{name}: {size}x{size}, {steps} steps, cfg 7 (batch 2), {repeats} repeats, "
          f"device {comfy.model_management.get_torch_device()}, ComfyUI attention {attention.optimized_attention.__name__}")
    for key, values in times.items():
        print(f"  {key:<11} best {best[key]:7.2f} s   median {statistics.median(values):7.2f} s")
    print(f"  ratio once / plain       {best['once'] / best['plain']:.3f}")
    print(f"  ratio every_step / plain {best['every_step'] / best['plain']:.3f}")
    print(f"  ratio every_step / once  {best['every_step'] / best['once']:.3f}")


MODEL_WIDTHS = {"tiny": (32, 64), "sd15": (320, 768)}  # (model_channels, context_dim)


def system_bench_setup(doc: str, size_help: str, kernel: str):
    """What the per-system benchmarks (AnyDressing, IGR) share: their options, ComfyUI imported, torch
    threads set, and the (steps, repeats) plan per model. Returns ``(args, comfy, names, plan)``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"), help="ComfyUI checkout (default: $COMFYUI_PATH)")
    parser.add_argument("--size", type=int, default=256, help=size_help)
    parser.add_argument("--steps", type=int, default=10, help="sampling steps per run (tiny model)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant, tiny model (median is reported)")
    parser.add_argument("--sd15-steps", type=int, default=None,
                        help="steps for the full-size model (default: --steps on a GPU, 4 on the CPU)")
    parser.add_argument("--sd15-repeats", type=int, default=None,
                        help="repeats for the full-size model (default: --repeats on a GPU, 3 on the CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default 1 on the CPU: on a shared machine one thread gives steadier "
                        "ratios than threads that wait on each other; 0 keeps torch's default)")
    parser.add_argument("--models", default="tiny,sd15", help="comma list of: tiny, sd15")
    parser.add_argument("--comfy-attention", choices=("pytorch", "default"), default="pytorch",
                        help=f"ComfyUI's attention: pytorch (SDPA, the kernel {kernel} uses; default) or ComfyUI's own "
                        "default for the device")
    args = parser.parse_args()
    if not args.comfyui:
        parser.error("give --comfyui or set COMFYUI_PATH")
    names = args.models.split(",")
    unknown = [name for name in names if name not in MODEL_WIDTHS]
    if unknown:
        parser.error(f"--models: unknown model(s) {unknown}; use tiny, sd15")
    comfy = import_comfyui(args.comfyui, args.comfy_attention == "pytorch")
    gpu = torch.cuda.is_available()
    threads = args.threads if args.threads is not None else (0 if gpu else 1)
    if threads:
        torch.set_num_threads(threads)
    plan = {
        "tiny": (args.steps, args.repeats),
        "sd15": (args.sd15_steps or (args.steps if gpu else 4), args.sd15_repeats or (args.repeats if gpu else 3)),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores at start; plan (steps, repeats): {plan}")
    return args, comfy, names, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"), help="ComfyUI checkout (default: $COMFYUI_PATH)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (latent = size / 8)")
    parser.add_argument("--steps", type=int, default=10, help="sampling steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per variant (best is reported)")
    parser.add_argument("--models", default="tiny,sd15", help="comma list of: tiny, sd15")
    parser.add_argument("--comfy-attention", choices=("pytorch", "default"), default="pytorch",
                        help="ComfyUI's attention for plain sampling: pytorch (SDPA, same kernel as the read; default) "
                        "or ComfyUI's own default for the device")
    args = parser.parse_args()
    if not args.comfyui:
        parser.error("give --comfyui or set COMFYUI_PATH")
    comfy = import_comfyui(args.comfyui, args.comfy_attention == "pytorch")
    for name in args.models.split(","):
        bench(comfy, name, *MODEL_WIDTHS[name], args.size, args.steps, args.repeats)


if __name__ == "__main__":
    main()
