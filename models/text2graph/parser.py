"""The default Text2Graph parser: deterministic, offline, lexicon-driven (paper: "Text2Graph module
converts natural language into semantic triples"; the paper uses an LLM, see ``llm`` for that).

How a prompt is read. It is a run of noun phrases; a phrase is modifiers followed by a head noun.

- A GARMENT head starts an entity and becomes the *anchor*; its modifiers become (garment,
  has-color / has-material / has-style / has-pattern, ...). "the shirt" after a shirt refers to it.
- A PART head hangs from the anchor: (anchor, has-feature, part), then its own modifiers, so "a navy
  blue jacket with a red straight-point collar" gives (collar, has-color, red), never red on the
  jacket. A part before any garment stands alone (no has-feature triple).
- A PATTERN head: (anchor, has-pattern, pattern) and its colours (pattern, has-color, colour).
- Modifiers with no head after them ("a jacket in navy blue", "a dress, red") go to the last head
  when a hard boundary ("with", "featuring", ".", ";", end of text) is reached; soft boundaries
  ("and", ",") keep them waiting, so "a red and blue shirt" colours the shirt twice.
- "without"/"no"/"not" drop the next phrase (listed in ``ParseResult.negated``); a head after "at",
  "on", "down", "along" is a location ("logo patch at the chest") and gives no triple.

The paper's limitations, as behaviour: noisy text (misspellings within difflib ratio 0.8 of a
lexicon word with the same first letter are corrected and listed; other unknown words are listed
and ignored); long prompts are parsed whole (the CLIP window is the encoder's concern); ambiguous
prompts: with ``entity_names="auto"`` a part or pattern shared by two garments is named after each
("shirt checks", "shorts checks") and a second garment of the same kind is numbered ("shirt 2").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from ..errors import AtelierError
from .lexicon import STYLE_GROUPS, WordKind
from .schema import Triple
from .tokens import Span, tag_spans

logger = logging.getLogger("atelier.text2graph.parser")

EntityNames = Literal["auto", "plain", "qualified"]
RelationSet = Literal["paper", "fine"]
ENTITY_NAMES: tuple[str, ...] = ("auto", "plain", "qualified")
RELATION_SETS: tuple[str, ...] = ("paper", "fine")
HARD_BOUNDARIES = frozenset({"with", "featuring", "has", "having", "in", "plus", ".", ";", ":", "(", ")", "!", "?"})
NEGATIONS = frozenset({"without", "no", "not"})
LOCATIONS = frozenset({"at", "on", "down", "along", "around", "across"})
DEFINITE = frozenset({"the", "its", "this", "that"})
COMMON_WORDS = frozenset({
    "a", "an", "and", "or", "the", "of", "for", "to", "is", "are", "its", "their", "her", "his", "this", "that",
    "person", "wearing", "carrying", "woman", "women", "man", "men", "model", "while", "where", "which", "there",
    "these", "those", "other", "about", "under", "above", "below", "inside", "outside", "chest", "detail",
    "details", "design", "fabric", "made", "side", "sides", "style", "styled", "small", "large", "shaped",
    "photo", "studio", "full", "body", "girl", "wears", "worn", "paired", "along", "around", "across", "something",
}) | HARD_BOUNDARIES | NEGATIONS | LOCATIONS
MODIFIER_KINDS = frozenset({WordKind.COLOR, WordKind.MATERIAL, WordKind.STYLE, WordKind.PATTERN_ADJECTIVE})
HEAD_KINDS = frozenset({WordKind.GARMENT, WordKind.PART, WordKind.PATTERN})


class ParserConfigError(AtelierError, ValueError):
    """A ParserConfig field has a value it does not accept."""


@dataclass(frozen=True)
class ParserConfig:
    """Options of the default parser.

    Args:
        entity_names: "plain" (the paper's and the toy world's: "collar", "checks"), "qualified"
            (parts and patterns named after their garment: "shirt collar"), or "auto" (plain unless
            two garments share the name; a repeated garment kind is numbered).
        relation_set: "paper" folds fit and length words into has-style (as the paper and the toy
            world do); "fine" uses has-fit and has-length.
        fuzzy: correct close misspellings of lexicon words.
    """

    entity_names: EntityNames = "auto"
    relation_set: RelationSet = "paper"
    fuzzy: bool = True

    def __post_init__(self) -> None:
        if self.entity_names not in ENTITY_NAMES:
            raise ParserConfigError(f"entity_names is {self.entity_names!r}; expected one of {list(ENTITY_NAMES)}")
        if self.relation_set not in RELATION_SETS:
            raise ParserConfigError(f"relation_set is {self.relation_set!r}; expected one of {list(RELATION_SETS)}")


@dataclass(frozen=True)
class ParseResult:
    """What the parser read.

    Args:
        triples: the graph, in reading order, duplicates removed.
        unknown_words: words it could not place (common function words are not listed).
        corrections: misspellings it corrected, as (written, read as).
        negated: phrases dropped after "without"/"no"/"not".
        backend: "rules", or "llm" when the local language model's answer was used.
        fallback_reason: why the language model's answer was not used ("" when it was, or unused).
    """

    triples: list[Triple]
    unknown_words: tuple[str, ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    negated: tuple[str, ...] = ()
    backend: str = "rules"
    fallback_reason: str = ""


@dataclass(frozen=True)
class _Node:
    """An entity before naming: its word, its parent garment node (parts, patterns) and its number."""

    name: str
    parent: _Node | None = None
    number: int = 1


@dataclass
class _State:
    anchor: _Node | None = None
    last_head: _Node | None = None
    pending: list[Span] = field(default_factory=list)
    negate: bool = False
    locate: bool = False
    garments: dict[str, list[_Node]] = field(default_factory=dict)
    facts: list[tuple[_Node, str, _Node | str]] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)


def _relation(kind: WordKind, text: str, relation_set: str) -> str:
    if kind is WordKind.COLOR:
        return "has-color"
    if kind is WordKind.MATERIAL:
        return "has-material"
    if kind is WordKind.PATTERN_ADJECTIVE:
        return "has-pattern"
    group = STYLE_GROUPS.get(text)
    return f"has-{group}" if relation_set == "fine" and group else "has-style"


def _attach(state: _State, node: _Node, modifiers: list[Span], relation_set: str) -> None:
    ordered = sorted(modifiers, key=lambda span: (span.kind is WordKind.COLOR, span.kind is WordKind.MATERIAL))
    if node.parent is None:
        ordered = sorted(modifiers, key=lambda span: (span.kind is not WordKind.COLOR, span.kind is not WordKind.MATERIAL))
    for span in ordered:
        state.facts.append((node, _relation(span.kind, span.text, relation_set), span.text))


def _garment_node(state: _State, name: str, definite: bool) -> _Node:
    seen = state.garments.setdefault(name, [])
    if definite and seen:
        return seen[-1]
    node = _Node(name, None, len(seen) + 1)
    seen.append(node)
    return node


def _head(state: _State, span: Span, definite: bool, relation_set: str) -> None:
    modifiers, state.pending = state.pending, []
    if state.negate or state.locate:
        if state.negate:
            state.negated.append(" ".join([*(m.source for m in modifiers), span.source]))
        state.negate = state.locate = False
        return
    if span.kind is WordKind.GARMENT:
        node = _garment_node(state, span.text, definite)
        state.anchor = node
        _attach(state, node, modifiers, relation_set)
    else:
        node = _Node(span.text, state.anchor)
        if state.anchor is not None:
            relation = "has-feature" if span.kind is WordKind.PART else "has-pattern"
            state.facts.append((state.anchor, relation, node))
        _attach(state, node, modifiers, relation_set)
    state.last_head = node


def _flush(state: _State, relation_set: str) -> None:
    """Modifiers with no head of their own go to the last head (hard boundary or end of text)."""
    if state.pending and state.last_head is not None and not state.negate:
        _attach(state, state.last_head, state.pending, relation_set)
    elif state.pending and state.negate:
        state.negated.append(" ".join(m.source for m in state.pending))
    state.pending = []
    state.negate = state.locate = False


def _names(facts: list[tuple[_Node, str, _Node | str]], mode: str) -> dict[_Node, str]:
    nodes = {fact[0] for fact in facts} | {fact[2] for fact in facts if isinstance(fact[2], _Node)}
    parents_by_name: dict[str, set[_Node | None]] = {}
    for node in nodes:
        if node.parent is not None:
            parents_by_name.setdefault(node.name, set()).add(node.parent)
    names: dict[_Node, str] = {}
    for node in nodes:
        base = node.name if mode == "plain" or node.number == 1 else f"{node.name} {node.number}"
        if node.parent is None:
            names[node] = base
            continue
        shared = len(parents_by_name.get(node.name, ())) > 1
        parent = node.parent.name if node.parent.number == 1 or mode == "plain" else f"{node.parent.name} {node.parent.number}"
        names[node] = f"{parent} {node.name}" if mode == "qualified" or (mode == "auto" and shared) else node.name
    return names


def parse_prompt(text: str, config: ParserConfig | None = None) -> ParseResult:
    """Read ``text`` into (entity, relation, value) triples (see the module docstring for the rules)."""
    config = config if config is not None else ParserConfig()
    spans, corrections = tag_spans(text, fuzzy=config.fuzzy, keep_as_written=COMMON_WORDS)
    state = _State()
    unknown: list[str] = []
    previous: Span | None = None
    for span in spans:
        if span.kind in HEAD_KINDS:
            definite = previous is not None and previous.text in DEFINITE
            _head(state, span, definite, config.relation_set)
        elif span.kind in MODIFIER_KINDS:
            state.pending.append(span)
        elif span.text in HARD_BOUNDARIES:
            _flush(state, config.relation_set)
        elif span.text in NEGATIONS:
            _flush(state, config.relation_set)
            state.negate = True
        elif span.text in LOCATIONS:
            _flush(state, config.relation_set)
            state.locate = True
        elif span.text not in COMMON_WORDS and span.text.isalpha():
            unknown.append(span.text)
        previous = span
    _flush(state, config.relation_set)
    names = _names(state.facts, config.entity_names)
    triples = [
        Triple(names[entity], relation, names[value] if isinstance(value, _Node) else value)
        for entity, relation, value in state.facts
    ]
    if unknown:
        logger.debug("words the parser could not place: %s", ", ".join(dict.fromkeys(unknown)))
    return ParseResult(
        triples=list(dict.fromkeys(triples)), unknown_words=tuple(dict.fromkeys(unknown)),
        corrections=tuple(corrections), negated=tuple(state.negated),
    )
