"""The three text conditions compared in issue 6: the plain caption, the paper's linearised triple
prompt, and the bound per-entity phrases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ...models.text2graph.binding import bound_phrases
from ...models.text2graph.linearize import linearize_triples
from ...models.text2graph.schema import Triple
from .config import PROMPT_MODES  # noqa: F401  (defined with the settings, which import nothing heavy)

PromptMode = Literal["plain", "linearized", "bound"]


def prompt_texts(caption: str, triples: Sequence[Triple], mode: PromptMode) -> list[str]:
    """The text(s) one sample is encoded from: one text for plain and linearized, one per entity for bound."""
    if mode == "plain":
        return [caption]
    if mode == "linearized":
        return [linearize_triples(triples)]
    return [phrase.text for phrase in bound_phrases(triples)] or [caption]
