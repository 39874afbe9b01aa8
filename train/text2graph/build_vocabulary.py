"""Regenerate ``models/text2graph/catalogue_vocabulary.py`` (the parser's catalogue garment types
and colour names) from data, not by hand:

    python -m atelier.train.text2graph.build_vocabulary --articles /path/to/articles.csv [...more.csv]

Sources:

- garment types: the ``product_type_name`` column of each H&M-layout ``articles.csv`` given, split
  at "/" ("Leggings/Tights" -> leggings, tights), lower case, a leading "other " dropped; pieces in
  ``NOT_GARMENTS`` ("unknown", "peaked" of "Cap/peaked", ...) are left out;
- colours: the ``colour_group_name`` column of the same tables ("Other Pink" -> pink; "Other" and
  "Unknown" left out), plus the colour names of the XKCD colour survey as matplotlib ships them
  (``matplotlib._color_data.XKCD_COLORS``; else CSS3's names from ``webcolors``) that are made only
  of basic colour words: a name is kept when each of its words is a single-word name found in both
  XKCD and CSS4 (the colours both lists agree on: "beige", "khaki", ...), one of XKCD's "-ish" words
  ("greyish", "yellowish") or a shade word ("light", "dark", "pale", "off") before a colour word.
  Names that the base lexicon or ``catalogue_words`` already use as another kind ("denim", "camel"
  as a material, "camo") are left out.

matplotlib or webcolors is needed only here (``pip install matplotlib``), never at run time; the
generated module is committed.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

from ...models.errors import AtelierError
from ...models.text2graph import catalogue_words as curated
from ...models.text2graph.lexicon import WordKind, lexicon_entries
from ..command_line import make_parser, run_cli

OUTPUT = Path(__file__).resolve().parents[2] / "models" / "text2graph" / "catalogue_vocabulary.py"
NOT_GARMENTS = frozenset({"unknown", "peaked", "hair", "other", "costumes", "items"})
SHADE_WORDS = frozenset({"light", "dark", "pale", "bright", "deep", "dusty", "off", "pastel", "neon", "dull"})
NOT_COLORS = frozenset({"other", "unknown", ""})


class VocabularySourceError(AtelierError, FileNotFoundError):
    """A source table or colour list is missing; the message names what to install or pass."""


def read_columns(paths: list[Path]) -> tuple[set[str], set[str]]:
    """(product type names, colour group names) of every table."""
    types: set[str] = set()
    colours: set[str] = set()
    for path in paths:
        if not path.is_file():
            raise VocabularySourceError(f"--articles {path}: no such file")
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"product_type_name", "colour_group_name"} - set(reader.fieldnames or [])
            if missing:
                raise VocabularySourceError(f"--articles {path}: lacks column(s) {sorted(missing)}")
            for row in reader:
                types.add(row["product_type_name"].strip())
                colours.add(row["colour_group_name"].strip())
    return types, colours


def garment_types(type_names: set[str]) -> list[str]:
    """Garment phrases from product type names ("Leggings/Tights" -> leggings, tights)."""
    found = set()
    for name in type_names:
        for piece in name.lower().split("/"):
            piece = " ".join(piece.split())
            piece = piece[len("other "):] if piece.startswith("other ") else piece
            if piece and piece not in NOT_GARMENTS:
                found.add(piece)
    return sorted(found)


def survey_colour_names() -> tuple[list[str], set[str]]:
    """(XKCD names, CSS names) from matplotlib, or (CSS3 names, CSS3 names) from webcolors."""
    try:
        from matplotlib import _color_data
    except ImportError:
        try:
            import webcolors
        except ImportError as error:
            raise VocabularySourceError("install matplotlib (XKCD colours) or webcolors (CSS3 colours)") from error
        names = list(webcolors.names("css3"))
        return names, set(names)
    xkcd = [key[len("xkcd:"):] for key in _color_data.XKCD_COLORS]
    return xkcd, {name.lower() for name in _color_data.CSS4_COLORS}


def colour_names(column_colours: set[str], survey: list[str], css: set[str], taken: set[str]) -> list[str]:
    """Catalogue colours plus survey names made of basic colour words, minus words of other kinds."""
    single = {name for name in survey if " " not in name and name.isalpha()}
    basic = {name for name in single if name in css} | {name for name in single if name.endswith("ish")}
    colours = set()
    for value in column_colours:
        value = " ".join(value.lower().split())
        value = value[len("other "):] if value.startswith("other ") else value
        if value not in NOT_COLORS:
            colours.add(value)
    for name in survey:
        words = name.split()
        if not all(word.isalpha() for word in words) or len(words) > 2:
            continue
        if all(word in basic for word in words) or (len(words) == 2 and words[0] in SHADE_WORDS and words[1] in basic):
            colours.add(name)
    return sorted(colour for colour in colours if colour not in taken)


def other_kind_phrases() -> set[str]:
    """Phrases the base lexicon or the curated lists use as something other than a colour."""
    taken = {phrase for phrase, kind in lexicon_entries().items() if kind is not WordKind.COLOR}
    taken |= set(curated.MATERIALS) | set(curated.PARTS) | set(curated.GARMENT_NOUNS) | set(curated.FINISH_STYLES)
    taken |= set(curated.FIT_STYLES) | set(curated.LENGTH_STYLES) | set(curated.IGNORED_WORDS)
    return {phrase.replace("-", " ") for phrase in taken} | taken


def render_module(garments: list[str], colours: list[str], sources: list[str]) -> str:
    """The generated module's text."""
    def block(name: str, values: list[str]) -> str:
        lines, line = [], "   "
        for value in values:
            item = f' "{value}",'
            if len(line) + len(item) > 116:
                lines.append(line)
                line = "   "
            line += item
        lines.append(line)
        return f"{name}: tuple[str, ...] = (\n" + "\n".join(lines) + "\n)\n"
    header = (
        '"""Generated by ``python -m atelier.train.text2graph.build_vocabulary``; do not edit by hand.\n\n'
        "Catalogue garment types (product_type_name) and colour names (colour_group_name plus the XKCD\n"
        "colour survey's names made of basic colour words). Sources: " + ", ".join(sources) + '.\n"""\n\n'
    )
    return header + block("GARMENT_TYPES", garments) + "\n" + block("COLORS", colours)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = make_parser("python -m atelier.train.text2graph.build_vocabulary", __doc__)
    parser.add_argument("--articles", type=Path, nargs="+", required=True, help="H&M-layout articles.csv file(s)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the generated module")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Write the generated module and print how many phrases of each kind it holds."""
    types, column_colours = read_columns(args.articles)
    survey, css = survey_colour_names()
    taken = other_kind_phrases()
    garments = [g for g in garment_types(types) if g not in taken or g in curated.GARMENT_NOUNS]
    colours = colour_names(column_colours, survey, css, taken)
    source = "matplotlib XKCD_COLORS" if len(survey) > 200 else "webcolors CSS3"
    sources = [f"{len(args.articles)} articles.csv table(s) ({len(types)} product types)", source]
    args.output.write_text(render_module(garments, colours, sources), encoding="utf-8")
    print(f"{args.output}: {len(garments)} garment types, {len(colours)} colours")


def main(argv: list[str] | None = None) -> None:
    """Entry point; a missing table or colour list is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
