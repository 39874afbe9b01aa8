"""Toy-world evidence for OutfitGAN: ``python -m atelier.train.outfitgan.evaluate``.

For held-out compatible toy-world outfits (indices ``--start`` .. ``--start + --count - 1``, never
seen in training), each model completes the outfit from the upper garment and the ground-truth
target masks. Measured:

- SSIM of each generated item against the ground-truth item (``train.metrics.ssim``);
- colour accuracy: the generated item's dominant colour (``colors.dominant_color``) equals the
  ground-truth item's colour;
- neutral share: how many generated items read back as a neutral colour (neutrals go with
  anything, so a generator that paints everything grey passes the colour clause);
- world rule: the outfit's ground-truth specs with each generated item's colour replaced by the
  colour read back, checked by ``toyworld.is_compatible`` (formality and pattern cannot be read
  back from pixels and stay as in the ground truth, so in effect this checks the colour clause);
- CCM: the mean compatibility probability a *judge* CCM gives the generated outfits (the judge is
  trained separately, on another world seed, so the generator was never optimised against it:
  ``python -m atelier.train.outfitgan.judge --out out`` writes ``out/judge.safetensors``), and the model's own CCM
  (which it was trained against).

References computed the same way: the ground-truth items (readback accuracy; rule must hold), a
random-colour baseline (each target item takes the read-back colour of the same item of another
held-out outfit), and the judge's scores on held-out compatible vs incompatible outfits (AUC).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...models.outfitgan.ccm import assemble_outfit
from ...models.outfitgan.config import OUTFIT_ORDER
from ...models.weights import load_weight_file
from ..command_line import add_out_option, add_threads_option, make_parser, output_file, run_cli, start_cli
from ..metrics import compatibility_auc, ssim
from ..toyworld import ToyWorld, ToyWorldConfig, is_compatible
from .colors import dominant_color

BATCH = 16
REPORT_FILE = "evaluation.json"
GRID_FOLDER = "grid"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = make_parser("python -m atelier.train.outfitgan.evaluate", __doc__)
    p.add_argument("--weights", nargs="+", required=True, help="OutfitGAN weight files to evaluate (name=path or path)")
    p.add_argument("--judge", required=True, help="OutfitGAN weight file whose CCM judges compatibility, trained apart "
                   "(python -m atelier.train.outfitgan.judge --out out writes out/judge.safetensors)")
    p.add_argument("--start", type=int, default=3000, help="first held-out outfit index")
    p.add_argument("--count", type=int, default=400, help="held-out outfits drawn (compatible ones are completed)")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed the models were trained on")
    add_threads_option(p)
    add_out_option(p, f"a PNG grid per model in {GRID_FOLDER}/ (source | generated | ground truth) and the "
                      f"numbers as {REPORT_FILE}", required=False)
    p.add_argument("--grid", default=None, help=argparse.SUPPRESS)  # the former grid-folder flag, still read
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)  # the former numbers-file flag, still read
    args = p.parse_args(argv)
    if args.out is not None:
        args.grid = args.grid or str(Path(args.out) / GRID_FOLDER)
        args.json = args.json or str(output_file(args.out, REPORT_FILE))
    return args


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.float32) / 255.0).permute(2, 0, 1)  # (3, S, S)


def held_out(world: ToyWorld, start: int, count: int) -> tuple[list, list]:
    """(compatible outfits, incompatible outfits) among indices start .. start + count - 1."""
    outfits = [world.outfit(i) for i in range(start, start + count)]
    return [o for o in outfits if o.compatible], [o for o in outfits if not o.compatible]


def outfit_tensors(outfits: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Items (B, N, 3, S, S) in [0, 1] and masks (B, N, 1, S, S) in OUTFIT_ORDER."""
    items = torch.stack([torch.stack([_tensor(o.items[s].shop_image) for s in OUTFIT_ORDER]) for o in outfits])
    masks = torch.stack([torch.stack([torch.from_numpy(o.items[s].shop_mask.astype(np.float32))[None] for s in OUTFIT_ORDER]) for o in outfits])
    return items, masks


