"""Evidence: triple precision / recall / F1 of the default parser on toy-world captions (clean and
with injected typos) and on the paper's examples. Prints a markdown table.

    python -m atelier.train.text2graph.parser_eval --count 1000

Typos: in each caption one word of at least 5 letters that the lexicon knows is changed by one
seeded edit (drop, double or swap a letter, never the first), the "noisy text" the paper names
as a limitation; scored with the parser's spelling correction on and off.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..command_line import add_seed_option, make_parser, run_cli
from ...models.text2graph.lexicon import lexicon_entries
from ...models.text2graph.parser import ParserConfig, parse_prompt
from ..metrics import corpus_triple_scores
from ..toyworld import ToyWorld, ToyWorldConfig, outfit_caption
from .paper_examples import PAPER_EXAMPLES


def add_typo(caption: str, rng: np.random.Generator) -> str:
    """``caption`` with one lexicon word (>= 5 letters) edited once."""
    known = {word for phrase in lexicon_entries() for word in phrase.replace("-", " ").split()}
    words = caption.split(" ")
    candidates = [i for i, word in enumerate(words) if word.strip(",") in known and len(word.strip(",")) >= 5]
    if not candidates:
        return caption
    index = candidates[int(rng.integers(len(candidates)))]
    word = words[index].strip(",")
    position = int(rng.integers(1, len(word) - 1))
    edit = int(rng.integers(3))
    if edit == 0:
        changed = word[:position] + word[position + 1:]
    elif edit == 1:
        changed = word[:position] + word[position] + word[position:]
    else:
        changed = word[:position] + word[position + 1] + word[position] + word[position + 2:]
    words[index] = words[index].replace(word, changed)
    return " ".join(words)


def evaluate(count: int, seed: int = 0) -> list[tuple[str, object]]:
    """(row name, TripleScores) for every set and parser setting."""
    world = ToyWorld(ToyWorldConfig(height=64, width=64, num_people=count, num_outfits=count, seed=seed))
    people = [outfit_caption(world.design_person(i).garments) for i in range(count)]
    outfits = [outfit_caption(world.design_outfit(i).items, lead="") for i in range(count)]
    rng = np.random.default_rng(seed)
    noisy = [(add_typo(caption, rng), truth) for caption, truth in people]
    rows = []
    settings = {"plain names": ParserConfig(entity_names="plain"), "auto names": ParserConfig(entity_names="auto")}
    for set_name, pairs in (("toy world people", people), ("toy world outfits", outfits)):
        for setting, config in settings.items():
            found = [parse_prompt(caption, config).triples for caption, _ in pairs]
            rows.append((f"{set_name}, {setting}", corpus_triple_scores(found, [t for _, t in pairs])))
    for setting, config in (("typos, correction on", ParserConfig(entity_names="plain")),
                            ("typos, correction off", ParserConfig(entity_names="plain", fuzzy=False))):
        found = [parse_prompt(caption, config).triples for caption, _ in noisy]
        rows.append((f"toy world people, {setting}", corpus_triple_scores(found, [t for _, t in noisy])))
    for example in PAPER_EXAMPLES:
        found = parse_prompt(example.prompt).triples
        rows.append((f"paper: \"{example.prompt[:40]}…\" ({example.source})",
                     corpus_triple_scores([found], [example.triples])))
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = make_parser("python -m atelier.train.text2graph.parser_eval", __doc__)
    parser.add_argument("--count", type=int, default=1000, help="toy-world captions scored")
    add_seed_option(parser, "toy-world seed of the captions")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Print the table."""
    print("| prompts | precision | recall | F1 | matched / predicted / expected |")
    print("|---|---|---|---|---|")
    for name, s in evaluate(args.count, args.seed):
        print(f"| {name} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.matched} / {s.predicted} / {s.expected} |")


def main(argv: list[str] | None = None) -> None:
    """Entry point; a user error is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
