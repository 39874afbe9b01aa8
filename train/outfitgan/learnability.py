"""What a toy-world colour rule makes learnable: ``python -m atelier.train.outfitgan.learnability``.

OutfitGAN completes an outfit from its upper garment, so what it can learn about the other items'
colours is bounded by how much the upper's colour tells about them. Measured per colour rule
(``toyworld.color_rules``: "accents", the first rule, and "palette", the default), on ``count``
sampled outfits:

- world's compatible share: the share of outfits the world labels compatible (drawn as ``ToyWorld``
  draws them);
- random-outfit pass rate: the share of outfits of four independently drawn garments that the whole
  rule accepts, and that its colour clause accepts (how selective the rule is);
- Bayes colour accuracy per slot: on compatible outfits, the accuracy of the best possible guess of the
  slot's main colour from the upper's main colour, sum over upper colours of the largest count over
  ``count`` (an in-sample estimate, slightly optimistic for small ``count``); beside it the share of
  the slot's most common colour (the best guess that ignores the upper);
- colour entropy per slot, H(slot colour), and what is left of it given the upper's colour,
  H(slot colour | upper colour), in bits (plug-in estimates; 17 palette colours allow at most 4.09);
- harmony: the share of compatible outfits whose main colours satisfy the palette clause, and the
  share that satisfy the accents clause (each rule's outfits read under both definitions);
- diversity: distinct colour combinations (main colour per slot) and distinct outfits (every field
  of every garment) among the compatible outfits.

With ``--judge-steps`` it also trains a judge CCM per rule (``judge``) and reports its held-out AUC.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter, defaultdict
from dataclasses import replace

import numpy as np

from ...models.errors import AtelierError
from ..command_line import make_parser, run_cli
from ..ablations.stats import mean_sd
from ..toyworld.color_rules import COLOR_RULES, OUTFIT_SLOTS, color_rule
from ..toyworld.garments import sample_garment
from ..toyworld.outfits import OutfitDesign, is_compatible, sample_outfit
from .data import RuleOutfits
from .judge import JudgeConfig, judge_aucs

TARGET_SLOTS: tuple[str, ...] = OUTFIT_SLOTS[1:]


class LearnabilityOptionError(AtelierError, ValueError):
    """An option of the learnability command is out of range; the message names the flag."""
OLD_RULE, NEW_RULE = "accents", "palette"


def compatible_designs(rule: str, count: int, seed: int = 0) -> list[OutfitDesign]:
    """``count`` compatible outfits under ``rule``, outfit i drawn from ``(seed, i)``."""
    return [sample_outfit(np.random.default_rng((seed, i)), True, rule) for i in range(count)]


def _color_counts(designs: list[OutfitDesign], slot: str) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for design in designs:
        counts[design.items["upper"].color.name][design.items[slot].color.name] += 1
    return counts


def _entropy_bits(counts: Counter) -> float:
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values() if c)


def bayes_accuracy(designs: list[OutfitDesign], slot: str) -> float:
    """Accuracy of the best guess of ``slot``'s main colour from the upper's main colour."""
    return sum(max(c.values()) for c in _color_counts(designs, slot).values()) / len(designs)


def majority_share(designs: list[OutfitDesign], slot: str) -> float:
    """Share of ``slot``'s most common main colour (the best guess without the upper)."""
    return Counter(d.items[slot].color.name for d in designs).most_common(1)[0][1] / len(designs)


def color_entropy(designs: list[OutfitDesign], slot: str) -> float:
    """H(slot colour) in bits."""
    return _entropy_bits(Counter(d.items[slot].color.name for d in designs))


def conditional_color_entropy(designs: list[OutfitDesign], slot: str) -> float:
    """H(slot colour | upper colour) in bits."""
    counts = _color_counts(designs, slot)
    return sum(sum(c.values()) / len(designs) * _entropy_bits(c) for c in counts.values())


def harmony_rate(designs: list[OutfitDesign], rule: str) -> float:
    """Share of outfits whose main colours satisfy colour clause ``rule``."""
    clause = color_rule(rule)
    return float(np.mean([not clause.violations({s: d.items[s].color for s in OUTFIT_SLOTS}) for d in designs]))


def random_pass_rates(rule: str, count: int, seed: int = 0) -> tuple[float, float]:
    """(whole rule, colour clause) acceptance of ``count`` outfits of independently drawn garments."""
    whole, colour = [], []
    for i in range(count):
        rng = np.random.default_rng((seed, i))
        items = {slot: sample_garment(rng, slot) for slot in OUTFIT_SLOTS}
        whole.append(is_compatible(items, rule))
        colour.append(not color_rule(rule).violations({slot: spec.color for slot, spec in items.items()}))
    return float(np.mean(whole)), float(np.mean(colour))


def labelled_share(rule: str, count: int, seed: int = 0) -> float:
    """Share of the world's outfits 0..count-1 (drawn under ``rule``) labelled compatible."""
    outfits = RuleOutfits(size=32, count=count, seed=seed, rule=rule)
    return float(np.mean([outfits.design(i).compatible for i in range(count)]))


