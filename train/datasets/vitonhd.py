"""VITON-HD (Choi et al. 2021) in its published layout.

Layout (``root`` is the folder holding ``train/``, ``test/`` and the pair lists)::

    root/train_pairs.txt            "<person>.jpg <cloth>.jpg" per line (test_pairs.txt: unpaired)
    root/<split>/image/<person>.jpg                         person, 768x1024
    root/<split>/cloth/<cloth>.jpg                          in-shop upper garment
    root/<split>/cloth-mask/<cloth>.jpg (or .png)           garment mask
    root/<split>/image-parse-v3/<person>.png                LIP-indexed palette PNG
        (older copies: image-parse/)                        (index 10 marks the neck)
    root/<split>/openpose_json/<person>_keypoints.json      OpenPose BODY_25, pixels
        (older copies: openpose-json/)

Samples follow ``train.datasets.sample`` with keys image, garment, garment_mask, parsing
("lip"), agnostic_mask (upper-body recipe of ``models.parsing.agnostic_mask`` with the pose),
keypoints, category ("upper"), name, garment_name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ...models.parsing import LIP, agnostic_mask
from ...models.pose import read_openpose_json
from . import sample as keys
from .files import file_with_suffixes, first_existing_dir, read_pair_lines, require_dir
from .images import Size, image_size, load_image, load_label_tensor, load_mask, output_size, pose_tensor

PARSE_DIRS = ("image-parse-v3", "image-parse")
OPENPOSE_DIRS = ("openpose_json", "openpose-json")
MASK_SUFFIXES = (".jpg", ".png")


class VitonHD(Dataset):
    """VITON-HD try-on pairs.

    Args:
        root: folder with ``train/``, ``test/``, ``train_pairs.txt`` and ``test_pairs.txt``.
        split: "train" or "test".
        paired: when True, each person is paired with their own garment (the "paired" test
            setting) instead of the garment written in the pair list.
        size: (height, width) to resize to, or None for the files' size.
        with_agnostic: compute ``agnostic_mask`` (costs a dilation per sample).
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "test"] = "train",
        *,
        paired: bool = False,
        size: Size | None = None,
        with_agnostic: bool = True,
    ) -> None:
        self.root = require_dir(Path(root), "VITON-HD root")
        self.split_dir = require_dir(self.root / split, f"VITON-HD {split} split")
        self.image_dir = require_dir(self.split_dir / "image", "VITON-HD person image")
        self.cloth_dir = require_dir(self.split_dir / "cloth", "VITON-HD cloth")
        self.mask_dir = require_dir(self.split_dir / "cloth-mask", "VITON-HD cloth-mask")
        self.parse_dir = first_existing_dir(self.split_dir, PARSE_DIRS, "VITON-HD parsing")
        self.pose_dir = first_existing_dir(self.split_dir, OPENPOSE_DIRS, "VITON-HD OpenPose JSON")
        rows = read_pair_lines(self.root / f"{split}_pairs.txt", f"VITON-HD {split} pair list")
        self.pairs = [(row[0], row[0] if paired else row[1]) for row in rows]
        self.size = size
        self.with_agnostic = with_agnostic

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> keys.Sample:
        person, cloth = self.pairs[index]
        person_stem, cloth_stem = Path(person).stem, Path(cloth).stem
        image_path = self.image_dir / person
        width, height = image_size(image_path)
        image = load_image(image_path, self.size)
        size = output_size(self.size, image)
        pose = read_openpose_json(self.pose_dir / f"{person_stem}_keypoints.json", width, height, min_visible=0)
        parsing = load_label_tensor(
            file_with_suffixes(self.parse_dir, person_stem, (".png",), "VITON-HD parsing map"), LIP, size
        )
        sample: keys.Sample = {
            keys.IMAGE: image,
            keys.GARMENT: load_image(self.cloth_dir / cloth, size),
            keys.GARMENT_MASK: load_mask(
                file_with_suffixes(self.mask_dir, cloth_stem, MASK_SUFFIXES, "VITON-HD cloth mask"), size
            ),
            keys.PARSING: parsing,
            keys.PARSING_LABELS: LIP.name,
            keys.KEYPOINTS: pose_tensor(pose, size),
            keys.CATEGORY: "upper",
            keys.NAME: person_stem,
            keys.GARMENT_NAME: cloth_stem,
        }
        if self.with_agnostic:
            scaled = pose.resized(size[1], size[0])
            mask = agnostic_mask(parsing.numpy(), "upper", scaled)
            sample[keys.AGNOSTIC_MASK] = torch.from_numpy(mask.astype(np.float32))[None]  # (1, H, W)
        return sample
