"""(image, triples) pairs for the Text2Graph LoRA: the toy world (people, or outfits laid out in a
2x2 grid) or H&M articles (``detail_desc`` parsed into triples). Samples follow
``train.datasets.sample``: ``image`` (3, H, W) in [0, 1], ``caption``, plus ``triples``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ...models.text2graph.parser import parse_prompt
from ...models.text2graph.schema import Triple
from ..datasets import sample as keys
from ..datasets.hm import HMArticles
from ..toyworld import ToyWorld, ToyWorldConfig
from ..toyworld.captions import outfit_caption

TRIPLES = "triples"
GRID_SLOTS: tuple[str, ...] = ("upper", "lower", "shoes", "bag")


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0  # (3, H, W)


class ToyWorldPeople(Dataset):
    """Toy-world people with their captions and ground-truth triples.

    Args:
        size: image side in pixels.
        count: number of samples.
        seed: the toy world's seed.
    """

    def __init__(self, size: int, count: int, seed: int = 0) -> None:
        self.world = ToyWorld(ToyWorldConfig(height=size, width=size, seed=seed, num_people=count))

    def __len__(self) -> int:
        return len(self.world)

    def __getitem__(self, index: int) -> dict:
        person = self.world.person(index)
        return {keys.IMAGE: _to_tensor(person.image), keys.CAPTION: person.caption, TRIPLES: list(person.triples)}


def outfit_grid(items: dict[str, np.ndarray]) -> np.ndarray:
    """In-shop pictures of upper, lower, shoes, bag as a 2x2 grid, (2S, 2S, 3) uint8."""
    top = np.concatenate([items["upper"], items["lower"]], axis=1)  # (S, 2S, 3)
    bottom = np.concatenate([items["shoes"], items["bag"]], axis=1)  # (S, 2S, 3)
    return np.concatenate([top, bottom], axis=0)  # (2S, 2S, 3)


class ToyWorldOutfitGrid(Dataset):
    """Toy-world outfits as a fixed 2x2 layout (upper, lower / shoes, bag), so the colour in each
    quadrant can be checked against the entity the prompt gave it (attribute binding).

    Args:
        size: the grid's side in pixels (each item is size/2).
        count: number of outfits.
        seed: the toy world's seed.
    """

    def __init__(self, size: int, count: int, seed: int = 0) -> None:
        self.world = ToyWorld(ToyWorldConfig(height=size // 2, width=size // 2, seed=seed, num_outfits=count))

    def __len__(self) -> int:
        return self.world.config.num_outfits

    def __getitem__(self, index: int) -> dict:
        outfit = self.world.outfit(index)
        image = outfit_grid({slot: outfit.items[slot].shop_image for slot in GRID_SLOTS})
        specs = {slot: outfit.items[slot].spec for slot in GRID_SLOTS}
        caption, triples = outfit_caption(specs, lead="")
        return {keys.IMAGE: _to_tensor(image), keys.CAPTION: caption, TRIPLES: list(triples)}


def hm_triples(caption: str, product_type: str, colour: str) -> list[Triple]:
    """Triples of an H&M article: ``detail_desc`` parsed, plus (garment, has-color, colour_group_name)
    when the description names no colour of its first garment."""
    triples = parse_prompt(caption).triples
    garment = triples[0].entity if triples else product_type.strip().lower()
    colour = colour.strip().lower()
    if garment and colour and not any(t.entity == garment and t.relation == "has-color" for t in triples):
        triples.append(Triple(garment, "has-color", colour))
    return triples


class HMTriplePairs(Dataset):
    """H&M articles with triples from ``hm_triples``.

    Args:
        root: folder with ``articles.csv`` and ``images/`` (see ``train.datasets.hm``).
        size: image side in pixels.
    """

    def __init__(self, root: str | Path, size: int) -> None:
        self.articles = HMArticles(root, size=(size, size))

    def __len__(self) -> int:
        return len(self.articles)

    def __getitem__(self, index: int) -> dict:
        sample = self.articles[index]
        attributes = sample[keys.ATTRIBUTES]
        triples = hm_triples(sample[keys.CAPTION], sample[keys.CATEGORY], attributes["colour_group_name"])
        return {keys.IMAGE: sample[keys.IMAGE], keys.CAPTION: sample[keys.CAPTION], TRIPLES: triples}


def collate(samples: list[dict]) -> dict:
    """Stack images; keep captions and triples as lists."""
    return {
        keys.IMAGE: torch.stack([s[keys.IMAGE] for s in samples]),  # (B, 3, H, W)
        keys.CAPTION: [s[keys.CAPTION] for s in samples],
        TRIPLES: [s[TRIPLES] for s in samples],
    }
