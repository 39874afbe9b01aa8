"""The paper's example prompts with their triples. The paper prints triples for the first one only;
the other two (from its results figures) are annotated here with the same relations, reading
"logo patch" as a pattern (the toy world's convention) and leaving out the location "at the chest"
(no relation for it)."""

from __future__ import annotations

from dataclasses import dataclass

from ...models.text2graph.llm import PAPER_EXAMPLE_PROMPT, PAPER_EXAMPLE_TRIPLES
from ...models.text2graph.schema import Triple

T = Triple


@dataclass(frozen=True)
class PaperExample:
    """One prompt, its expected triples and where they come from ("paper" or "annotated")."""

    prompt: str
    triples: tuple[Triple, ...]
    source: str


PAPER_EXAMPLES: tuple[PaperExample, ...] = (
    PaperExample(PAPER_EXAMPLE_PROMPT, PAPER_EXAMPLE_TRIPLES, "paper"),
    PaperExample("A navy blue jacket with red straight-point collar and blue belted waist", PAPER_EXAMPLE_TRIPLES,
                 "paper (results-section wording)"),
    PaperExample("a blue shirt with brown collar", (
        T("shirt", "has-color", "blue"), T("shirt", "has-feature", "collar"), T("collar", "has-color", "brown"),
    ), "annotated"),
    PaperExample("Black cotton shirt with chest patch pocket, round neck, and featuring logo patch at the chest,", (
        T("shirt", "has-color", "black"), T("shirt", "has-material", "cotton"), T("shirt", "has-feature", "pocket"),
        T("pocket", "has-style", "chest patch"), T("shirt", "has-feature", "neck"), T("neck", "has-style", "round"),
        T("shirt", "has-pattern", "logo patch"),
    ), "annotated"),
)
