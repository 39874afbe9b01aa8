"""IGR training samples: a person image, the garment's region m on it (VITON's agnostic mask), the
flat in-shop garment (the target), its category and a high-quality flag (``quality.py``).

Sources:

- ``ToyIGR``: toy-world people, one sample per worn upper / lower / dress garment; the target is its
  shop image; m is the toy world's ``agnostic_<category>`` mask (``mask="agnostic"``, the paper's
  input) or the worn garment's own pixels (``mask="garment"``); the flag is the toy-world rule.
- ``VitonIGR``: the VITON-HD layout (upper garments), each person with its own cloth (paired).
- ``DressCodeIGR``: the DressCode layout (upper_body / lower_body / dresses), paired.

Real layouts take the flag from a filter list (``quality.read_filter_list``); without one every
sample counts as high quality (and the trainer refuses ``--stage fine``). Person and cloth sizes
are separate (height, width) options, portrait allowed; the cloth is resized bilinearly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...models.igr.config import IGR_CATEGORIES
from ..datasets import sample as keys
from ..datasets.dresscode import CATEGORIES as DRESSCODE_FOLDERS
from ..datasets.dresscode import DressCode
from ..datasets.vitonhd import VitonHD
from ..global_batch import process_rows
from ..toyworld import PersonSample, ToyWorld, ToyWorldConfig
from ..toyworld.palette import NamedColor
from .quality import (
    QualityFlags,
    QualityRule,
    garment_quality,
    listed,
    read_filter_list,
    reference_ratios,
)
from .options import DATA_SOURCES, MASK_KINDS  # noqa: F401  (defined with the options, which import nothing heavy)

logger = logging.getLogger("atelier.train.igr")

DEFAULT_RULE = QualityRule()
Size = tuple[int, int]  # (height, width)


class IGRDataError(ValueError):
    """A data option does not fit the data (no sample of the asked categories, no high-quality pair, …)."""


@dataclass(frozen=True)
class IGRSample:
    """One try-off pair.

    Args:
        person: (3, H, W) person image in [0, 1].
        mask: (H, W) float garment region m in {0, 1}.
        garment: (3, Hc, Wc) flat in-shop garment in [0, 1] (the target).
        category: "upper", "lower" or "dress".
        high_quality: whether stage 2 keeps the pair.
        sample_id: the pair's id (toy: "person-<i>-<category>"; real: the person image's stem).
    """

    person: torch.Tensor
    mask: torch.Tensor
    garment: torch.Tensor
    category: str
    high_quality: bool
    sample_id: str


@dataclass
class IGRBatch:
    """Collated samples: persons (B, 3, H, W), masks (B, H, W), garments (B, 3, Hc, Wc)."""

    persons: torch.Tensor
    masks: torch.Tensor
    garments: torch.Tensor
    categories: list[str]
    sample_ids: list[str]

    def to(self, device: torch.device) -> IGRBatch:
        """The batch with its tensors on ``device``."""
        return IGRBatch(self.persons.to(device), self.masks.to(device), self.garments.to(device),
                        self.categories, self.sample_ids)


def collate(samples: Sequence[IGRSample]) -> IGRBatch:
    """Stack samples (categories may differ within a batch: prompts and masks are per row)."""
    return IGRBatch(torch.stack([s.person for s in samples]), torch.stack([s.mask for s in samples]),
                    torch.stack([s.garment for s in samples]), [s.category for s in samples],
                    [s.sample_id for s in samples])


def resize_image(image: torch.Tensor, size: Size) -> torch.Tensor:
    """(3, H, W) -> (3, size) bilinear (antialiased when shrinking), clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)


def _image_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0  # (3, H, W)


