"""Outfit data for OutfitGAN training: the toy world (default), Polyvore Outfits, Fashion-MNIST items.

Every source yields the same sample dict (``outfit_sample``):

- ``items``  float32 (N, 3, S, S) in [0, 1], the four items in ``OUTFIT_ORDER`` (upper, bag, lower, shoes);
- ``masks``  float32 (N, 1, S, S) in {0, 1}, each item's silhouette (the target reference masks);
- ``label``  float32 () 1 for a compatible outfit, 0 for an incompatible one.

Toy-world outfits carry the world's own compatibility label; ``RuleOutfits`` draws them the same way
under a chosen colour rule (``toyworld.color_rules``), for judges and the learnability measurement.
Polyvore and Fashion-MNIST outfits are all positives; for CCM pre-training, ``with_negatives`` makes
incompatible ones the usual Polyvore way (items swapped in from other outfits). Masks of real
pictures are "not background": pixels further than ``MASK_THRESHOLD`` from the background colour
(white for Polyvore, black for Fashion-MNIST).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from ...models.outfitgan.config import OUTFIT_ORDER
from ..datasets.fashion_mnist import DEBIAN_FASHION_MNIST_DIR, FashionMNIST, FashionMNISTOutfits
from ..datasets.files import DatasetFormatError
from ..datasets.images import array_to_image_tensor
from ..datasets.polyvore import PolyvoreOutfits
from ..global_batch import process_rows
from ..toyworld import ToyWorld, ToyWorldConfig
from ..toyworld.color_rules import DEFAULT_COLOR_RULE, color_rule
from ..toyworld.outfits import OutfitDesign, sample_outfit
from ..toyworld.render import render_shop
from ..toyworld.world import OUTFIT_STREAM
from .options import DATA_SOURCES  # noqa: F401  (defined with the options, which import nothing heavy)

MASK_THRESHOLD = 0.08
POLYVORE_SLOTS = {"tops": "upper", "bags": "bag", "bottoms": "lower", "shoes": "shoes"}
FASHION_MNIST_ROLES = {"upper": "top", "bag": "bag", "lower": "bottom", "shoes": "shoes"}


def outfit_sample(items: torch.Tensor, masks: torch.Tensor, compatible: bool) -> dict[str, torch.Tensor]:
    """The OutfitGAN sample dict (see the module docstring)."""
    return {"items": items, "masks": masks, "label": torch.tensor(float(compatible))}


def background_mask(items: torch.Tensor, background: float) -> torch.Tensor:
    """(N, 1, S, S) silhouettes of (N, 3, S, S) items: max channel distance from ``background`` > threshold."""
    distance = (items - background).abs().amax(dim=1, keepdim=True)  # (N, 1, S, S)
    return (distance > MASK_THRESHOLD).float()


class ToyWorldOutfits(Dataset):
    """Toy-world outfits ``start .. start + count - 1`` at ``size``x``size``.

    Args:
        size: item side in pixels.
        start: first outfit index (held-out evaluation outfits start after the training ones).
        count: number of outfits.
        seed: the world's seed.
        compatible_only: keep only compatible outfits (the GAN learns from compatible outfits only).
    """

    def __init__(self, size: int, start: int = 0, count: int = 2000, seed: int = 0, compatible_only: bool = False) -> None:
        self.world = ToyWorld(ToyWorldConfig(height=size, width=size, seed=seed, num_outfits=start + count))
        indices = range(start, start + count)
        if compatible_only:
            indices = [i for i in indices if self.world.design_outfit(i).compatible]
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        outfit = self.world.outfit(self.indices[index])
        items = torch.stack([array_to_image_tensor(outfit.items[s].shop_image) for s in OUTFIT_ORDER])  # (N, 3, S, S)
        masks = torch.stack([torch.from_numpy(outfit.items[s].shop_mask.astype(np.float32))[None] for s in OUTFIT_ORDER])
        return outfit_sample(items, masks, outfit.compatible)


class RuleOutfits(Dataset):
    """Toy-world outfits ``start .. start + count - 1`` drawn under colour rule ``rule``, in-shop at ``size``.

    Outfit i is drawn as ``ToyWorld.design_outfit(i)`` draws it (same generator stream, same compatible
    share), so under the default rule it equals ``ToyWorldOutfits``'s outfit i; "accents" gives the
    world's first colour rule. Compatible and incompatible outfits are both kept.

    Args:
        size: item side in pixels.
        start: first outfit index.
        count: number of outfits.
        seed: the world's seed.
        rule: colour rule name ("palette" or "accents").
    """

    def __init__(self, size: int, start: int = 0, count: int = 2000, seed: int = 0,
                 rule: str = DEFAULT_COLOR_RULE) -> None:
        self.config = ToyWorldConfig(height=size, width=size, seed=seed, num_outfits=start + count)
        self.rule = color_rule(rule).name
        self.start, self.count = start, count

    def __len__(self) -> int:
        return self.count

    def design(self, index: int) -> OutfitDesign:
        """The specs and label of outfit ``start + index``."""
        rng = np.random.default_rng((self.config.seed, OUTFIT_STREAM, self.start + index))
        compatible = bool(rng.random() < self.config.compatible_fraction)
        return sample_outfit(rng, compatible, self.rule)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        design = self.design(index)
        shop = [render_shop(design.items[slot], self.config.size) for slot in OUTFIT_ORDER]
        items = torch.stack([array_to_image_tensor(image) for image, _ in shop])  # (N, 3, S, S)
        masks = torch.stack([torch.from_numpy(mask.astype(np.float32))[None] for _, mask in shop])  # (N, 1, S, S)
        return outfit_sample(items, masks, design.compatible)


def _resize_items(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class PolyvoreCompletion(Dataset):
    """Polyvore outfits that have a top, a bag, a bottom and shoes (first of each), at ``size``.

    Args:
        root: the ``polyvore_outfits`` folder (published layout, see ``train.datasets.polyvore``).
        size: item side in pixels.
        split: "train", "valid" or "test".
    """

    def __init__(self, root: str | Path, size: int, split: str = "train") -> None:
        self.outfits = PolyvoreOutfits(root, split, size=(size, size))
        self.rows: list[tuple[int, list[int]]] = []
        for number, (_, item_ids) in enumerate(self.outfits.outfits):
            slots = [POLYVORE_SLOTS.get(self.outfits.category(item)) for item in item_ids]
            if all(slot in slots for slot in OUTFIT_ORDER):
                self.rows.append((number, [slots.index(slot) for slot in OUTFIT_ORDER]))
        if not self.rows:
            raise DatasetFormatError(
                f"no Polyvore {split} outfit in {root} has all of tops, bags, bottoms and shoes"
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        number, order = self.rows[index]
        images = self.outfits[number]["item_images"][order]  # (N, 3, S, S) in OUTFIT_ORDER
        return outfit_sample(images, background_mask(images, 1.0), True)


class FashionMNISTCompletion(Dataset):
    """Seeded Fashion-MNIST outfits (top, bag, bottom, shoes) upsampled to ``size``, white on black.

    Args:
        size: item side in pixels.
        count: number of outfits.
        root: folder of the IDX files (Debian's ``dataset-fashion-mnist`` by default).
        seed: outfit draw seed.
    """

    def __init__(self, size: int, count: int = 2000, root: str | Path = DEBIAN_FASHION_MNIST_DIR, seed: int = 0) -> None:
        roles = tuple(FASHION_MNIST_ROLES[slot] for slot in OUTFIT_ORDER)
        self.outfits = FashionMNISTOutfits(FashionMNIST(root, "train", roles=roles), count, roles=roles, seed=seed)
        self.size = size

    def __len__(self) -> int:
        return len(self.outfits)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        images = _resize_items(self.outfits[index]["item_images"], self.size)  # (N, 3, S, S)
        return outfit_sample(images, background_mask(images, 0.0), True)


class WithNegatives(Dataset):
    """Positive outfits plus as many negatives: outfit i with 1-2 items swapped in from other outfits.

    Negative ``len(base) + i`` is fixed by ``(seed, i)``, so the data set is deterministic.
    """

    def __init__(self, base: Dataset, seed: int = 0) -> None:
        self.base = base
        self.seed = seed

    def __len__(self) -> int:
        return 2 * len(self.base)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        count = len(self.base)
        if index < count:
            return self.base[index]
        rng = np.random.default_rng((self.seed, index))
        sample = self.base[index - count]
        items, masks = sample["items"].clone(), sample["masks"].clone()
        for slot in rng.choice(len(OUTFIT_ORDER), size=int(rng.integers(1, 3)), replace=False):
            other = self.base[int((index - count + rng.integers(1, count)) % count)]
            items[slot], masks[slot] = other["items"][slot], other["masks"][slot]
        return outfit_sample(items, masks, False)


def outfit_dataset(source: str, size: int, *, root: str | None = None, count: int = 2000, seed: int = 0,
                   for_ccm: bool = False) -> Dataset:
    """The training data of ``source`` ("toyworld", "polyvore", "fashion-mnist").

    ``for_ccm`` gives compatible and incompatible outfits (CCM pre-training); otherwise only
    compatible ones (GAN training).
    """
    if source == "toyworld":
        return ToyWorldOutfits(size, 0, count, seed, compatible_only=not for_ccm)
    if source == "polyvore":
        if root is None:
            raise ValueError("--data polyvore needs --data-root (the polyvore_outfits folder)")
        base = PolyvoreCompletion(root, size)
    elif source == "fashion-mnist":
        base = FashionMNISTCompletion(size, count, root if root is not None else DEBIAN_FASHION_MNIST_DIR, seed)
    else:
        raise ValueError(f"--data must be one of {DATA_SOURCES}, got {source!r}")
    return WithNegatives(base, seed) if for_ccm else base


def batch_for_step(dataset: Dataset, step: int, batch_size: int, seed: int, process: int = 0,
                   processes: int = 1) -> dict[str, torch.Tensor]:
    """The batch of training step ``step``: the global batch's indices drawn from ``(seed, step)``, of
    which this process takes its ``batch_size``, so a resumed run sees exactly the batches it would
    have seen, and each process of a multi-process run its own."""
    rng = np.random.default_rng((seed, step, 0))
    rows = process_rows(rng, len(dataset), batch_size, process, processes)
    samples = [dataset[int(i)] for i in rows]
    return {key: torch.stack([sample[key] for sample in samples]) for key in samples[0]}
