"""DressCode (Morelli et al. 2022) in its published layout.

Layout (``root`` holds one folder per category)::

    root/<category>/train_pairs.txt            "<id>_0.jpg <id>_1.jpg" per line
    root/<category>/test_pairs_paired.txt      (test_pairs_unpaired.txt for the unpaired setting)
    root/<category>/images/<id>_0.jpg          person, 768x1024
    root/<category>/images/<id>_1.jpg          in-shop garment
    root/<category>/label_maps/<id>_4.png      ATR label ids (single channel), SCHP parser
    root/<category>/keypoints/<id>_2.json      {"keypoints": [[x, y, score, id], ...18]}

with ``<category>`` in upper_body, lower_body, dresses. Keypoints are stored in a 384x512 frame
(half the image resolution, as the official loader's ``width/384`` scaling shows); a point with
x <= 0 or y <= 0 is missing. DressCode ships no garment masks, so samples have no
``garment_mask``. Samples follow ``train.datasets.sample`` with keys image, garment, parsing
("atr"), agnostic_mask (recipe of ``models.parsing.agnostic_mask`` on the map converted to LIP),
keypoints, category ("upper", "lower" or "dress"), name, garment_name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ...models.parsing import ATR, LIP, agnostic_mask, convert_label_map
from ...models.pose import BodyPose, pose_from_array
from . import sample as keys
from .files import DatasetFormatError, read_pair_lines, require_dir, require_file
from .images import Size, load_image, load_label_tensor, output_size, pose_tensor

CATEGORIES: Mapping[str, str] = MappingProxyType(
    {"upper_body": "upper", "lower_body": "lower", "dresses": "dress"}
)
KEYPOINT_FRAME = (384, 512)  # (width, height) of the keypoint coordinates


class DressCode(Dataset):
    """DressCode try-on pairs over one or more categories.

    Args:
        root: folder with upper_body/, lower_body/, dresses/.
        split: "train" or "test".
        categories: category folders to read, in order.
        order: "paired" or "unpaired" (test pair list to read; ignored for train).
        size: (height, width) to resize to, or None for the files' size.
        with_agnostic: compute ``agnostic_mask``.
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "test"] = "train",
        *,
        categories: Sequence[str] = tuple(CATEGORIES),
        order: Literal["paired", "unpaired"] = "paired",
        size: Size | None = None,
        with_agnostic: bool = True,
    ) -> None:
        self.root = require_dir(Path(root), "DressCode root")
        self.size = size
        self.with_agnostic = with_agnostic
        self.items: list[tuple[str, str, str]] = []  # (category folder, person file, garment file)
        for category in categories:
            if category not in CATEGORIES:
                raise ValueError(f"DressCode category must be one of {list(CATEGORIES)}, got {category!r}")
            folder = require_dir(self.root / category, f"DressCode {category}")
            for sub in ("images", "label_maps", "keypoints"):
                require_dir(folder / sub, f"DressCode {category}/{sub}")
            pair_file = "train_pairs.txt" if split == "train" else f"test_pairs_{order}.txt"
            rows = read_pair_lines(folder / pair_file, f"DressCode {category} pair list")
            self.items.extend((category, row[0], row[1]) for row in rows)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> keys.Sample:
        category, person, garment = self.items[index]
        folder = self.root / category
        identifier = Path(person).stem.rsplit("_", 1)[0]
        image = load_image(folder / "images" / person, self.size)
        size = output_size(self.size, image)
        parsing = load_label_tensor(folder / "label_maps" / f"{identifier}_4.png", ATR, size)
        pose = read_dresscode_keypoints(folder / "keypoints" / f"{identifier}_2.json")
        sample: keys.Sample = {
            keys.IMAGE: image,
            keys.GARMENT: load_image(folder / "images" / garment, size),
            keys.PARSING: parsing,
            keys.PARSING_LABELS: ATR.name,
            keys.KEYPOINTS: pose_tensor(pose, size),
            keys.CATEGORY: CATEGORIES[category],
            keys.NAME: Path(person).stem,
            keys.GARMENT_NAME: Path(garment).stem,
        }
        if self.with_agnostic:
            lip = convert_label_map(parsing.numpy(), ATR, LIP)
            mask = agnostic_mask(lip, CATEGORIES[category], pose.resized(size[1], size[0]))
            sample[keys.AGNOSTIC_MASK] = torch.from_numpy(mask.astype(np.float32))[None]  # (1, H, W)
        return sample


def read_dresscode_keypoints(path: Path) -> BodyPose:
    """A DressCode ``*_2.json`` as a ``BodyPose`` on its 384x512 keypoint frame.

    Points with x <= 0 or y <= 0 are missing; present points keep their score, or 1 when the
    score column is not positive.
    """
    require_file(path, "DressCode keypoints")
    try:
        rows = np.asarray(json.loads(path.read_text())["keypoints"], dtype=np.float32)
    except (KeyError, ValueError, TypeError) as error:
        raise DatasetFormatError(f"{path}: expected {{'keypoints': [[x, y, score, id], ...]}}: {error}") from error
    if rows.ndim != 2 or rows.shape[0] != 18 or rows.shape[1] < 2:
        raise DatasetFormatError(f"{path}: expected 18 keypoint rows, got shape {rows.shape}")
    present = (rows[:, 0] > 0) & (rows[:, 1] > 0)
    score = rows[:, 2] if rows.shape[1] > 2 else np.ones(18, dtype=np.float32)
    confidence = np.where(present, np.where(score > 0, score, 1.0), 0.0)
    array = np.stack([rows[:, 0], rows[:, 1], confidence], axis=1)  # (18, 3)
    return pose_from_array(array, *KEYPOINT_FRAME, source=str(path))