@torch.no_grad()
def complete(generator, items: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Generated items by slot (B, 3, S, S) from the source item and ground-truth target masks."""
    config = generator.config
    results: dict[str, list[torch.Tensor]] = {slot: [] for slot in config.target_slots}
    for first in range(0, len(items), BATCH):
        chunk, chunk_masks = items[first:first + BATCH], masks[first:first + BATCH]
        source = chunk[:, OUTFIT_ORDER.index(config.source_slot)]
        fakes = generator(source, {s: chunk_masks[:, OUTFIT_ORDER.index(s)] for s in config.target_slots})
        for slot, image in fakes.items():
            results[slot].append(image)
    return {slot: torch.cat(parts) for slot, parts in results.items()}


def _image(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).clamp(0, 1).numpy()  # (S, S, 3)


def rule_rate(outfits: list, colors: list[dict[str, object]]) -> float:
    """Share of outfits compatible under the world rule with the given colours per slot."""
    verdicts = [is_compatible({s: replace(o.items[s].spec, color=c.get(s, o.items[s].spec.color)) for s in OUTFIT_ORDER})
                for o, c in zip(outfits, colors, strict=True)]
    return float(np.mean(verdicts))


@torch.no_grad()
def ccm_mean(ccm, outfit: torch.Tensor) -> float:
    return float(torch.cat([ccm.score(outfit[i:i + BATCH]) for i in range(0, len(outfit), BATCH)]).mean())


def evaluate_model(path: str, outfits: list, items: torch.Tensor, masks: torch.Tensor, judge, grid: Path | None, name: str) -> dict:
    """Every number for one weight file."""
    loaded = load_weight_file(path, expected_system="outfitgan", needed_by="--weights")
    generator, own_ccm = loaded.modules["generator"].eval(), loaded.modules["ccm"].eval()
    fakes = complete(generator, items, masks)
    slots = generator.config.target_slots
    ssims = {s: float(np.mean([ssim(_image(fakes[s][i]), _image(items[i, OUTFIT_ORDER.index(s)])) for i in range(len(outfits))])) for s in slots}
    read = [{s: dominant_color(_image(fakes[s][i]), masks[i, OUTFIT_ORDER.index(s), 0].numpy() > 0.5) for s in slots} for i in range(len(outfits))]
    color_acc = {s: float(np.mean([read[i][s] == o.items[s].spec.color for i, o in enumerate(outfits)])) for s in slots}
    source_slot = generator.config.source_slot
    generated_outfit = assemble_outfit({source_slot: items[:, OUTFIT_ORDER.index(source_slot)], **fakes})
    if grid is not None:
        rows = [np.concatenate([_image(items[i, OUTFIT_ORDER.index(source_slot)])] + [_image(fakes[s][i]) for s in slots]
                               + [_image(items[i, OUTFIT_ORDER.index(s)]) for s in slots], axis=1) for i in range(min(8, len(outfits)))]
        grid.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.concatenate(rows) * 255).round().astype(np.uint8)).save(grid / f"{name}.png")
    return {
        "ssim": ssims, "ssim_mean": float(np.mean(list(ssims.values()))),
        "color_accuracy": color_acc, "color_accuracy_mean": float(np.mean(list(color_acc.values()))),
        "rule_compatible": rule_rate(outfits, read),
        "neutral_share": float(np.mean([read[i][s].neutral for i in range(len(outfits)) for s in slots])),
        "judge_ccm": ccm_mean(judge, generated_outfit), "own_ccm": ccm_mean(own_ccm, generated_outfit),
        "config": loaded.config,
    }


def references(outfits: list, incompatible: list, items: torch.Tensor, masks: torch.Tensor, judge, seed: int) -> dict:
    """Ground truth through the same measurements, a random-colour baseline and the judge's AUC."""
    slots = [s for s in OUTFIT_ORDER if s != "upper"]
    read = [{s: dominant_color(_image(items[i, OUTFIT_ORDER.index(s)]), masks[i, OUTFIT_ORDER.index(s), 0].numpy() > 0.5)
             for s in OUTFIT_ORDER} for i in range(len(outfits))]
    readback = float(np.mean([read[i][s] == o.items[s].spec.color for i, o in enumerate(outfits) for s in OUTFIT_ORDER]))
    rng = np.random.default_rng(seed)
    others = [int((i + rng.integers(1, len(outfits))) % len(outfits)) for i in range(len(outfits))]
    random_colors = [{s: read[j][s] for s in slots} for j in others]
    bad_items, _ = outfit_tensors(incompatible)
    compatible_scores = torch.cat([judge.score(items[i:i + BATCH]) for i in range(0, len(items), BATCH)])
    incompatible_scores = torch.cat([judge.score(bad_items[i:i + BATCH]) for i in range(0, len(bad_items), BATCH)])
    shuffled = items.clone()
    for slot in slots:
        shuffled[:, OUTFIT_ORDER.index(slot)] = items[others, OUTFIT_ORDER.index(slot)]
    return {
        "outfits": len(outfits), "incompatible_outfits": len(incompatible),
        "readback_accuracy_ground_truth": readback,
        "rule_compatible_ground_truth_readback": rule_rate(outfits, read),
        "rule_compatible_random_colors": rule_rate(outfits, random_colors),
        "neutral_share_ground_truth": float(np.mean([o.items[s].spec.color.neutral for o in outfits for s in slots])),
        "judge_ccm_ground_truth": float(compatible_scores.mean()),
        "judge_ccm_incompatible": float(incompatible_scores.mean()),
        "judge_ccm_shuffled_items": ccm_mean(judge, shuffled),
        "judge_auc": compatibility_auc(torch.cat([compatible_scores, incompatible_scores]).tolist(),
                                       [True] * len(compatible_scores) + [False] * len(incompatible_scores)),
    }


def run(args: argparse.Namespace) -> None:
    """Evaluate every model and print (and write) the numbers as JSON."""
    start_cli(args)
    named = [entry.split("=", 1) if "=" in entry else (Path(entry).stem, entry) for entry in args.weights]
    judge = load_weight_file(args.judge, expected_system="outfitgan", needed_by="--judge").modules["ccm"].eval()
    size = load_weight_file(named[0][1], expected_system="outfitgan", needed_by="--weights").config["image_size"]
    world = ToyWorld(ToyWorldConfig(height=size, width=size, seed=args.world_seed, num_outfits=args.start + args.count))
    outfits, incompatible = held_out(world, args.start, args.count)
    items, masks = outfit_tensors(outfits)
    with torch.no_grad():
        report = {"references": references(outfits, incompatible, items, masks, judge, args.world_seed)}
        grid = Path(args.grid) if args.grid else None
        for name, path in named:
            report[name] = evaluate_model(path, outfits, items, masks, judge, grid, name)
    text = json.dumps(report, indent=2, default=str)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> None:
    """Entry point; a user error is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
