"""Mean ± sd over seeds, the verdict of a comparison, and markdown tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def format_mean_sd(values: Sequence[float], digits: int = 3) -> str:
    """``"m ± s"``, or ``"–"`` without values."""
    if len(values) == 0:
        return "–"
    mean, sd = mean_sd(values)
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def separated(first: Sequence[float], second: Sequence[float]) -> bool:
    """Whether the two means differ by more than the larger of the two seed spreads (sd)."""
    (m1, s1), (m2, s2) = mean_sd(first), mean_sd(second)
    return abs(m1 - m2) > max(s1, s2)


def verdict(better: Sequence[float], worse: Sequence[float], higher_is_better: bool) -> str:
    """How a claim "``better`` beats ``worse``" fares: reproduced, contradicted (the other way beyond
    the spread) or unresolved (within the spread)."""
    if len(better) < 2 or len(worse) < 2:
        return "unresolved (fewer than 2 seeds)"
    if not separated(better, worse):
        return "unresolved (within the spread)"
    ahead = mean_sd(better)[0] > mean_sd(worse)[0]
    return "reproduced" if ahead == higher_is_better else "contradicted"


def score_table(corner: str, rows: Mapping[str, Mapping[str, float]], keys: Sequence[str],
                headers: Sequence[str] | None = None) -> str:
    """One score per cell (row label -> metric -> value) as a markdown table: ``corner`` heads the
    label column, ``headers`` (default: the keys) the metric columns; 3 decimals, "–" where a row has
    no such metric (the instrument gates' tables)."""
    lines = [f"| {corner} | " + " | ".join(headers or keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {label} | " + " | ".join(f"{metrics[k]:.3f}" if k in metrics else "–" for k in keys) + " |"
              for label, metrics in rows.items()]
    return "\n".join(lines)


def markdown_table(rows: Mapping[str, Mapping[str, Sequence[float]]], columns: Sequence[tuple[str, str]],
                   digits: int = 3) -> str:
    """Rows (label -> metric -> per-seed values) as a markdown table; ``columns`` is
    (metric key, header) in order."""
    lines = ["| variant | seeds | " + " | ".join(header for _, header in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for label, metrics in rows.items():
        seeds = max((len(v) for v in metrics.values()), default=0)
        cells = [format_mean_sd(metrics.get(key, []), digits) for key, _ in columns]
        lines.append(f"| {label} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# (label, variant that should win, variant it beats, metric, higher is better)
Claim = tuple[str, str, str, str, bool]


def claim_lines(rows: Mapping[str, Mapping[str, Sequence[float]]], claims: Sequence[Claim]) -> list[str]:
    """One markdown line with its verdict per claim whose two variants ran."""
    return [f"- {label}: {verdict(rows[better].get(metric, []), rows[worse].get(metric, []), higher)}"
            for label, better, worse, metric, higher in claims if better in rows and worse in rows]
