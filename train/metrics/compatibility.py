"""Outfit compatibility: accuracy of yes/no predictions and ROC AUC of scores (Polyvore style)."""

from collections.abc import Sequence

import numpy as np

from .inputs import MetricInputError


def _labels(labels: Sequence[bool], count: int, name: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != count:
        raise MetricInputError(f"{name}: expected {count} values in a flat list, got shape {array.shape}")
    return array.astype(bool)


def compatibility_accuracy(predicted: Sequence[bool], labels: Sequence[bool]) -> float:
    """Fraction of outfits whose predicted compatible/incompatible verdict equals the label."""
    if len(labels) == 0:
        raise MetricInputError("labels: no outfits to score")
    truth = _labels(labels, len(labels), "labels")
    guess = _labels(predicted, len(labels), "predicted")
    return float((guess == truth).mean())


def compatibility_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """ROC AUC of compatibility scores (higher = more compatible): the probability that a random
    compatible outfit scores above a random incompatible one, ties counting one half."""
    truth = _labels(labels, len(labels), "labels")
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != truth.shape:
        raise MetricInputError(f"scores: expected {truth.shape[0]} values, got shape {values.shape}")
    positives, negatives = values[truth], values[~truth]
    if len(positives) == 0 or len(negatives) == 0:
        raise MetricInputError("labels: AUC needs at least one compatible and one incompatible outfit")
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positives) * len(negatives)))
