"""Polyvore Outfits (Vasileva et al. 2018) in its published layout.

Layout (``root`` is the ``polyvore_outfits`` folder, or its parent)::

    root/<variant>/<split>.json        [{"set_id": "...", "items": [{"item_id": "...", "index": 1}, ...]}, ...]
                                       variant: nondisjoint or disjoint; split: train, valid, test
    root/polyvore_item_metadata.json   {"<item_id>": {"semantic_category": "tops", "title": ..., ...}}
    root/images/<item_id>.jpg

Samples follow ``train.datasets.sample``: item_images (N, 3, H, W) in outfit order (by
``index``), item_valid (N,), item_ids, item_categories (``semantic_category``: tops, bottoms,
shoes, bags, outerwear, all-body, accessories, jewellery, hats, scarves, sunglasses), name
(set_id). Outfits have different lengths: set ``max_items`` to pad (item_valid False, zero
images, empty strings) or truncate every outfit to one length so the default collate batches
them; without it, use batch size 1 or your own collate. Items of different sizes need ``size``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import Dataset

from . import sample as keys
from .files import DatasetFormatError, require_dir, require_file
from .images import Size, load_image

OUTFITS_FOLDER = "polyvore_outfits"


class PolyvoreOutfits(Dataset):
    """Polyvore outfits as sets of item images with their semantic categories.

    Args:
        root: the ``polyvore_outfits`` folder (or the folder that contains it).
        split: "train", "valid" or "test".
        variant: "nondisjoint" or "disjoint".
        size: (height, width) to resize every item to, or None for the files' size.
        max_items: pad or truncate every outfit to this many items (None: keep each length).
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "valid", "test"] = "train",
        *,
        variant: Literal["nondisjoint", "disjoint"] = "nondisjoint",
        size: Size | None = None,
        max_items: int | None = None,
    ) -> None:
        root = Path(root)
        if (root / OUTFITS_FOLDER).is_dir():
            root = root / OUTFITS_FOLDER
        self.root = require_dir(root, "Polyvore Outfits root")
        self.image_dir = require_dir(self.root / "images", "Polyvore images")
        outfit_file = require_file(self.root / variant / f"{split}.json", f"Polyvore {variant} {split} outfits")
        metadata_file = require_file(self.root / "polyvore_item_metadata.json", "Polyvore item metadata")
        self.metadata = _read_json(metadata_file)
        self.outfits = [
            _parse_outfit(outfit, outfit_file, number) for number, outfit in enumerate(_read_json(outfit_file))
        ]
        for set_id, item_ids in self.outfits:
            missing = [item for item in item_ids if item not in self.metadata]
            if missing:
                raise DatasetFormatError(
                    f"{metadata_file} has no entry for item(s) {missing[:5]} of outfit {set_id} in {outfit_file}"
                )
        self.size = size
        self.max_items = max_items

    def __len__(self) -> int:
        return len(self.outfits)

    def category(self, item_id: str) -> str:
        """Semantic category of an item ("" when the metadata has none)."""
        return str(self.metadata[item_id].get("semantic_category", ""))

    def __getitem__(self, index: int) -> keys.Sample:
        set_id, item_ids = self.outfits[index]
        if self.max_items is not None:
            item_ids = item_ids[: self.max_items]
        images = [load_image(self.image_dir / f"{item}.jpg", self.size) for item in item_ids]
        if len({tuple(image.shape) for image in images}) > 1:
            raise DatasetFormatError(
                f"Polyvore outfit {set_id} has items of different sizes; pass size=(height, width) to resize them"
            )
        categories = [self.category(item) for item in item_ids]
        valid = [True] * len(images)
        if self.max_items is not None and len(images) < self.max_items:
            padding = self.max_items - len(images)
            images += [torch.zeros_like(images[0])] * padding
            item_ids = item_ids + [""] * padding
            categories += [""] * padding
            valid += [False] * padding
        return {
            keys.ITEM_IMAGES: torch.stack(images),  # (N, 3, H, W)
            keys.ITEM_VALID: torch.tensor(valid, dtype=torch.bool),
            keys.ITEM_IDS: list(item_ids),
            keys.ITEM_CATEGORIES: categories,
            keys.NAME: set_id,
        }


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DatasetFormatError(f"{path} is not valid JSON: {error}") from error


def _parse_outfit(outfit: dict, path: Path, number: int) -> tuple[str, list[str]]:
    try:
        items = sorted(outfit["items"], key=lambda item: int(item["index"]))
        item_ids = [str(item["item_id"]) for item in items]
        set_id = str(outfit["set_id"])
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetFormatError(
            f"{path}: outfit #{number} must have 'set_id' and 'items' with 'item_id' and 'index' ({error!r})"
        ) from error
    if not item_ids:
        raise DatasetFormatError(f"{path}: outfit {set_id} has no items")
    return set_id, item_ids
