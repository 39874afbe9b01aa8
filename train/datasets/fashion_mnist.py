"""Fashion-MNIST (Xiao et al. 2017) read from Debian's ``dataset-fashion-mnist`` package.

``apt-get install dataset-fashion-mnist`` puts the four gzipped IDX files in
:data:`DEBIAN_FASHION_MNIST_DIR` (``/usr/share/datasets/fashion-mnist``)::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz   60000 images, 28x28 grey
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz    10000 images

It is a small real data set for quick OutfitGAN experiments: each class maps to an outfit role
(:data:`CLASS_ROLES`: top, bottom, dress, outerwear, shoes, bag) and :class:`FashionMNISTOutfits`
draws seeded outfits with one item per role. Samples follow ``train.datasets.sample``: the grey
image is repeated to RGB (3, H, W) in [0, 1]; label (class id), category (role), caption (class
name), name (split and index).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from . import sample as keys
from .files import DatasetFormatError, require_dir, require_file
from .images import Size, array_to_image_tensor

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CLASS_ROLES: tuple[str, ...] = (
    "top", "bottom", "top", "dress", "outerwear", "shoes", "top", "shoes", "bag", "shoes",
)
SPLIT_PREFIX = MappingProxyType({"train": "train", "test": "t10k"})
_IDX_DTYPES = MappingProxyType(
    {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
)


def fashion_mnist_available(root: str | Path = DEBIAN_FASHION_MNIST_DIR) -> bool:
    """True when all four IDX files are present under ``root``."""
    root = Path(root)
    return all(
        (root / f"{prefix}-{kind}.gz").is_file()
        for prefix in SPLIT_PREFIX.values()
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped when it ends in .gz) into an array of its declared type and shape."""
    path = require_file(Path(path), "IDX file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetFormatError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetFormatError(
            f"{path}: header declares shape {shape} ({expected} bytes), file has {len(data) - header}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


class FashionMNIST(Dataset):
    """Fashion-MNIST images with their outfit role.

    Args:
        root: folder with the gzipped IDX files (default: the Debian package's).
        split: "train" (60000) or "test" (10000).
        roles: keep only classes whose role is in this list (None: all).
        size: (height, width) to resize to (bilinear), or None for 28x28.
    """

    def __init__(
        self,
        root: str | Path = DEBIAN_FASHION_MNIST_DIR,
        split: Literal["train", "test"] = "train",
        *,
        roles: Sequence[str] | None = None,
        size: Size | None = None,
    ) -> None:
        root = require_dir(Path(root), "Fashion-MNIST (apt-get install dataset-fashion-mnist)")
        prefix = SPLIT_PREFIX[split]
        self.images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz")  # (N, 28, 28) uint8
        self.labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)  # (N,)
        if self.images.ndim != 3 or self.images.shape[0] != self.labels.shape[0]:
            raise DatasetFormatError(
                f"Fashion-MNIST {split}: {self.images.shape} images do not match {self.labels.shape} labels"
            )
        unknown = sorted(set(np.unique(self.labels).tolist()) - set(range(len(FASHION_MNIST_CLASSES))))
        if unknown:
            raise DatasetFormatError(f"Fashion-MNIST {split}: unknown class ids {unknown}")
        if roles is not None:
            bad = sorted(set(roles) - set(CLASS_ROLES))
            if bad:
                raise ValueError(f"unknown Fashion-MNIST roles {bad}; roles: {sorted(set(CLASS_ROLES))}")
            role_classes = [i for i, role in enumerate(CLASS_ROLES) if role in roles]
            self.indices = np.flatnonzero(np.isin(self.labels, role_classes))
        else:
            self.indices = np.arange(len(self.labels))
        self.split = split
        self.size = size

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, raw_index: int) -> torch.Tensor:
        """The image at an index of the full split as float32 (3, H, W) in [0, 1]."""
        array = self.images[raw_index]  # (28, 28)
        if self.size is not None and array.shape != tuple(self.size):
            array = np.asarray(Image.fromarray(array).resize((self.size[1], self.size[0]), Image.BILINEAR))
        return array_to_image_tensor(array)

    def __getitem__(self, index: int) -> keys.Sample:
        raw = int(self.indices[index])
        label = int(self.labels[raw])
        return {
            keys.IMAGE: self.image(raw),
            keys.LABEL: label,
            keys.CATEGORY: CLASS_ROLES[label],
            keys.CAPTION: FASHION_MNIST_CLASSES[label],
            keys.NAME: f"{self.split}-{raw:05d}",
        }


class FashionMNISTOutfits(Dataset):
    """Seeded random outfits with one Fashion-MNIST item per role (no compatibility rule: every
    combination is a positive; the toy world supplies compatibility labels).

    Args:
        images: the :class:`FashionMNIST` split to draw from.
        num_outfits: number of outfits.
        roles: one item of each role, in this order.
        seed: the same seed gives the same outfits.
    """

    def __init__(
        self,
        images: FashionMNIST,
        num_outfits: int,
        *,
        roles: Sequence[str] = ("top", "bottom", "bag", "shoes"),
        seed: int = 0,
    ) -> None:
        generator = np.random.default_rng(seed)
        columns = []
        for role in roles:
            classes = [i for i, name in enumerate(CLASS_ROLES) if name == role]
            pool = images.indices[np.isin(images.labels[images.indices], classes)]
            if len(pool) == 0:
                raise ValueError(f"the Fashion-MNIST {images.split} split has no item with role {role!r}")
            columns.append(generator.choice(pool, size=num_outfits))
        self.outfits = np.stack(columns, axis=1)  # (num_outfits, len(roles))
        self.images = images
        self.roles = tuple(roles)

    def __len__(self) -> int:
        return len(self.outfits)

    def __getitem__(self, index: int) -> keys.Sample:
        raw_indices = self.outfits[index].tolist()
        return {
            keys.ITEM_IMAGES: torch.stack([self.images.image(i) for i in raw_indices]),  # (R, 3, H, W)
            keys.ITEM_VALID: torch.ones(len(raw_indices), dtype=torch.bool),
            keys.ITEM_IDS: [f"{self.images.split}-{i:05d}" for i in raw_indices],
            keys.ITEM_CATEGORIES: list(self.roles),
            keys.NAME: f"outfit-{index:05d}",
        }
