"""Training samples for AnyDressing: a person image, its garments' shop images with categories, each
garment's mask in the person image, and a caption; from the toy world or the DressCode layout.

Garments of one sample must share categories with the rest of its batch (GarmentBank joins the
rows of every latent with one category list), so each data set lists its samples by category
tuple (``groups``) and the batch of a step is drawn from one group.

``tiled``: the paper's "Base" ablation input, all garments side by side in ONE reference image
(category ``TILED_CATEGORY``, one LoRA slot) with the union of their masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...models.labels import ATR_LABELS
from ..datasets import sample as keys
from ..datasets.dresscode import CATEGORIES as DRESSCODE_FOLDERS
from ..datasets.dresscode import DressCode
from ..global_batch import process_rows
from ..toyworld import ToyWorld, ToyWorldConfig
from .options import DATA_SOURCES  # noqa: F401  (defined with the options, which import nothing heavy)

TILED_CATEGORY = "outfit"
# ATR labels of each DressCode garment category in the person's parsing map.
DRESSCODE_LABELS: dict[str, tuple[str, ...]] = {
    "upper": ("upper_clothes",), "lower": ("skirt", "pants"), "dress": ("dress",),
}
# The partner garment cropped from the person image (paper §7.2: triplets from DressCode).
DRESSCODE_PARTNER = {"upper": "lower", "lower": "upper"}


class DressingDataError(ValueError):
    """A data option does not fit the data (no sample wears the asked categories, …)."""


@dataclass(frozen=True)
class DressingSample:
    """One training sample.

    Args:
        person: (3, H, W) target image in [0, 1].
        garments: (N, 3, H, W) garment images in [0, 1].
        categories: the N garments' categories.
        garment_masks: (N, H, W) float, each garment's region M_k in ``person``.
        caption: the text prompt ("" when the data has none).
        other_view: (3, H, W) the same person in another pose, or None (the base stage's cross-view
            reference, see steps.base_losses).
    """

    person: torch.Tensor
    garments: torch.Tensor
    categories: tuple[str, ...]
    garment_masks: torch.Tensor
    caption: str
    other_view: torch.Tensor | None = None


def _image_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0  # (3, H, W)


class ToyDressing(Dataset):
    """Toy-world people with their worn garments of ``categories`` (people wearing none are left out).

    Args:
        size: image side (square).
        start, count: person indices start … start + count − 1 (held-out sets use another range).
        seed: toy-world seed.
        categories: garment categories to use, in this order (toy slots: upper, lower, dress, shoes, bag).
        other_view: also render each person in its second pose (``DressingSample.other_view``).
    """

    def __init__(self, size: int, start: int = 0, count: int = 1000, seed: int = 0,
                 categories: Sequence[str] = ("upper", "lower", "dress"), other_view: bool = False) -> None:
        self.world = ToyWorld(ToyWorldConfig(height=size, width=size, seed=seed, num_people=start + count))
        self.categories = tuple(categories)
        self.other_view = other_view
        self.entries: list[tuple[int, tuple[str, ...]]] = []
        for index in range(start, start + count):
            worn = self.world.design_person(index).garments
            chosen = tuple(c for c in self.categories if c in worn)
            if chosen:
                self.entries.append((index, chosen))
        if not self.entries:
            raise DressingDataError(f"no toy person in {start}..{start + count - 1} wears any of {list(self.categories)}")

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def groups(self) -> dict[tuple[str, ...], list[int]]:
        """Category tuple -> positions of the samples with exactly those garments."""
        found: dict[tuple[str, ...], list[int]] = {}
        for position, (_, chosen) in enumerate(self.entries):
            found.setdefault(chosen, []).append(position)
        return found

    def person(self, position: int):
        """The toy world's PersonSample behind sample ``position`` (for evaluation)."""
        return self.world.person(self.entries[position][0])

    def __getitem__(self, position: int) -> DressingSample:
        chosen = self.entries[position][1]
        person = self.person(position)
        garments = torch.stack([_image_tensor(person.garments[c].shop_image) for c in chosen])  # (N, 3, H, W)
        masks = torch.stack([torch.from_numpy(person.masks[c]).float() for c in chosen])  # (N, H, W)
        other = _image_tensor(self.world.second_pose(self.entries[position][0]).image) if self.other_view else None
        return DressingSample(_image_tensor(person.image), garments, chosen, masks, person.caption, other)


