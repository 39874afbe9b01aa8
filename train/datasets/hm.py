"""H&M Personalized Fashion Recommendations product data (articles.csv and images).

Layout::

    root/articles.csv                               article_id, prod_name, product_type_name,
                                                    product_group_name, graphical_appearance_name,
                                                    colour_group_name, detail_desc, ...
    root/images/<first 3 digits>/<article id>.jpg   article id zero-padded to 10 digits,
                                                    e.g. images/010/0108775015.jpg

The csv may hold the id with or without its leading zero; it is padded to 10 digits. Some
articles have no image in the release: ``missing_images="skip"`` (the default) leaves them out
and logs how many and which (first few); ``"raise"`` raises :class:`DatasetLayoutError` naming
the first missing file. Samples follow ``train.datasets.sample``: image, caption (``detail_desc``,
"" when empty), category (``product_type_name``), attributes (the columns in
:data:`ATTRIBUTE_COLUMNS`), name (the 10-digit article id).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Literal

from torch.utils.data import Dataset

from . import sample as keys
from .files import DatasetFormatError, DatasetLayoutError, require_dir, require_file
from .images import Size, load_image

logger = logging.getLogger("atelier.train.datasets.hm")

REQUIRED_COLUMNS = ("article_id", "product_type_name", "colour_group_name", "detail_desc")
ATTRIBUTE_COLUMNS = (
    "prod_name", "product_type_name", "product_group_name", "graphical_appearance_name", "colour_group_name",
)


def article_image_path(image_dir: Path, article_id: str) -> Path:
    """``image_dir/<first 3 digits>/<10-digit id>.jpg`` for an article id with or without padding."""
    padded = article_id.strip().zfill(10)
    return image_dir / padded[:3] / f"{padded}.jpg"


class HMArticles(Dataset):
    """H&M articles with their product photo and description.

    Args:
        root: folder with ``articles.csv`` and ``images/``.
        size: (height, width) to resize to, or None for the files' size.
        missing_images: "skip" (log and leave out) or "raise" for articles without an image file.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        size: Size | None = None,
        missing_images: Literal["skip", "raise"] = "skip",
    ) -> None:
        self.root = require_dir(Path(root), "H&M root")
        self.image_dir = require_dir(self.root / "images", "H&M images")
        articles = require_file(self.root / "articles.csv", "H&M articles.csv")
        self.size = size
        with articles.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing_columns = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing_columns:
                raise DatasetFormatError(f"{articles} lacks column(s) {missing_columns}")
            rows = list(reader)
        self.rows = []
        skipped = []
        for row in rows:
            path = article_image_path(self.image_dir, row["article_id"])
            if path.is_file():
                self.rows.append(row)
            elif missing_images == "raise":
                raise DatasetLayoutError(f"H&M image of article {row['article_id']} not found: {path}")
            else:
                skipped.append(row["article_id"].strip().zfill(10))
        if skipped:
            logger.warning(
                "H&M: %d of %d articles have no image and are skipped (e.g. %s)",
                len(skipped), len(rows), ", ".join(skipped[:5]),
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> keys.Sample:
        row = self.rows[index]
        article_id = row["article_id"].strip().zfill(10)
        return {
            keys.IMAGE: load_image(article_image_path(self.image_dir, article_id), self.size),
            keys.CAPTION: (row.get("detail_desc") or "").strip(),
            keys.CATEGORY: row["product_type_name"],
            keys.ATTRIBUTES: {column: row.get(column) or "" for column in ATTRIBUTE_COLUMNS},
            keys.NAME: article_id,
        }
