"""Precision, recall and F1 of predicted (entity, relation, value) triples against ground truth.

Matching is exact after normalisation: lower case, hyphens and underscores read as spaces,
runs of white space collapsed, ends stripped ("Has-Color" == "has color", "straight-point" ==
"straight point"). Duplicates count once (triples are compared as sets).
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .inputs import MetricInputError

Triple = tuple[str, str, str]


@dataclass(frozen=True)
class TripleScores:
    """Set-matching scores.

    Args:
        precision: matched / predicted (1.0 when nothing was predicted and nothing expected,
            0.0 when nothing was predicted but something was expected).
        recall: matched / expected (same conventions with the roles swapped).
        f1: harmonic mean of precision and recall (0.0 when both are 0).
        matched: number of triples in both sets.
        predicted: number of distinct predicted triples.
        expected: number of distinct ground-truth triples.
    """

    precision: float
    recall: float
    f1: float
    matched: int
    predicted: int
    expected: int


def normalize_text(text: str) -> str:
    """Lower case, '-' and '_' as spaces, single spaces, stripped."""
    return re.sub(r"\s+", " ", re.sub(r"[-_]", " ", str(text).lower())).strip()


def normalize_triple(triple: Sequence[str]) -> Triple:
    """Normalise each field of one triple; raises MetricInputError unless it has three fields."""
    if len(triple) != 3:
        raise MetricInputError(f"triple {tuple(triple)!r} must have exactly three fields (entity, relation, value)")
    entity, relation, value = (normalize_text(field) for field in triple)
    return entity, relation, value


def _scores(matched: int, predicted: int, expected: int) -> TripleScores:
    precision = matched / predicted if predicted else (1.0 if expected == 0 else 0.0)
    recall = matched / expected if expected else (1.0 if predicted == 0 else 0.0)
    f1 = 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return TripleScores(precision, recall, f1, matched, predicted, expected)


def triple_scores(predicted: Iterable[Sequence[str]], expected: Iterable[Sequence[str]]) -> TripleScores:
    """Scores of one prediction against one ground truth."""
    predicted_set = {normalize_triple(triple) for triple in predicted}
    expected_set = {normalize_triple(triple) for triple in expected}
    return _scores(len(predicted_set & expected_set), len(predicted_set), len(expected_set))


def corpus_triple_scores(
    predicted: Sequence[Iterable[Sequence[str]]], expected: Sequence[Iterable[Sequence[str]]],
) -> TripleScores:
    """Micro-averaged scores over many samples (matches and counts summed before dividing)."""
    if len(predicted) != len(expected):
        raise MetricInputError(f"predicted has {len(predicted)} samples but expected has {len(expected)}")
    matched = predicted_count = expected_count = 0
    for sample_predicted, sample_expected in zip(predicted, expected):
        scores = triple_scores(sample_predicted, sample_expected)
        matched += scores.matched
        predicted_count += scores.predicted
        expected_count += scores.expected
    return _scores(matched, predicted_count, expected_count)