class ToyIGR(Dataset):
    """Toy-world try-off pairs: persons ``start .. start + count - 1``, one pair per worn garment of
    ``categories``.

    Args:
        person_size: (height, width) of the person image (the world renders at this size).
        cloth_size: (height, width) of the target; defaults to ``person_size``.
        start, count: person index range (held-out sets use another range).
        seed: toy-world seed.
        categories: garment categories to use.
        mask: "agnostic" (the toy world's agnostic mask of the category) or "garment" (the worn pixels).
        rule: the toy-world quality rule; ``None`` skips the flag (every pair high quality, no render at init).
    """

    def __init__(self, person_size: Size, cloth_size: Size | None = None, start: int = 0, count: int = 1000,
                 seed: int = 0, categories: Sequence[str] = IGR_CATEGORIES, mask: str = "agnostic",
                 rule: QualityRule | None = DEFAULT_RULE) -> None:
        if mask not in MASK_KINDS:
            raise IGRDataError(f"mask must be one of {list(MASK_KINDS)}, got {mask!r}")
        unknown = [c for c in categories if c not in IGR_CATEGORIES]
        if unknown:
            raise IGRDataError(f"categories {unknown} are not IGR categories; use some of {list(IGR_CATEGORIES)}")
        height, width = person_size
        self.world = ToyWorld(ToyWorldConfig(height=height, width=width, seed=seed, num_people=start + count))
        self.cloth_size = tuple(cloth_size or person_size)
        self.mask_kind = mask
        self.entries: list[tuple[int, str]] = []
        for index in range(start, start + count):
            worn = self.world.design_person(index).garments
            self.entries.extend((index, c) for c in categories if c in worn)
        if not self.entries:
            raise IGRDataError(f"no toy person in {start}..{start + count - 1} wears any of {list(categories)}")
        self.flags = self._quality(rule) if rule is not None else None
        self.quality_source = "flag" if rule is not None else "none"

    def _quality(self, rule: QualityRule) -> list[QualityFlags]:
        worn_flat: list[tuple[np.ndarray, np.ndarray, str]] = []
        ratios: dict[str, list[float]] = {}
        for index, category in self.entries:
            person = self.world.person(index)
            garment = person.garments[category]
            worn_flat.append((person.masks[category], garment.shop_mask, garment.spec.kind))
            flat_area = max(int(garment.shop_mask.sum()), 1)
            ratios.setdefault(garment.spec.kind, []).append(float(person.masks[category].sum()) / flat_area)
        reference = reference_ratios(ratios)
        flags = [garment_quality(worn, flat, reference[kind], rule) for worn, flat, kind in worn_flat]
        logger.info("toy-world quality rule flags %.1f%% of %d pairs as low quality "
                    "(truncated %d, occluded by area %d, split %d)",
                    100.0 * sum(not f.high_quality for f in flags) / len(flags), len(flags),
                    sum(f.truncated for f in flags), sum(f.occluded_area for f in flags), sum(f.split for f in flags))
        return flags

    def __len__(self) -> int:
        return len(self.entries)

    def high_quality(self, position: int) -> bool:
        """The pair's stage-2 flag."""
        return True if self.flags is None else self.flags[position].high_quality

    @property
    def flagged_fraction(self) -> float:
        """Fraction of pairs flagged low quality (0 without the rule)."""
        return 0.0 if self.flags is None else sum(not f.high_quality for f in self.flags) / len(self.flags)

    def person(self, position: int):
        """The toy world's PersonSample behind pair ``position`` (for evaluation)."""
        return self.world.person(self.entries[position][0])

    def __getitem__(self, position: int) -> IGRSample:
        index, _ = self.entries[position]
        return self._sample(position, self.world.person(index))

    def recoloured(self, position: int, color: NamedColor) -> tuple[IGRSample, PersonSample]:
        """Pair ``position`` with its garment's main colour replaced by ``color``: the same person,
        pose, garment shape and pattern, so the mask m and the shop mask are the pair's own. Also
        returns the toy world's PersonSample of the recoloured person (its shop garment is the new
        target)."""
        index, category = self.entries[position]
        design = self.world.design_person(index)
        garments = {**design.garments, category: replace(design.garments[category], color=color)}
        person = self.world.render_design(index, replace(design, garments=garments))
        return self._sample(position, person), person

    def _sample(self, position: int, person: PersonSample) -> IGRSample:
        index, category = self.entries[position]
        key = f"agnostic_{category}" if self.mask_kind == "agnostic" else category
        garment = resize_image(_image_tensor(person.garments[category].shop_image), self.cloth_size)
        return IGRSample(_image_tensor(person.image), torch.from_numpy(person.masks[key]).float(), garment,
                         category, self.high_quality(position), f"person-{index}-{category}")


class _LayoutIGR(Dataset):
    """Shared part of the real layouts: a paired loader with agnostic masks, plus an optional filter list."""

    def __init__(self, pairs: Dataset, cloth_size: Size | None, filter_list: str | Path | None) -> None:
        self.pairs = pairs
        self.cloth_size = cloth_size
        self.kept = read_filter_list(filter_list) if filter_list is not None else None
        self.quality_source = "list" if self.kept is not None else "none"
        self.flags = [self.kept is None or listed(self.names(i), self.kept) for i in range(len(self))]
        if self.kept is not None:
            logger.info("filter list keeps %d of %d pairs", sum(self.flags), len(self.flags))

    def names(self, position: int) -> tuple[str, ...]:
        """Every name a filter list may use for pair ``position`` (id, file name, relative paths)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.pairs)

    def high_quality(self, position: int) -> bool:
        """The pair's stage-2 flag (listed in the filter list, or True without one)."""
        return self.flags[position]

    @property
    def flagged_fraction(self) -> float:
        """Fraction of pairs the filter list leaves out."""
        return sum(not f for f in self.flags) / max(len(self.flags), 1)

    def __getitem__(self, position: int) -> IGRSample:
        sample = self.pairs[position]
        garment = sample[keys.GARMENT]
        if self.cloth_size is not None:
            garment = resize_image(garment, self.cloth_size)
        return IGRSample(sample[keys.IMAGE], sample[keys.AGNOSTIC_MASK][0], garment, sample[keys.CATEGORY],
                         self.high_quality(position), sample[keys.NAME])


