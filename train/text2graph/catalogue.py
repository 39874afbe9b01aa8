"""Catalogue prompts from a user's own H&M-layout ``articles.csv`` (the table
``train.datasets.hm`` reads) and the hand-labelled sample of real descriptions.

A prompt is built as shops title a product: "<colour> <product type>. <description>", e.g.
"dark blue vest top. Jersey top with narrow shoulder straps." (``prompt="title"``), or the
description alone (``prompt="description"``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ...models.text2graph.schema import Triple, validate_triples
from ..datasets.files import DatasetFormatError, require_file

PromptStyle = Literal["title", "description"]
PROMPT_STYLES: tuple[str, ...] = ("title", "description")
CATALOGUE_COLUMNS = ("article_id", "product_type_name", "colour_group_name", "detail_desc")
LABELLED_SAMPLE = Path(__file__).with_name("hm_labelled_sample.jsonl")


@dataclass(frozen=True)
class CatalogueArticle:
    """One article: its id, its product type, group and colour columns, description and prompt."""

    article_id: str
    product_type: str
    product_group: str
    colour: str
    description: str
    prompt: str


@dataclass(frozen=True)
class LabelledPrompt:
    """A prompt of the labelled sample with the triples a careful reader expects."""

    article_id: str
    product_group: str
    prompt: str
    triples: tuple[Triple, ...]


def article_prompt(colour: str, product_type: str, description: str, style: PromptStyle = "title") -> str:
    """The text the parser sees for one article."""
    if style == "description":
        return description.strip()
    return f"{colour.strip().lower()} {product_type.strip().lower()}. {description.strip()}"


def read_catalogue(path: str | Path, style: PromptStyle = "title") -> list[CatalogueArticle]:
    """Articles with a description, in file order; the csv must hold ``CATALOGUE_COLUMNS``."""
    table = require_file(Path(path), "articles.csv")
    with table.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in CATALOGUE_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise DatasetFormatError(f"{table} lacks column(s) {missing}; expected the H&M articles.csv layout")
        articles = []
        for row in reader:
            description = (row["detail_desc"] or "").strip()
            if not description:
                continue
            colour, product_type = row["colour_group_name"] or "", row["product_type_name"] or ""
            articles.append(CatalogueArticle(
                article_id=row["article_id"].strip().zfill(10), product_type=product_type,
                product_group=row.get("product_group_name") or "", colour=colour, description=description,
                prompt=article_prompt(colour, product_type, description, style),
            ))
    return articles


def read_labelled_sample(path: str | Path = LABELLED_SAMPLE) -> list[LabelledPrompt]:
    """The hand-labelled prompts (JSON lines: article_id, product_group, prompt, triples)."""
    sample = require_file(Path(path), "labelled sample")
    prompts = []
    for number, line in enumerate(sample.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetFormatError(f"{sample}:{number}: invalid JSON: {error.msg}") from error
        triples = validate_triples(item["triples"], f"{sample}:{number}")
        prompts.append(LabelledPrompt(item["article_id"], item["product_group"], item["prompt"], tuple(triples)))
    return prompts
