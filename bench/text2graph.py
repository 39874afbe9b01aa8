"""Benchmark: prompts parsed per second by the default Text2Graph parser, in one run.

Not a test. Parses toy-world person captions (about 150 characters, 14 triples each), toy-world
outfit captions and the paper's three example prompts, each set repeated, and prints prompts per
second and microseconds per prompt (median of --repeats timed passes over the same prompts):

    python bench/text2graph.py --count 500 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

from atelier.models.text2graph import parse_prompt
from atelier.train.toyworld import ToyWorld, ToyWorldConfig, outfit_caption

PAPER_PROMPTS = (
    "a navy blue jacket with a red straight-point collar and a blue belted waist.",
    "a blue shirt with brown collar",
    "Black cotton shirt with chest patch pocket, round neck, and featuring logo patch at the chest,",
)


def prompt_sets(count: int) -> dict[str, list[str]]:
    """The prompt sets timed: toy-world person and outfit captions, and the paper's examples."""
    world = ToyWorld(ToyWorldConfig(height=64, width=64, num_people=count, num_outfits=count))
    people = [outfit_caption(world.design_person(i).garments)[0] for i in range(count)]
    outfits = [outfit_caption(world.design_outfit(i).items, lead="")[0] for i in range(count)]
    return {"toy world people": people, "toy world outfits": outfits, "paper examples": list(PAPER_PROMPTS) * (count // 3)}


def time_parsing(prompts: list[str], repeats: int) -> float:
    """Median seconds for one pass over ``prompts``."""
    parse_prompt(prompts[0])  # build the lexicon tables once
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for prompt in prompts:
            parse_prompt(prompt)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    """Print one row per prompt set."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500, help="prompts per set")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes (the median is reported)")
    args = parser.parse_args()
    print("| prompt set | prompts | mean characters | prompts / s | µs / prompt |")
    print("|---|---|---|---|---|")
    for name, prompts in prompt_sets(args.count).items():
        seconds = time_parsing(prompts, args.repeats)
        characters = sum(len(p) for p in prompts) / len(prompts)
        print(f"| {name} | {len(prompts)} | {characters:.0f} | {len(prompts) / seconds:,.0f} | "
              f"{1e6 * seconds / len(prompts):.0f} |")


if __name__ == "__main__":
    main()
