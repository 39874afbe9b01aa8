"""Write a PNG contact sheet of toy-world samples, for people to look at.

    python -m atelier.train.toyworld.contact_sheet --out sheet.png [--size 256 --count 8 --seed 0 --outfits 4]

Layout: a header line naming the columns, then one row per person — the person, its LIP parsing
coloured with LIP_PALETTE, the same person in the second pose, and the in-shop pictures of the
upper garment (or dress), lower garment, shoes and bag — and one row per outfit (its four in-shop
items and the rule's verdict). Each row has a caption strip under it. The sheet is
``7 * size`` wide and ``HEADER_HEIGHT + (count + outfits) * (size + CAPTION_HEIGHT)`` tall.
"""

import argparse
import logging
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..command_line import add_out_option, make_parser, output_file, run_cli
from ...models.labels import LIP_PALETTE
from .config import ToyWorldConfig
from .world import GarmentImage, ToyWorld

SHEET_FILE = "contact_sheet.png"
logger = logging.getLogger("atelier.train.toyworld.contact_sheet")

COLUMNS: tuple[str, ...] = ("person", "LIP parsing", "second pose", "upper / dress", "lower", "shoes", "bag")
HEADER_HEIGHT = 16
CAPTION_HEIGHT = 48
FONT_SIZE = 11
EMPTY_TILE_RGB = (245, 245, 245)
TEXT_RGB = (20, 20, 20)


def colorize_parsing(parsing: np.ndarray) -> np.ndarray:
    """(H, W) LIP label map -> (H, W, 3) uint8 picture in LIP_PALETTE colours."""
    palette = np.array(LIP_PALETTE, dtype=np.uint8)  # (20, 3)
    return palette[parsing]


def sheet_size(size: int, count: int, outfits: int) -> tuple[int, int]:
    """(width, height) in pixels of a sheet with ``count`` people and ``outfits`` outfits."""
    return len(COLUMNS) * size, HEADER_HEIGHT + (count + outfits) * (size + CAPTION_HEIGHT)


def _tile(image: np.ndarray | None, size: int) -> Image.Image:
    if image is None:
        return Image.new("RGB", (size, size), EMPTY_TILE_RGB)
    return Image.fromarray(image).resize((size, size), Image.NEAREST)


def _shop(garments: dict[str, GarmentImage], *slots: str) -> np.ndarray | None:
    for slot in slots:
        if slot in garments:
            return garments[slot].shop_image
    return None


def _caption(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, text: str, top: int, width: int) -> None:
    characters = max(20, int(width / (FONT_SIZE * 0.55)))
    lines = textwrap.wrap(text, characters)[: CAPTION_HEIGHT // (FONT_SIZE + 2)]
    for number, line in enumerate(lines):
        draw.text((4, top + 2 + number * (FONT_SIZE + 2)), line, fill=TEXT_RGB, font=font)


def build_sheet(size: int = 256, count: int = 8, seed: int = 0, outfits: int = 4) -> Image.Image:
    """Render ``count`` people and ``outfits`` outfits of the world seeded ``seed`` at size x size."""
    config = ToyWorldConfig(height=size, width=size, seed=seed, num_people=max(count, 1), num_outfits=max(outfits, 1))
    world = ToyWorld(config)
    width, height = sheet_size(size, count, outfits)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=FONT_SIZE)
    for column, title in enumerate(COLUMNS):
        draw.text((column * size + 4, 2), title, fill=TEXT_RGB, font=font)
    row_height = size + CAPTION_HEIGHT
    for index in range(count):
        pair = world.pose_pair(index)
        person = pair.source
        tiles = [
            person.image, colorize_parsing(person.parsing), pair.target.image,
            _shop(person.garments, "dress", "upper"), _shop(person.garments, "lower"),
            _shop(person.garments, "shoes"), _shop(person.garments, "bag"),
        ]
        top = HEADER_HEIGHT + index * row_height
        for column, tile in enumerate(tiles):
            sheet.paste(_tile(tile, size), (column * size, top))
        text = f"#{index} {person.pose.name} -> {pair.target.pose.name}: {person.caption}"
        _caption(draw, font, text, top + size, width)
    for number in range(outfits):
        outfit = world.outfit(number)
        top = HEADER_HEIGHT + (count + number) * row_height
        for column, slot in enumerate(("upper", "lower", "shoes", "bag"), start=3):
            sheet.paste(_tile(outfit.items[slot].shop_image, size), (column * size, top))
        verdict = "compatible" if outfit.compatible else "incompatible (" + "; ".join(outfit.violations) + ")"
        draw.text((4, top + 4), f"outfit #{number}", fill=TEXT_RGB, font=font)
        _caption(draw, font, f"outfit #{number}, {verdict}: {outfit.caption}", top + size, width)
    return sheet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = make_parser("python -m atelier.train.toyworld.contact_sheet", __doc__)
    add_out_option(parser, f"the sheet is written there as {SHEET_FILE} (a path ending in .png is that file)")
    parser.add_argument("--size", type=int, default=256, help="tile side in pixels (the samples' resolution)")
    parser.add_argument("--count", type=int, default=8, help="number of people (rows)")
    parser.add_argument("--outfits", type=int, default=4, help="number of outfit rows after the people")
    parser.add_argument("--seed", type=int, default=0, help="world seed")
    args = parser.parse_args(argv)
    if args.count < 0 or args.outfits < 0:
        parser.error(f"--count and --outfits must be non-negative, got {args.count} and {args.outfits}")
    return args


def main(argv: list[str] | None = None) -> Path:
    """Build the sheet and write it; returns the path written."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace) -> Path:
    """Build the sheet and write it; returns the path written."""
    path = output_file(args.out, SHEET_FILE)
    sheet = build_sheet(args.size, args.count, args.seed, args.outfits)
    sheet.save(path)
    logger.info("wrote %s (%dx%d)", path, *sheet.size)
    return path


if __name__ == "__main__":
    print(main())
