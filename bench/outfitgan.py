"""Benchmark: OutfitGAN outfits per second (one source item -> bag, lower, shoes), measured in one run.

    python bench/outfitgan.py --size 256 --batch 1 4 --repeats 3

Random weights (speed does not depend on training). Uses a GPU when torch sees one (``--device``
overrides). Prints one line per variant: per-item generators with the SAM (the paper), without the
SAM (ablation), and one shared generator; plus the CCM alone.
"""

from __future__ import annotations

import time

import torch

from atelier.train.command_line import make_parser
from atelier.models.outfitgan import CollocationClassifier, OutfitGANConfig, OutfitGenerator, default_silhouette

VARIANTS = {
    "per-item + SAM (paper)": {},
    "per-item, no SAM": {"use_sam": False},
    "shared + SAM": {"shared_generator": True},
}


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = make_parser("python bench/outfitgan.py", __doc__)
    parser.add_argument("--size", type=int, default=256, help="item side")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="outfits per call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (after one warm-up)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"OutfitGAN benchmark at {args.size}x{args.size} on {name}, torch {torch.__version__}")
    torch.manual_seed(0)
    with torch.inference_mode():
        for label, overrides in VARIANTS.items():
            config = OutfitGANConfig(image_size=args.size, **overrides)
            generator = OutfitGenerator(config).to(device).eval()
            params = sum(p.numel() for p in generator.parameters()) / 1e6
            for batch in args.batch:
                source = torch.rand(batch, 3, args.size, args.size, device=device)
                masks = {s: default_silhouette(s, args.size)[None].expand(batch, -1, -1, -1).to(device) for s in config.target_slots}
                seconds = _time(lambda g=generator, x=source, m=masks: g(x, m), args.repeats, device)
                print(f"{label:24s} {params:6.2f} M params  batch {batch}: {seconds * 1000:8.1f} ms/call  "
                      f"{batch / seconds:7.2f} outfits/s")
        ccm = CollocationClassifier(OutfitGANConfig(image_size=args.size)).to(device).eval()
        outfit = torch.rand(max(args.batch), 4, 3, args.size, args.size, device=device)
        seconds = _time(lambda: ccm(outfit), args.repeats, device)
        print(f"{'CCM score':24s} batch {len(outfit)}: {seconds * 1000:8.1f} ms/call  {len(outfit) / seconds:7.2f} outfits/s")


if __name__ == "__main__":
    main()
