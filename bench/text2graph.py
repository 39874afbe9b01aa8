"""Benchmark: prompts parsed per second by the default Text2Graph parser, in one run.

Not a test. Parses toy-world person captions (about 150 characters, 14 triples each), toy-world
outfit captions, the paper's three example prompts, the 100 real H&M descriptions of the labelled
sample (``train/text2graph/hm_labelled_sample.jsonl``, always there) and, with ``--articles``,
every article of your own H&M-layout ``articles.csv`` as "<colour> <product type>. <description>".
Each set is parsed --repeats times; the median pass is reported as prompts per second of this
process's CPU time (one core: the parser is single-threaded, and CPU time does not count the
waits of a shared machine) and of wall-clock time. Real-text sets are timed twice: "warm" keeps the
per-word spelling-correction cache between passes (a long catalogue run), "cold" clears it before
every pass (each prompt's words looked up afresh at first sight):

    python bench/text2graph.py --count 500 --repeats 5 [--articles /path/to/articles.csv]
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from atelier.train.command_line import make_parser
from atelier.models.text2graph import parse_prompt
from atelier.models.text2graph.tokens import clear_spelling_cache
from atelier.train.text2graph.catalogue import read_catalogue, read_labelled_sample
from atelier.train.toyworld import ToyWorld, ToyWorldConfig, outfit_caption

PAPER_PROMPTS = (
    "a navy blue jacket with a red straight-point collar and a blue belted waist.",
    "a blue shirt with brown collar",
    "Black cotton shirt with chest patch pocket, round neck, and featuring logo patch at the chest,",
)


def prompt_sets(count: int, articles: Path | None) -> dict[str, tuple[list[str], bool]]:
    """Name -> (prompts, is real text) for every set timed."""
    world = ToyWorld(ToyWorldConfig(height=64, width=64, num_people=count, num_outfits=count))
    people = [outfit_caption(world.design_person(i).garments)[0] for i in range(count)]
    outfits = [outfit_caption(world.design_outfit(i).items, lead="")[0] for i in range(count)]
    sets = {
        "toy world people": (people, False), "toy world outfits": (outfits, False),
        "paper examples": (list(PAPER_PROMPTS) * (count // 3), False),
        "H&M labelled sample": ([item.prompt for item in read_labelled_sample()], True),
    }
    if articles is not None:
        sets[f"{articles.name} articles"] = ([article.prompt for article in read_catalogue(articles)], True)
    return sets


def time_parsing(prompts: list[str], repeats: int, cold: bool) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) for one pass over ``prompts``."""
    parse_prompt(prompts[0])  # build the lexicon tables once
    cpu, wall = [], []
    for _ in range(repeats):
        if cold:
            clear_spelling_cache()
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        for prompt in prompts:
            parse_prompt(prompt)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    """Print one row per prompt set (two for real text: warm and cold)."""
    parser = make_parser("python bench/text2graph.py", __doc__)
    parser.add_argument("--count", type=int, default=500, help="prompts per toy set")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes (the median is reported)")
    parser.add_argument("--articles", type=Path, default=None, help="your H&M-layout articles.csv (optional)")
    args = parser.parse_args()
    print("| prompt set | prompts | mean characters | prompts / s (CPU, one core) | prompts / s (wall) | µs / prompt (CPU) |")
    print("|---|---|---|---|---|---|")
    for name, (prompts, real) in prompt_sets(args.count, args.articles).items():
        characters = sum(len(p) for p in prompts) / len(prompts)
        for cold in ((False, True) if real else (False,)):
            cpu, wall = time_parsing(prompts, args.repeats, cold)
            label = f"{name}, {'cold' if cold else 'warm'} spelling cache" if real else name
            print(f"| {label} | {len(prompts)} | {characters:.0f} | {len(prompts) / cpu:,.0f} | "
                  f"{len(prompts) / wall:,.0f} | {1e6 * cpu / len(prompts):.0f} |")


if __name__ == "__main__":
    main()
