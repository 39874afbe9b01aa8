"""Scoring completed outfits for the OutfitGAN ablation, and the instrument gate that checks the scores.

Held-out compatible toy-world outfits (palette colour rule) are completed from the upper garment O_k and
the true target masks. Per generated item (bag, lower, shoes) the colour is read back
(``outfitgan.colors.dominant_color``) and scored:

- ``color_match``: the read colour equals the true outfit's colour of that slot;
- ``rule_allowed``: the read colour is one the palette rule allows next to the upper's colour
  (``palette_allowed``); ``rule_outfit``: all three are (the outfit meets the colour clause);
- ``judge``: the mean compatibility probability a judge CCM, trained apart, gives the completed outfit;
- ``entropy``: colour diversity, the entropy (bits) of the read colours per slot, averaged over slots;
- ``ssim`` / ``l1``: image fidelity to the true item (the paper's SSIM; L1 on [0, 1] pixels).

The gate scores the true items as if generated, and random items (each slot taken from another held-out
outfit), and passes when every score ranks the truth above the random outfits.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from ...models.outfitgan.ccm import assemble_outfit
from ...models.outfitgan.config import OUTFIT_ORDER
from ..metrics import compatibility_auc, ssim
from ..outfitgan.colors import dominant_color
from ..outfitgan.evaluate import ccm_mean, complete, held_out, outfit_tensors
from ..outfitgan.judge import judge_scores
from ..toyworld import ToyWorld, ToyWorldConfig
from ..toyworld.color_rules import palette_allowed

SOURCE_SLOT = "upper"
TARGET_SLOTS: tuple[str, ...] = tuple(s for s in OUTFIT_ORDER if s != SOURCE_SLOT)
GATE_MARGIN = 0.2  # the colour scores must rank the truth above random outfits by at least this much
HIGHER_IS_BETTER = {"color_match": True, "rule_allowed": True, "rule_outfit": True, "judge": True,
                    "ssim": True, "l1": False}


@dataclass(frozen=True)
class HeldOutOutfits:
    """Held-out compatible outfits (world objects), their items (B, N, 3, S, S) and masks (B, N, 1, S, S)
    in OUTFIT_ORDER, and the incompatible outfits' items (for the judge's AUC)."""

    outfits: list
    items: torch.Tensor
    masks: torch.Tensor
    incompatible_items: torch.Tensor


def held_out_outfits(size: int, start: int, count: int, world_seed: int) -> HeldOutOutfits:
    """Outfits ``start .. start + count - 1`` of the generator's world, split by the world's label."""
    world = ToyWorld(ToyWorldConfig(height=size, width=size, seed=world_seed, num_outfits=start + count))
    compatible, incompatible = held_out(world, start, count)
    items, masks = outfit_tensors(compatible)
    return HeldOutOutfits(compatible, items, masks, outfit_tensors(incompatible)[0])


def _image(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).clamp(0, 1).numpy()  # (S, S, 3)


def _entropy_bits(names: list[str]) -> float:
    counts = Counter(names)
    return -sum(c / len(names) * math.log2(c / len(names)) for c in counts.values())


def score_items(data: HeldOutOutfits, items: dict[str, torch.Tensor], judge) -> dict[str, float]:
    """Every score of the module docstring for target items by slot (B, 3, S, S) completing ``data``."""
    index = {slot: OUTFIT_ORDER.index(slot) for slot in OUTFIT_ORDER}
    count = len(data.outfits)
    read = [{s: dominant_color(_image(items[s][i]), data.masks[i, index[s], 0].numpy() > 0.5) for s in TARGET_SLOTS}
            for i in range(count)]
    truth = [{s: o.items[s].spec.color for s in OUTFIT_ORDER} for o in data.outfits]
    allowed = [[read[i][s] in palette_allowed(truth[i][SOURCE_SLOT], s) for s in TARGET_SLOTS] for i in range(count)]
    outfit = assemble_outfit({SOURCE_SLOT: data.items[:, index[SOURCE_SLOT]], **items})  # (B, N, 3, S, S)
    return {
        "color_match": float(np.mean([read[i][s] == truth[i][s] for i in range(count) for s in TARGET_SLOTS])),
        "rule_allowed": float(np.mean(allowed)),
        "rule_outfit": float(np.mean([all(row) for row in allowed])),
        "judge": ccm_mean(judge, outfit),
        "entropy": float(np.mean([_entropy_bits([read[i][s].name for i in range(count)]) for s in TARGET_SLOTS])),
        "ssim": float(np.mean([ssim(_image(items[s][i]), _image(data.items[i, index[s]]))
                               for i in range(count) for s in TARGET_SLOTS])),
        "l1": float(np.mean([float((items[s] - data.items[:, index[s]]).abs().mean()) for s in TARGET_SLOTS])),
    }


def evaluate_generator(generator, data: HeldOutOutfits, judge) -> dict[str, float]:
    """Complete every held-out outfit from its upper garment and score the generated items."""
    generator.eval()
    return score_items(data, complete(generator, data.items, data.masks), judge)


def true_items(data: HeldOutOutfits) -> dict[str, torch.Tensor]:
    """The held-out outfits' own target items, as if a generator had made them."""
    return {s: data.items[:, OUTFIT_ORDER.index(s)] for s in TARGET_SLOTS}


def random_items(data: HeldOutOutfits, seed: int) -> dict[str, torch.Tensor]:
    """Each slot's item from another held-out outfit, drawn per slot from ``seed``."""
    rng = np.random.default_rng(seed)
    count = len(data.outfits)
    items = {}
    for slot in TARGET_SLOTS:
        others = [(i + int(rng.integers(1, count))) % count for i in range(count)]
        items[slot] = data.items[others, OUTFIT_ORDER.index(slot)]
    return items


def judge_auc(judge, data: HeldOutOutfits) -> float:
    """ROC AUC of the judge on the held-out compatible vs incompatible outfits."""
    scores = torch.cat([judge_scores(judge, data.items), judge_scores(judge, data.incompatible_items)])
    labels = [True] * len(data.items) + [False] * len(data.incompatible_items)
    return compatibility_auc(scores.tolist(), labels)


def instrument_gate(data: HeldOutOutfits, judge, seed: int = 0) -> dict[str, dict[str, float]]:
    """The scores of the true items and of random items from other held-out outfits."""
    with torch.no_grad():
        return {"true outfits": score_items(data, true_items(data), judge),
                "random outfits": score_items(data, random_items(data, seed), judge)}


def gate_failures(gate: dict[str, dict[str, float]]) -> list[str]:
    """The scores that fail to rank the truth above random outfits (empty: the gate passes)."""
    truth, random = gate["true outfits"], gate["random outfits"]
    failed = []
    for key, higher in HIGHER_IS_BETTER.items():
        lead = truth[key] - random[key] if higher else random[key] - truth[key]
        needed = GATE_MARGIN if key.startswith(("color", "rule")) else 0.0
        if not lead > needed:
            failed.append(f"{key} (truth leads by {lead:.3f}, needs > {needed})")
    return failed
