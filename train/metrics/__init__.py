"""Metrics on the toy fashion world that every system reuses.

Input conventions (``inputs`` module): images are numpy (H, W, 3) RGB, uint8 or float in [0, 1],
or torch (3, H, W) float in [0, 1]; masks (H, W) bool; colours sRGB triples in 0..255.

- colour: ``mean_color_error`` (region means against a reference picture: the colour as drawn),
  ``region_color_error`` (region median against a named colour), ``color_fidelity``,
  ``color_leakage`` (delta E in Lab);
- pattern: ``pattern_signature``, ``pattern_fidelity``;
- similarity to ground truth: ``psnr``, ``ssim`` (Gaussian 11 / 1.5, standard constants);
- knowledge-graph triples: ``triple_scores``, ``corpus_triple_scores``;
- outfits: ``compatibility_accuracy``, ``compatibility_auc``.
"""

from .color import color_fidelity, color_leakage, mean_color_error, region_color_error, region_mean_lab
from .compatibility import compatibility_accuracy, compatibility_auc
from .inputs import MetricInputError, as_image, delta_e, srgb_to_lab
from .pattern import pattern_fidelity, pattern_signature
from .similarity import psnr, ssim, ssim_map
from .triples import TripleScores, corpus_triple_scores, normalize_triple, triple_scores

__all__ = [
    "MetricInputError", "TripleScores", "as_image", "color_fidelity", "color_leakage",
    "compatibility_accuracy", "compatibility_auc", "corpus_triple_scores", "delta_e", "mean_color_error",
    "normalize_triple", "pattern_fidelity", "pattern_signature", "psnr", "region_color_error",
    "region_mean_lab",
    "srgb_to_lab", "ssim", "ssim_map", "triple_scores",
]
