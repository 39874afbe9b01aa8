"""Read attribute binding back from pictures of the binding world: inside each part's mask (eroded,
so a blurred outline does not count), the MEAN colour is named by the nearest colour of the world's
palette (the median would land on a pattern or an edge at toy sizes), and compared with the colour
the prompt gave that part.

- binding accuracy: the share of parts whose colour is the prompt's colour for that part;
- swap rate: the share of parts whose colour is the prompt's colour for the OTHER part (attribute
  confusion; chance is 1 / number of colours, like the accuracy's);
- both right: the share of pictures whose two parts are both right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .binding_world import RGB_BY_NAME, BindingSample

SCORE_KEYS = ("binding_accuracy", "swap_rate", "both_right", "accuracy_body", "accuracy_part")


def erode(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` (S, S) bool shrunk by ``pixels`` (4-neighbour erosion); never emptied: if erosion
    would remove every pixel, the last non-empty mask is kept."""
    current = mask.copy()
    for _ in range(pixels):
        padded = np.pad(current, 1, constant_values=False)  # (S+2, S+2)
        shrunk = (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
                  & padded[1:-1, :-2] & padded[1:-1, 2:])  # (S, S)
        if not shrunk.any():
            break
        current = shrunk
    return current


def nearest_colour(rgb: np.ndarray, colors: Sequence[str]) -> str:
    """The name in ``colors`` whose sRGB is nearest to ``rgb`` (3,) in 0..255."""
    palette = np.array([RGB_BY_NAME[name] for name in colors], dtype=np.float64)  # (K, 3)
    return colors[int(np.argmin(((palette - rgb) ** 2).sum(axis=1)))]


def part_colours(image: np.ndarray, sample: BindingSample, colors: Sequence[str], erosion: int) -> tuple[str, str]:
    """Named mean colours of the bodice and the skirt of ``image`` (S, S, 3) in 0..255."""
    pixels = image.astype(np.float64)
    body = nearest_colour(pixels[erode(sample.body_mask, erosion)].mean(axis=0), colors)
    part = nearest_colour(pixels[erode(sample.part_mask, erosion)].mean(axis=0), colors)
    return body, part


def binding_scores(images: np.ndarray, samples: Sequence[BindingSample], colors: Sequence[str],
                   erosion: int) -> dict[str, float]:
    """SCORE_KEYS over pictures ``images`` (N, S, S, 3) in 0..255 generated for ``samples``' prompts."""
    if len(images) != len(samples) or not len(samples):
        raise ValueError(f"binding_scores needs one picture per sample, got {len(images)} for {len(samples)}")
    body_right = part_right = swapped = both = 0
    for image, sample in zip(images, samples):
        body, part = part_colours(image, sample, colors, erosion)
        body_right += body == sample.body
        part_right += part == sample.part
        swapped += (body == sample.part) + (part == sample.body)
        both += body == sample.body and part == sample.part
    count = len(samples)
    return {"binding_accuracy": (body_right + part_right) / (2 * count), "swap_rate": swapped / (2 * count),
            "both_right": both / count, "accuracy_body": body_right / count, "accuracy_part": part_right / count}