class VitonIGR(_LayoutIGR):
    """VITON-HD pairs (upper garments), each person with its own cloth.

    Args:
        root: VITON-HD root (train/, test/, *_pairs.txt).
        split: "train" or "test".
        person_size: (height, width) or None for the files' size.
        cloth_size: (height, width) of the target; None keeps the person size.
        filter_list: the stage-2 filter list, or None.
    """

    def __init__(self, root: str | Path, split: str = "train", person_size: Size | None = None,
                 cloth_size: Size | None = None, filter_list: str | Path | None = None) -> None:
        self.split = split
        super().__init__(VitonHD(root, split, paired=True, size=person_size), cloth_size, filter_list)

    def names(self, position: int) -> tuple[str, ...]:
        person = self.pairs.pairs[position][0]
        return (Path(person).stem, person, f"image/{person}", f"{self.split}/image/{person}")


class DressCodeIGR(_LayoutIGR):
    """DressCode pairs (upper_body / lower_body / dresses), each person with its own garment.

    Args:
        root: DressCode root.
        split: "train" or "test" (test reads the paired list).
        folders: category folders to read.
        person_size, cloth_size, filter_list: as VitonIGR.
    """

    def __init__(self, root: str | Path, split: str = "train", folders: Sequence[str] = tuple(DRESSCODE_FOLDERS),
                 person_size: Size | None = None, cloth_size: Size | None = None,
                 filter_list: str | Path | None = None) -> None:
        super().__init__(DressCode(root, split, categories=tuple(folders), order="paired", size=person_size),
                         cloth_size, filter_list)

    def names(self, position: int) -> tuple[str, ...]:
        folder, person, _ = self.pairs.items[position]
        return (Path(person).stem, person, f"images/{person}", f"{folder}/images/{person}")


def build_dataset(source: str, person_size: Size, cloth_size: Size | None = None, root: str | None = None,
                  count: int = 1000, seed: int = 0, categories: Sequence[str] = IGR_CATEGORIES,
                  filter_list: str | None = None, mask: str = "agnostic", split: str = "train",
                  with_quality: bool = True):
    """The data set ``--data`` names (toy-world people 0..count-1, or a real layout's split);
    ``with_quality`` False skips the toy-world rule (a render of every person at start-up)."""
    if source == "toyworld":
        return ToyIGR(person_size, cloth_size, 0, count, seed, categories, mask, DEFAULT_RULE if with_quality else None)
    if root is None:
        raise IGRDataError(f"--data {source} needs --data-root (the {source} folder)")
    if source == "vitonhd":
        return VitonIGR(root, split, person_size, cloth_size, filter_list)
    if source == "dresscode":
        folders = [folder for folder, category in DRESSCODE_FOLDERS.items() if category in categories]
        return DressCodeIGR(root, split, folders, person_size, cloth_size, filter_list)
    raise IGRDataError(f"--data must be one of {list(DATA_SOURCES)}, got {source!r}")


def stage_positions(dataset, fine: bool) -> list[int]:
    """The pair positions a stage trains on: all (coarse) or the high-quality ones (fine)."""
    if not fine:
        return list(range(len(dataset)))
    if dataset.quality_source == "none":
        raise IGRDataError("--stage fine needs high-quality flags: --filter-list FILE, or --data toyworld")
    kept = [position for position in range(len(dataset)) if dataset.high_quality(position)]
    if not kept:
        raise IGRDataError("--stage fine: no pair is high quality (check --filter-list or the quality rule)")
    return kept


def batch_for_step(dataset, positions: Sequence[int], step: int, batch_size: int, seed: int, process: int = 0,
                   processes: int = 1) -> IGRBatch:
    """The batch of training step ``step``: this process's ``batch_size`` of the global batch's
    ``positions`` drawn from ``(seed, step)``, so a resumed run sees exactly the batches it would have seen."""
    rng = np.random.default_rng((seed, step, 0, 11))
    rows = process_rows(rng, len(positions), batch_size, process, processes)
    return collate([dataset[positions[int(i)]] for i in rows])
