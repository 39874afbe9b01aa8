"""The triple schema: (entity, relation, value), the relations allowed, and JSON in and out.

The paper's Text2Graph names three relations, ``has-color``, ``has-feature`` and ``has-style``
(its example: (jacket, has-color, navy blue), (jacket, has-feature, collar), (collar, has-style,
straight-point)). Fashion needs a few more: ``has-material``, ``has-pattern``, ``has-fit`` and
``has-length``. The parser folds fit and length into ``has-style`` unless asked for the finer
relations (``ParserConfig.relation_set``), because the paper and the toy world's ground truth do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from ..errors import AtelierError

PAPER_RELATIONS: tuple[str, ...] = ("has-color", "has-feature", "has-style")
FASHION_RELATIONS: tuple[str, ...] = ("has-material", "has-pattern", "has-fit", "has-length")
RELATIONS: tuple[str, ...] = PAPER_RELATIONS + FASHION_RELATIONS
MAX_FIELD_WORDS = 6


class Triple(NamedTuple):
    """One fact of the garment graph: ``entity --relation--> value`` (a plain tuple underneath)."""

    entity: str
    relation: str
    value: str


class TripleSchemaError(AtelierError, ValueError):
    """Triples (or their JSON) break the schema; the message names the input and where."""


def _field(item: Any, index: int, name: str, position: int, source: str) -> str:
    value = item.get(name) if isinstance(item, dict) else item[position]
    if not isinstance(value, str) or not value.strip():
        raise TripleSchemaError(f"{source}: triple {index} has {name} {value!r}; expected a non-empty string")
    text = " ".join(value.strip().lower().split())
    if len(text.split()) > MAX_FIELD_WORDS:
        raise TripleSchemaError(
            f"{source}: triple {index} has a {name} of {len(text.split())} words ({text!r}); at most {MAX_FIELD_WORDS}"
        )
    return text


def validate_triples(items: Iterable[Any], source: str = "triples") -> list[Triple]:
    """Check and normalise triples given as 3-sequences or {"entity", "relation", "value"} dicts.

    Fields are lower-cased with single spaces; the relation must be one of ``RELATIONS``;
    duplicates are dropped (order kept). Raises TripleSchemaError naming ``source`` and the index.
    """
    if isinstance(items, (str, bytes, dict)) or not isinstance(items, Iterable):
        raise TripleSchemaError(f"{source}: expected a list of triples, got {type(items).__name__}")
    triples: list[Triple] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            missing = [key for key in Triple._fields if key not in item]
            if missing:
                raise TripleSchemaError(f"{source}: triple {index} lacks key(s) {missing}")
        elif not isinstance(item, (list, tuple)) or len(item) != 3:
            raise TripleSchemaError(
                f"{source}: triple {index} is {item!r}; expected [entity, relation, value] or an object with those keys"
            )
        entity, relation, value = (_field(item, index, name, pos, source) for pos, name in enumerate(Triple._fields))
        if relation not in RELATIONS:
            raise TripleSchemaError(f"{source}: triple {index} has relation {relation!r}; expected one of {list(RELATIONS)}")
        triples.append(Triple(entity, relation, value))
    return list(dict.fromkeys(triples))


def triples_to_json(triples: Iterable[Triple]) -> str:
    """Triples as an indented JSON list of [entity, relation, value] (one triple per line)."""
    rows = [json.dumps(list(triple)) for triple in triples]
    return "[\n  " + ",\n  ".join(rows) + "\n]" if rows else "[]"


def triples_from_json(text: str, source: str = "triples_json") -> list[Triple]:
    """Parse and validate JSON triples; a syntax error names ``source``, the line and the column."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TripleSchemaError(f"{source}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from error
    return validate_triples(data, source)
