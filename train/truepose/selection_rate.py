"""How often TruePose's target-oriented parsing selection M (§4.2) leaves part of the source person out.

M = ∪ {M_a | a ∈ A_τ} unites the source parsing regions of the categories the target pose shows
(``models.truepose.parsing_selection.selected_source_mask``). HPFA (eq. 6) only has something to select
when M is smaller than the person, i.e. when the target hides body parts. The person is every
non-background pixel of the source's LIP map (a bag is LIP background and counts as neither).

``python -m atelier.train.truepose.selection_rate --pairs 200 --size 96x64`` prints one JSON line:
the pairs measured, how many select less than the whole person (``partial``, ``rate``), the mean
fraction of the person's pixels left out of M, and the same counts per target view.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ...models.parsing import LIP
from ...models.truepose.parsing_selection import selected_source_mask
from ..command_line import OptionError, make_parser, run_cli
from .data import DEFAULT_HIDDEN_PART_FRACTION, ToyPosePairs, parse_size


class SelectionRateOptionError(OptionError):
    """A command-line option of the selection-rate report is out of range; the message names the flag."""


@dataclass
class SelectionRate:
    """How often M selects less than the whole source person.

    Attributes:
        pairs: pose pairs measured.
        partial: pairs whose M leaves out at least one pixel of the source person.
        mean_excluded: mean over pairs of the fraction of the person's pixels outside M.
        by_view: target view -> [pairs, partial].
    """

    pairs: int = 0
    partial: int = 0
    mean_excluded: float = 0.0
    by_view: dict[str, list[int]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """partial / pairs."""
        return self.partial / self.pairs if self.pairs else 0.0


def excluded_fraction(parsing: np.ndarray, selected: np.ndarray) -> float:
    """The fraction of the person's pixels (parsing (H, W) > 0) that M (H, W) bool leaves out."""
    person = parsing > 0
    return float((person & ~selected).sum() / max(int(person.sum()), 1))


def selection_rate(dataset: ToyPosePairs, count: int | None = None) -> SelectionRate:
    """M against the source person on the first ``count`` pairs of ``dataset`` (all when None)."""
    report = SelectionRate()
    excluded = []
    for position in range(len(dataset) if count is None else min(count, len(dataset))):
        pair = dataset.pair(position)
        parsing = pair.source.parsing
        selected = selected_source_mask(parsing, LIP, dataset.target_pose(pair, position))
        excluded.append(excluded_fraction(parsing, selected))
        partial = excluded[-1] > 0.0
        counts = report.by_view.setdefault(pair.target.view, [0, 0])
        counts[0] += 1
        counts[1] += int(partial)
        report.pairs += 1
        report.partial += int(partial)
    report.mean_excluded = float(np.mean(excluded)) if excluded else 0.0
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of the report command."""
    p = make_parser("python -m atelier.train.truepose.selection_rate", __doc__)
    p.add_argument("--pairs", type=int, default=200, help="toy-world pose pairs 0..N-1 to measure")
    p.add_argument("--size", type=parse_size, default=(96, 64), help="HxW picture size, multiples of 8")
    p.add_argument("--world-seed", type=int, default=0, help="toy-world seed")
    p.add_argument("--hidden-part-fraction", type=float, default=DEFAULT_HIDDEN_PART_FRACTION,
                   help="probability that a target is drawn in a view that hides body parts")
    args = p.parse_args(argv)
    if args.pairs < 1:
        raise SelectionRateOptionError(f"--pairs must be >= 1, got {args.pairs}")
    if not 0.0 <= args.hidden_part_fraction <= 1.0:
        raise SelectionRateOptionError(f"--hidden-part-fraction must lie in [0, 1], got {args.hidden_part_fraction}")
    return args


def run(args: argparse.Namespace) -> dict:
    """Print the report as one JSON line; returns it."""
    dataset = ToyPosePairs(args.size, 0, args.pairs, args.world_seed, args.hidden_part_fraction)
    report = selection_rate(dataset)
    line = {"hidden_part_fraction": args.hidden_part_fraction, **asdict(report), "rate": report.rate}
    print(json.dumps(line))
    return line


def main(argv: Sequence[str] | None = None) -> dict:
    """Entry point; a user error is one line (--debug: the traceback)."""
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