def crop_garment(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The garment under ``mask`` (H, W) cut from ``image`` (3, H, W) onto white, its bounding box
    resized to the full image size; an all-white image when the mask is empty."""
    height, width = mask.shape
    if not bool(mask.any()):
        return torch.ones_like(image)
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    cut = torch.where(mask.bool(), image, torch.ones_like(image))[:, top:bottom, left:right]  # (3, h, w)
    return F.interpolate(cut[None], size=(height, width), mode="bilinear", align_corners=False)[0].clamp(0, 1)


class DressCodeDressing(Dataset):
    """DressCode pairs as upper+lower triplets (paper §7.2): the in-shop garment plus the partner
    garment cropped from the person image with the parsing map; dresses stay single.

    Args:
        root: DressCode root (upper_body/, lower_body/, dresses/).
        size: (height, width).
        folders: category folders to read.
        caption: the prompt of every sample (DressCode has no captions).
    """

    def __init__(self, root: str | Path, size: tuple[int, int], folders: Sequence[str] = tuple(DRESSCODE_FOLDERS),
                 caption: str = "a person") -> None:
        self.pairs = DressCode(root, "train", categories=tuple(folders), size=size, with_agnostic=False)
        self.caption = caption

    def __len__(self) -> int:
        return len(self.pairs)

    def categories_of(self, position: int) -> tuple[str, ...]:
        """("upper", "lower") for upper_body and lower_body pairs, ("dress",) for dresses."""
        category = DRESSCODE_FOLDERS[self.pairs.items[position][0]]
        return ("dress",) if category == "dress" else ("upper", "lower")

    @property
    def groups(self) -> dict[tuple[str, ...], list[int]]:
        """Category tuple -> positions."""
        found: dict[tuple[str, ...], list[int]] = {}
        for position in range(len(self)):
            found.setdefault(self.categories_of(position), []).append(position)
        return found

    def __getitem__(self, position: int) -> DressingSample:
        sample = self.pairs[position]
        shop_category = sample[keys.CATEGORY]
        parsing = sample[keys.PARSING]  # (H, W) ATR ids
        chosen = self.categories_of(position)
        image = sample[keys.IMAGE]
        garments, masks = [], []
        for category in chosen:
            ids = torch.tensor([ATR_LABELS.index(label) for label in DRESSCODE_LABELS[category]])
            mask = torch.isin(parsing, ids)  # (H, W)
            masks.append(mask.float())
            garments.append(sample[keys.GARMENT] if category == shop_category else crop_garment(image, mask))
        return DressingSample(image, torch.stack(garments), chosen, torch.stack(masks), self.caption)


def tiled(sample: DressingSample) -> DressingSample:
    """The "Base" input: the N garments resized to (H, W/N) side by side in one image, one category,
    the union of the masks."""
    count, _, height, width = sample.garments.shape
    part = max(width // count, 1)
    strips = F.interpolate(sample.garments, size=(height, part), mode="bilinear", align_corners=False)  # (N, 3, H, W/N)
    joined = torch.cat(list(strips), dim=2)  # (3, H, N·(W/N))
    joined = F.interpolate(joined[None], size=(height, width), mode="bilinear", align_corners=False)  # (1, 3, H, W)
    union = sample.garment_masks.amax(0, keepdim=True)  # (1, H, W)
    return DressingSample(sample.person, joined.clamp(0, 1), (TILED_CATEGORY,), union, sample.caption)


@dataclass
class DressingBatch:
    """A collated batch: persons (B, 3, H, W), garments (B, N, 3, H, W), masks (B, N, H, W), and the
    persons in another pose (B, 3, H, W) when the data set renders them."""

    persons: torch.Tensor
    garments: torch.Tensor
    categories: tuple[str, ...]
    garment_masks: torch.Tensor
    captions: list[str]
    other_views: torch.Tensor | None = None

    def to(self, device: torch.device) -> DressingBatch:
        """The batch with its tensors on ``device``."""
        others = None if self.other_views is None else self.other_views.to(device)
        return DressingBatch(self.persons.to(device), self.garments.to(device), self.categories,
                             self.garment_masks.to(device), self.captions, others)


def collate(samples: Sequence[DressingSample]) -> DressingBatch:
    """Stack samples that share one category tuple."""
    categories = samples[0].categories
    if any(sample.categories != categories for sample in samples):
        raise DressingDataError(f"a batch mixes garment categories {[s.categories for s in samples]}; draw it from one group")
    others = None if any(s.other_view is None for s in samples) else torch.stack([s.other_view for s in samples])
    return DressingBatch(
        torch.stack([s.person for s in samples]), torch.stack([s.garments for s in samples]), categories,
        torch.stack([s.garment_masks for s in samples]), [s.caption for s in samples], others,
    )


def batch_for_step(dataset, groups: dict[tuple[str, ...], list[int]], step: int, batch_size: int, seed: int,
                   tile: bool = False, process: int = 0, processes: int = 1) -> DressingBatch:
    """The batch of training step ``step``: a category group (chance proportional to its size), then
    the global batch's samples of it, all drawn from ``(seed, step)``, of which this process takes its
    ``batch_size``; a resumed run sees exactly the batches it would have seen."""
    rng = np.random.default_rng((seed, step, 0))
    names = sorted(groups)
    sizes = np.array([len(groups[name]) for name in names], dtype=np.float64)
    group = groups[names[int(rng.choice(len(names), p=sizes / sizes.sum()))]]
    rows = process_rows(rng, len(group), batch_size, process, processes)
    samples = [dataset[group[int(i)]] for i in rows]
    return collate([tiled(s) for s in samples] if tile else samples)


def build_dataset(source: str, size: int, root: str | None = None, count: int = 1000, seed: int = 0,
                  categories: Sequence[str] = ("upper", "lower", "dress"), other_view: bool = False):
    """The data set ``--data`` names (toy world people 0..count−1, with their second pose when
    ``other_view``; or DressCode's train split)."""
    if source == "toyworld":
        return ToyDressing(size, 0, count, seed, categories, other_view)
    if source == "dresscode":
        if root is None:
            raise DressingDataError("--data dresscode needs --data-root (the DressCode folder)")
        return DressCodeDressing(root, (size, size))
    raise DressingDataError(f"--data must be one of {list(DATA_SOURCES)}, got {source!r}")
