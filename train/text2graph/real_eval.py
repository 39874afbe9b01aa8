"""Evidence: the default Text2Graph parser on real shop text, next to its toy-world scores.

    python -m atelier.train.text2graph.real_eval --articles /path/to/articles.csv

Reads your own copy of an H&M-layout ``articles.csv`` (columns article_id, product_type_name,
colour_group_name, detail_desc; the table ``train.datasets.hm`` reads) and prints a markdown table:

- empty-graph rate: prompts that gave no triple;
- product-type recall: articles whose graph has an entity named by their ``product_type_name``
  (read through the parser's lexicon: "Leggings/Tights" is leggings or tights), over articles whose
  product type the lexicon knows as a garment (that share is printed too);
- colour recall: articles whose graph has a ``has-color`` triple with the ``colour_group_name``
  value ("Other Pink" -> pink), over articles whose colour is written in their prompt;
- triple precision / recall / F1 on the committed hand-labelled sample
  (``hm_labelled_sample.jsonl``: 100 H&M descriptions; see ``hm_labelled_sample.md``);
- the toy world's F1 (``parser_eval``) beside them.

``--llm FOLDER`` also scores the local-LLM backend (``LLMTripleExtractor``) on the labelled sample.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...models.text2graph.lexicon import WordKind
from ...models.text2graph.parser import ParserConfig, parse_prompt
from ...models.text2graph.schema import Triple
from ...models.text2graph.tokens import split_words, tag_spans
from ..command_line import make_parser, run_cli
from ..metrics import corpus_triple_scores
from ..metrics.triples import TripleScores
from .catalogue import (
    LABELLED_SAMPLE,
    PROMPT_STYLES,
    CatalogueArticle,
    LabelledPrompt,
    read_catalogue,
    read_labelled_sample,
)
from .parser_eval import evaluate as toy_world_scores

NOT_COLOURS = frozenset({"", "other", "unknown"})


@dataclass(frozen=True)
class Rate:
    """hits / total as a fraction (0.0 when there is nothing to count)."""

    hits: int
    total: int

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else 0.0


@dataclass(frozen=True)
class CatalogueScores:
    """What the parser did on a catalogue table.

    Args:
        articles: articles with a description.
        empty: prompts that gave no triple.
        product_type: product-type recall (over articles whose type the lexicon knows).
        product_type_known: articles whose product type the lexicon knows, over all.
        colour: colour recall (over articles whose colour is written in the prompt).
        colour_on_product: the colour on the product-type entity itself.
    """

    articles: int
    empty: Rate
    product_type: Rate
    product_type_known: Rate
    colour: Rate
    colour_on_product: Rate


def product_type_garments(product_type: str) -> frozenset[str]:
    """The garment phrases the lexicon reads in a product type name ("Leggings/Tights" -> both)."""
    spans, _ = tag_spans(product_type, fuzzy=False)
    return frozenset(span.text for span in spans if span.kind is WordKind.GARMENT)


def colour_value(colour: str) -> str:
    """The colour column as a triple value: lower case, "Other Pink" -> "pink"; "" for none."""
    value = " ".join(colour.lower().split())
    value = value[len("other "):] if value.startswith("other ") else value
    return "" if value in NOT_COLOURS else value


def _entity_base(name: str) -> str:
    """An entity name without its number ("shirt 2" -> "shirt")."""
    head, _, tail = name.rpartition(" ")
    return head if head and tail.isdigit() else name


def score_catalogue(articles: Sequence[CatalogueArticle], config: ParserConfig | None = None) -> CatalogueScores:
    """Empty-graph rate, product-type recall and colour recall of the default parser."""
    empty = type_hits = type_known = colour_hits = colour_on_product = colour_total = 0
    for article in articles:
        triples = parse_prompt(article.prompt, config).triples
        empty += not triples
        garments = product_type_garments(article.product_type)
        entities = {_entity_base(t.entity) for t in triples}
        if garments:
            type_known += 1
            type_hits += bool(garments & entities)
        colour = colour_value(article.colour)
        if colour and f" {' '.join(split_words(colour))} " in f" {' '.join(split_words(article.prompt))} ":
            colour_total += 1
            written = split_words(colour)
            coloured = {_entity_base(t.entity) for t in triples
                        if t.relation == "has-color" and split_words(t.value) == written}
            colour_hits += bool(coloured)
            colour_on_product += bool(coloured & garments)
    count = len(articles)
    return CatalogueScores(
        articles=count, empty=Rate(empty, count), product_type=Rate(type_hits, type_known),
        product_type_known=Rate(type_known, count), colour=Rate(colour_hits, colour_total),
        colour_on_product=Rate(colour_on_product, colour_total),
    )


def score_labelled(sample: Sequence[LabelledPrompt], extract: Callable[[str], list[Triple]]) -> TripleScores:
    """Micro-averaged triple precision / recall / F1 of ``extract`` on the labelled sample."""
    return corpus_triple_scores([extract(item.prompt) for item in sample], [item.triples for item in sample])


def _rate(rate: Rate) -> str:
    return f"{100 * rate.value:.1f}% ({rate.hits} / {rate.total})"


def _scores_row(name: str, scores: TripleScores) -> str:
    return (f"| {name} | P {scores.precision:.3f} · R {scores.recall:.3f} · F1 {scores.f1:.3f} "
            f"({scores.matched} / {scores.predicted} / {scores.expected}) |")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = make_parser("python -m atelier.train.text2graph.real_eval", __doc__)
    parser.add_argument("--articles", type=Path, required=True, help="your H&M-layout articles.csv")
    parser.add_argument("--prompt", choices=PROMPT_STYLES, default="title",
                        help="title: '<colour> <product type>. <description>'; description: the description alone")
    parser.add_argument("--sample", type=Path, default=LABELLED_SAMPLE, help="hand-labelled prompts (JSON lines)")
    parser.add_argument("--toy-count", type=int, default=300, help="toy-world captions scored beside (0: skip)")
    parser.add_argument("--llm", type=Path, default=None, help="a local causal-LM folder to score on the sample too")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Print the table."""
    articles = read_catalogue(args.articles, args.prompt)
    sample = read_labelled_sample(args.sample)
    llm = None
    if args.llm is not None:
        from ...models.text2graph.llm import LLMTripleExtractor

        llm = LLMTripleExtractor.from_pretrained(args.llm)
    catalogue = score_catalogue(articles)
    print(f"| {args.articles.name} ({catalogue.articles} articles, prompt: {args.prompt}) | value |")
    print("|---|---|")
    print(f"| empty-graph rate | {_rate(catalogue.empty)} |")
    print(f"| product-type recall | {_rate(catalogue.product_type)} |")
    print(f"| … product types the lexicon knows | {_rate(catalogue.product_type_known)} |")
    print(f"| colour recall (colour written in the prompt) | {_rate(catalogue.colour)} |")
    print(f"| … on the product-type entity | {_rate(catalogue.colour_on_product)} |")
    print(_scores_row(f"labelled sample ({len(sample)} prompts), rule parser", score_labelled(
        sample, lambda prompt: parse_prompt(prompt).triples)))
    if llm is not None:
        fallbacks = 0

        def extract(prompt: str) -> list[Triple]:
            nonlocal fallbacks
            result = llm.parse(prompt)
            fallbacks += result.backend != "llm"
            return result.triples

        scores = score_labelled(sample, extract)
        print(_scores_row(f"labelled sample, LLM backend {args.llm.name} ({fallbacks} answers fell back)", scores))
    if args.toy_count > 0:
        for name, scores in toy_world_scores(args.toy_count):
            if name.startswith("toy world") and "typos" not in name:
                print(_scores_row(f"{name} ({args.toy_count} captions)", scores))


def main(argv: list[str] | None = None) -> None:
    """Entry point; a missing or malformed file is one line (--debug: the traceback)."""
    run_cli(parse_args, run, argv)


if __name__ == "__main__":
    main()
