"""Benchmark: AnimateAnyone pose transfer (Apply AnimateAnyone) against plain sampling of the same
denoising UNet, and the one-off cost of Encode AnimateAnyone Source. Measured in one run.

    COMFYUI_PATH=/path/to/ComfyUI python bench/animate_anyone.py --size 256 --steps 10

Not a test. Wall-clock ratios measured back to back in this process, interleaved per repeat, median
of the repeats (shared machines are noisy: compare ratios, not seconds). Random weights, no files:
the tiny SD1.5-shaped UNet and the full SD1.5 architecture (model_channels 320, context_dim 768) as
both the denoising and the reference UNet, the published PoseGuider widths (16, 32, 96, 256) with a
random non-zero conv_out, a random (1, 1, C) image-embedding context (CLIP's cost is not included).
What is timed is what the pose-transfer graph runs:

* sampling: KSampler (ddim, simple, CFG 3.5 so batch 2, the public guidance) from a zero latent on
  - plain: the denoising UNet, unpatched, with the same one-token positive/negative;
  - animate_anyone: the MODEL Apply AnimateAnyone returns: the concat read at all 16 attn1 sites on
    the conditional half (the unconditional half runs plain, as the public uc_mask does), the pose
    guider once per run and its features added after conv_in on both halves.
  - animate_anyone_hpfa_caa: the same with TruePose's HPFA and CAA on top (random TruePose weights of
    the default decoder sites, a rectangle parsing of the source, random CLIP region embeddings): the
    source side once per run, and F̃ + F̂ added to the concat read at 9 decoder sites per step.
* one-off (Encode AnimateAnyone Source, once per source): the reference UNet's pass at t = 0 banking
  all 16 sites (the VAE encode of the photo is not included).

Uses a CUDA GPU when torch sees one (then try --size 512), else the CPU with one torch thread.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from reference_attention import (  # the sibling bench script
    MODEL_WIDTHS,
    random_unet,
    synchronize,
    system_bench_setup,
    time_ksampler,
)

CFG = 3.5


def pose_frame(size: int) -> list[dict]:
    """One POSE_KEYPOINT frame: a standing person on a ``size`` × ``size`` canvas."""
    points = [(0.50, 0.16), (0.50, 0.28), (0.39, 0.30), (0.31, 0.45), (0.27, 0.59), (0.61, 0.30), (0.69, 0.45),
              (0.73, 0.59), (0.44, 0.59), (0.42, 0.78), (0.42, 0.95), (0.56, 0.59), (0.58, 0.78), (0.58, 0.95),
              (0.47, 0.13), (0.53, 0.13), (0.44, 0.14), (0.56, 0.14)]
    flat = [value for x, y in points for value in (x * size, y * size, 1.0)]
    return [{"canvas_width": size, "canvas_height": size, "people": [{"pose_keypoints_2d": flat}]}]


def loaded_guider(channels: int):
    from atelier.models.pose_networks.pose_guider import PoseGuider, PoseGuiderConfig
    from atelier.nodes.animate_anyone_nodes import LoadedPoseGuider
    from atelier.nodes.weights_loader import managed_module

    torch.manual_seed(0)
    guider = PoseGuider(PoseGuiderConfig(embedding_channels=channels))
    with torch.no_grad():
        guider.conv_out.weight.normal_(0.0, 0.02)
    return LoadedPoseGuider(name="random", module=guider.eval(), patcher=managed_module(guider))


def encode_source(comfy, reference, latent: torch.Tensor, context: torch.Tensor):
    """Encode AnimateAnyone Source's reference pass (the node's body after the VAE and CLIP)."""
    from atelier.models.reference_bank import ReferenceBank
    from atelier.models.sites import SITE_GROUPS
    from atelier.nodes.animate_anyone_nodes import AnimateAnyoneSource
    from atelier.nodes.reference_source import write_bank

    comfy.model_management.load_models_gpu([reference])
    device = reference.load_device
    base = reference.model
    synchronize()
    start = time.perf_counter()
    bank = write_bank(base, base.process_latent_in(latent.to(device)), torch.zeros(1, device=device),
                      context.to(device), ReferenceBank(), SITE_GROUPS["all"])
    synchronize()
    return AnimateAnyoneSource(bank=bank, context=context, latent_hw=tuple(latent.shape[-2:])), time.perf_counter() - start


def parsed_source(source, size: int, clip_embed_dim: int):
    """``source`` with a rectangle LIP parsing of a standing person and random CLIP region embeddings."""
    from dataclasses import replace

    from atelier.models.labels import LIP_LABELS
    from atelier.nodes.truepose_source import region_embeddings

    labels = torch.zeros(1, size, size, dtype=torch.long)  # (1, H, W) LIP ids
    for name, (y0, y1, x0, x1) in (("upper_clothes", (0.28, 0.6, 0.35, 0.65)), ("pants", (0.58, 0.95, 0.38, 0.62)),
                                   ("face", (0.08, 0.24, 0.42, 0.58)), ("hair", (0.04, 0.1, 0.4, 0.6))):
        labels[:, int(y0 * size):int(y1 * size), int(x0 * size):int(x1 * size)] = LIP_LABELS.index(name)
    region_masks, _ = region_embeddings(None, torch.rand(1, size, size, 3), labels)  # (1, R, H, W)
    clip_embeds = torch.randn(1, region_masks.shape[1], clip_embed_dim, generator=torch.Generator().manual_seed(3))
    return replace(source, labels=labels, region_masks=region_masks, clip_embeds=clip_embeds)


def random_truepose(channels: int, context_dim: int, clip_embed_dim: int = 1024):
    """TruePose weights of the default sites, random (CAA's W^{V^clip} non-zero, as trained ones are)."""
    from atelier.models.truepose.config import TruePoseConfig
    from atelier.models.truepose.spec import TRUEPOSE
    from atelier.models.weight_format import BaseModel
    from atelier.nodes.truepose_nodes import TruePoseWeights
    from atelier.nodes.weights_loader import managed_module
    from torch import nn

    base = BaseModel(model_channels=channels, context_dim=context_dim)
    config = TruePoseConfig(clip_embed_dim=clip_embed_dim)
    torch.manual_seed(4)
    modules = nn.ModuleDict(TRUEPOSE.build(config.to_dict(), base)).eval()
    with torch.no_grad():
        for layer in modules["caa"].to_v.values():
            layer.weight.normal_(0.0, 0.02)
    return TruePoseWeights(name="random", config=config, base=base, modules=modules, patcher=managed_module(modules))


def bench_model(comfy, name: str, size: int, steps: int, repeats: int) -> None:
    from atelier.nodes.animate_anyone_nodes import ApplyAnimateAnyoneNode

    channels, context_dim = MODEL_WIDTHS[name]
    model = random_unet(comfy, channels, context_dim, seed=0)
    reference = random_unet(comfy, channels, context_dim, seed=1)
    g = torch.Generator().manual_seed(2)
    context = torch.randn(1, 1, context_dim, generator=g)
    positive, negative = [[context, {}]], [[torch.zeros_like(context), {}]]
    latent = torch.randn(1, 4, size // 8, size // 8, generator=g)
    encode_source(comfy, reference, latent, context)  # warm-up
    encodes = [encode_source(comfy, reference, latent, context)[1] for _ in range(repeats)]
    source, _ = encode_source(comfy, reference, latent, context)
    inputs = dict(model=model, source=source, pose_guider=loaded_guider(channels), target_pose=pose_frame(size), person=0,
                  reference_strength=1.0, pose_strength=1.0, start_percent=0.0, end_percent=1.0)
    patched = ApplyAnimateAnyoneNode.execute(**inputs).args[0]
    truepose = random_truepose(channels, context_dim)
    on_top = ApplyAnimateAnyoneNode.execute(**(inputs | {"source": parsed_source(source, size, truepose.config.clip_embed_dim)}),
                                            truepose=truepose, hpfa_strength=1.0, caa_strength=1.0).args[0]
    variants = {"plain": model, "animate_anyone": patched, "animate_anyone_hpfa_caa": on_top}
    for variant in variants.values():  # warm-up: load weights, first-call costs
        time_ksampler(comfy, variant, positive, negative, size, size, 1, CFG, "ddim", "simple")
    times: dict[str, list[float]] = {key: [] for key in variants}
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every variant alike
        for key, variant in variants.items():
            times[key].append(time_ksampler(comfy, variant, positive, negative, size, size, steps, CFG, "ddim", "simple"))
    median = {key: statistics.median(values) for key, values in times.items()}
    bank_mib = source.bank.nbytes / 2**20
    print(f"\n{name}: {size}x{size}, {steps} steps, cfg {CFG} (batch 2), {repeats} repeats, "
          f"device {comfy.model_management.get_torch_device()}")
    for key, values in times.items():
        print(f"  {key:<24} median {median[key]:7.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"  ratio animate_anyone / plain  {median['animate_anyone'] / median['plain']:.3f}")
    print(f"  ratio hpfa_caa / animate_anyone  {median['animate_anyone_hpfa_caa'] / median['animate_anyone']:.3f}")
    print(f"  one-off reference pass        median {statistics.median(encodes):7.2f} s "
          f"(= {statistics.median(encodes) / (median['plain'] / steps):.2f} plain steps); bank {bank_mib:.1f} MiB")


def main() -> None:
    args, comfy, names, plan = system_bench_setup(__doc__, "image side in pixels (latent = size / 8)", "the concat read")
    for name in names:
        steps, repeats = plan[name]
        started = time.perf_counter()
        bench_model(comfy, name, args.size, steps, repeats)
        print(f"  ({name} section took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
