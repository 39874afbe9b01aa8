"""The coarse-to-fine filter (IGR §3.2 "Training Strategy"): stage 2 ("HQFT") fine-tunes on the
high-quality pairs only.

Two sources of the high-quality flag:

- a filter list file (real layouts, the paper's hand-curated subset): one kept sample per line, as a
  relative person-image path (``train/image/00001_00.jpg``, ``image/00001_00.jpg``) or a sample id
  (the file stem, ``00001_00``); blank lines and ``#`` comments are ignored;
- the toy world's rule, computed from the sample (:func:`garment_quality`). A pair is LOW quality when

  1. **truncated**: the worn garment mask touches the image border (any pixel in the outermost row
     or column), so part of the garment is outside the photo; or
  2. **occluded by area**: its visible ratio ``worn area / flat (shop) area`` is below
     ``min_visible`` (default 0.6) times the reference ratio of its garment kind (the median ratio
     of that kind over the data set: the toy world frames every shop picture to its garment, so raw
     ratios differ per kind, e.g. shorts ~0.05 and sweaters ~0.23 at any image size); or
  3. **occluded by splitting**: the worn mask falls into more pieces than the flat garment's mask
     (pieces are 8-connected components of at least ``min_piece`` of the mask's area), e.g. an arm
     or a bag cutting the garment in two.

The fraction flagged is logged and returned by the data sets (``flagged_fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ...models.errors import AtelierError

DEFAULT_MIN_VISIBLE = 0.6
DEFAULT_MIN_PIECE = 0.02


class FilterListError(AtelierError, FileNotFoundError):
    """The filter list file is missing or lists no sample."""


@dataclass(frozen=True)
class QualityRule:
    """Thresholds of the toy-world rule (module docstring).

    Args:
        min_visible: occluded when the visible ratio is below this fraction of the kind's reference ratio.
        min_piece: pieces smaller than this fraction of the mask's area are ignored when counting pieces.
    """

    min_visible: float = DEFAULT_MIN_VISIBLE
    min_piece: float = DEFAULT_MIN_PIECE


@dataclass(frozen=True)
class QualityFlags:
    """Why a pair is (or is not) high quality.

    Args:
        truncated: the worn mask touches the image border.
        occluded_area: the visible ratio is too small for the garment kind.
        split: the worn mask has more pieces than the flat garment's mask.
        visible_ratio: worn area / flat area.
    """

    truncated: bool
    occluded_area: bool
    split: bool
    visible_ratio: float

    @property
    def high_quality(self) -> bool:
        """True when none of the three defects is present."""
        return not (self.truncated or self.occluded_area or self.split)


def touches_border(mask: np.ndarray) -> bool:
    """Whether any pixel of the (H, W) bool mask lies on the image's outermost rows or columns."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def count_pieces(mask: np.ndarray, min_piece: float = DEFAULT_MIN_PIECE) -> int:
    """8-connected components of the (H, W) bool mask holding at least ``min_piece`` of its area."""
    area = int(mask.sum())
    if area == 0:
        return 0
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    sizes = stats[1:count, cv2.CC_STAT_AREA]  # (pieces,) background row dropped
    return int((sizes >= max(min_piece * area, 1.0)).sum())


def visible_ratio(worn: np.ndarray, flat: np.ndarray) -> float:
    """Worn (visible) garment area / flat garment area; 0 when the flat mask is empty."""
    flat_area = int(flat.sum())
    return float(worn.sum()) / flat_area if flat_area else 0.0


def garment_quality(worn: np.ndarray, flat: np.ndarray, reference_ratio: float,
                    rule: QualityRule = QualityRule()) -> QualityFlags:
    """The toy-world rule for one pair.

    Args:
        worn: (H, W) bool, the garment's visible pixels on the person.
        flat: (h, w) bool, the garment's pixels in its flat (shop) picture.
        reference_ratio: the typical visible ratio of this garment kind (median over the data).
        rule: thresholds.
    """
    ratio = visible_ratio(worn, flat)
    return QualityFlags(
        truncated=touches_border(worn),
        occluded_area=ratio < rule.min_visible * reference_ratio,
        split=count_pieces(worn, rule.min_piece) > max(count_pieces(flat, rule.min_piece), 1),
        visible_ratio=ratio,
    )


def reference_ratios(ratios_by_kind: dict[str, list[float]]) -> dict[str, float]:
    """Median visible ratio of each garment kind."""
    return {kind: float(np.median(values)) for kind, values in ratios_by_kind.items() if values}


def read_filter_list(path: str | Path) -> frozenset[str]:
    """The kept entries of a filter list file (module docstring), normalised to '/' separators."""
    file = Path(path)
    if not file.is_file():
        raise FilterListError(f"--filter-list {str(file)!r} does not exist; write one kept person-image path or id per line")
    entries = set()
    for line in file.read_text().splitlines():
        entry = line.split("#", 1)[0].strip().replace("\\", "/").removeprefix("./")
        if entry:
            entries.add(entry)
    if not entries:
        raise FilterListError(f"--filter-list {str(file)!r} lists no sample (one person-image path or id per line)")
    return frozenset(entries)


def listed(keys: tuple[str, ...], kept: frozenset[str]) -> bool:
    """Whether any of a sample's names (id, file name, relative paths) is in the filter list."""
    return any(key in kept for key in keys)
