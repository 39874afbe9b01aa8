"""The paper's "triple prompt": the graph written out as text for the text encoder, e.g.
"(jacket, has-color, navy blue), (jacket, has-feature, collar), (collar, has-style, straight-point)".
"""

from __future__ import annotations

from collections.abc import Iterable

from .schema import Triple


def linearize_triples(triples: Iterable[Triple]) -> str:
    """Triples as the paper prints them: "(entity, relation, value)" joined by ", "."""
    return ", ".join(f"({entity}, {relation}, {value})" for entity, relation, value in triples)