def learnability(rule: str, count: int, seed: int = 0) -> dict[str, float]:
    """Every number of the module docstring for colour rule ``rule``, keyed as in ``ROWS``."""
    designs = compatible_designs(rule, count, seed)
    whole, colour = random_pass_rates(rule, count, seed + 1)
    result = {"labelled_share": labelled_share(rule, count, seed), "random_pass": whole, "random_color_pass": colour}
    for slot in TARGET_SLOTS:
        result[f"bayes_{slot}"] = bayes_accuracy(designs, slot)
        result[f"majority_{slot}"] = majority_share(designs, slot)
    for slot in TARGET_SLOTS:
        result[f"entropy_{slot}"] = color_entropy(designs, slot)
        result[f"entropy_given_upper_{slot}"] = conditional_color_entropy(designs, slot)
    result["harmony_palette"] = harmony_rate(designs, "palette")
    result["harmony_accents"] = harmony_rate(designs, "accents")
    result["distinct_color_combos"] = len({tuple(d.items[s].color.name for s in OUTFIT_SLOTS) for d in designs})
    result["distinct_outfits"] = len({tuple(d.items[s] for s in OUTFIT_SLOTS) for d in designs})
    return result


ROWS: tuple[tuple[str, str], ...] = (
    ("labelled_share", "world's compatible share (label)"),
    ("random_pass", "random-outfit pass rate, whole rule"),
    ("random_color_pass", "random-outfit pass rate, colour clause"),
    *((f"bayes_{s}", f"Bayes colour accuracy of {s} given upper colour") for s in TARGET_SLOTS),
    *((f"majority_{s}", f"most common {s} colour share (ignores upper)") for s in TARGET_SLOTS),
    *((f"entropy_{s}", f"H({s} colour), bits") for s in TARGET_SLOTS),
    *((f"entropy_given_upper_{s}", f"H({s} colour given upper colour), bits") for s in TARGET_SLOTS),
    ("harmony_palette", "harmony: share meeting the palette clause"),
    ("harmony_accents", "harmony: share meeting the accents clause"),
    ("distinct_color_combos", "distinct colour combinations"),
    ("distinct_outfits", "distinct outfits"),
    ("judge_auc", "judge CCM AUC, held-out (mean ± sd over seeds)"),
    ("judge_auc_color", "judge CCM AUC, compatible vs colour-only breaks"),
)


def judge_columns(rule: str, config: JudgeConfig, seeds: list[int]) -> dict[str, str]:
    """The judge rows for ``rule``: AUC over all held-out outfits and against colour-only breaks."""
    results = judge_aucs(replace(config, rule=rule), seeds)

    def spread(values: list[float]) -> str:
        mean, sd = mean_sd(values)
        return f"{mean:.3f}{f' ± {sd:.3f}' if len(values) > 1 else ''} (n={len(values)})"

    colour = [r.auc_by_clause["color"] for r in results if "color" in r.auc_by_clause]
    return {"judge_auc": spread([r.auc for r in results]), "judge_auc_color": spread(colour) if colour else "n/a"}


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(columns: dict[str, dict[str, object]]) -> str:
    """One row per measured quantity (``ROWS`` order), one column per rule."""
    lines = ["| quantity | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for key, label in ROWS:
        if any(key in column for column in columns.values()):
            lines.append(f"| {label} | " + " | ".join(_cell(column.get(key, "")) for column in columns.values()) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = make_parser("python -m atelier.train.outfitgan.learnability", __doc__)
    p.add_argument("--outfits", type=int, default=20000, help="outfits sampled per rule and measurement")
    p.add_argument("--seed", type=int, default=0, help="outfit draw seed")
    p.add_argument("--rules", nargs="+", choices=tuple(COLOR_RULES), default=[OLD_RULE, NEW_RULE],
                   help="colour rules to compare")
    p.add_argument("--judge-steps", type=int, default=0,
                   help="also train a judge CCM per rule for this many steps (0: no judge)")
    p.add_argument("--judge-seeds", type=int, nargs="+", default=[0], help="judge training seeds")
    p.add_argument("--judge-train-outfits", type=int, default=JudgeConfig.train_outfits, help="judge training outfits")
    p.add_argument("--judge-test-outfits", type=int, default=JudgeConfig.test_outfits, help="judge held-out outfits")
    p.add_argument("--judge-size", type=int, default=JudgeConfig.size, help="judge item side in pixels")
    p.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = p.parse_args(argv)
    if args.outfits < 1 or args.judge_steps < 0:
        raise LearnabilityOptionError("--outfits must be >= 1 and --judge-steps >= 0")
    return args


def run(args: argparse.Namespace) -> None:
    """Measure each rule and print the table (or JSON)."""
    judge = JudgeConfig(steps=args.judge_steps, train_outfits=args.judge_train_outfits,
                        test_outfits=args.judge_test_outfits, size=args.judge_size)
    columns: dict[str, dict[str, object]] = {}
    for rule in args.rules:
        column: dict[str, object] = learnability(rule, args.outfits, args.seed)
        if args.judge_steps:
            column.update(judge_columns(rule, judge, args.judge_seeds))
        columns[f"{rule} ({'old' if rule == OLD_RULE else 'new'})"] = column
    print(json.dumps(columns, indent=2) if args.json else markdown_table(columns))


def main(argv: list[str] | None = None) -> None:
    """Entry point; a user error is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
