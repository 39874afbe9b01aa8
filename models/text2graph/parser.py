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

Multi-sentence descriptions (shop text: "dark blue vest top. Jersey top with narrow shoulder straps."):

- A title sentence that names one garment and nothing else ("dark blue vest top.") and the first
  garment named after it (unless with "a"/"an") are one entity, named as the title names it.
- A garment that opens a later sentence without "a"/"an" ("Top with ...") and a garment named
  the same before, or whose last word it is ("top" of "vest top"), are one entity; so are
  "the top" and garments written "a/b" ("leggings/tights"). Plural garment nouns read as singular.
- A sentence with no head of its own ("Lined.", "Regular fit.", "Black in 30 denier.") gives its
  modifiers to the anchor garment.
- Modifiers bind to the noun that ends their phrase: "ribbed hems" gives (hems, has-style,
  ribbed); when the phrase ends in a noun the lexicon does not know, its modifiers are dropped
  rather than given to an earlier head. A part directly before another part is its style ("back
  pocket" -> (pocket, has-style, back)), and so is a garment directly before another ("t-shirt bra").
- Numbers and measures ("20 denier", "sizes 12-18 months", "Width 3.5 cm") give no triple;
  "3/4-length" is the length "three-quarter-length". Parts after "at"/"on"/"in the" that only say
  where something sits ("ribbing at the cuffs and hem") give no triple.

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
from .catalogue_words import GENERIC_NOUNS, IGNORED_WORDS, LOCATION_PARTS
from .lexicon import STYLE_GROUPS, WordKind, parser_entries
from .schema import Triple
from .tokens import Span, tag_spans

logger = logging.getLogger("atelier.text2graph.parser")

EntityNames = Literal["auto", "plain", "qualified"]
RelationSet = Literal["paper", "fine"]
ENTITY_NAMES: tuple[str, ...] = ("auto", "plain", "qualified")
RELATION_SETS: tuple[str, ...] = ("paper", "fine")
HARD_BOUNDARIES = frozenset({"with", "featuring", "has", "having", "in", "plus", ".", ";", ":", "(", ")", "!", "?"})
SENTENCE_ENDS = frozenset({".", ";", "!", "?"})
PHRASE_ENDS = HARD_BOUNDARIES | frozenset({",", "and", "or", "/", "&", "at", "on", "for", "that", "to"})
INDEFINITE = frozenset({"a", "an", "another"})
NEGATIONS = frozenset({"without", "no", "not"})
LOCATIONS = frozenset({"at", "on", "down", "along", "around", "across"})
DEFINITE = frozenset({"the", "its", "this", "that"})
COMMON_WORDS = frozenset({
    "a", "an", "and", "or", "the", "of", "for", "to", "is", "are", "its", "their", "her", "his", "this", "that",
    "person", "wearing", "carrying", "woman", "women", "man", "men", "model", "while", "where", "which", "there",
    "these", "those", "other", "about", "under", "above", "below", "inside", "outside", "chest", "detail",
    "details", "design", "fabric", "made", "side", "sides", "style", "styled", "small", "large", "shaped",
    "photo", "studio", "full", "body", "girl", "wears", "worn", "paired", "along", "around", "across", "something",
}) | HARD_BOUNDARIES | NEGATIONS | LOCATIONS | IGNORED_WORDS | GENERIC_NOUNS
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


@dataclass(frozen=True, eq=False)
class _Node:
    """An entity before naming: its word, its parent garment node (parts, patterns) and its number.
    Each node is its own entity (compared and hashed by identity)."""

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
    after_location: bool = False
    garments: dict[str, list[_Node]] = field(default_factory=dict)
    names: dict[str, _Node] = field(default_factory=dict)
    facts: list[tuple[_Node, str, _Node | str]] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)
    sentence: int = 0
    sentence_heads: list[_Node] = field(default_factory=list)
    title: _Node | None = None


@dataclass(frozen=True)
class _Context:
    """Where a head stands: the span before it (and the one before that), the span after it and
    the article or determiner that opened its phrase ("a", "the", ... or "")."""

    previous: Span | None
    before_previous: Span | None
    following: Span | None
    determiner: str = ""


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


def _garment_node(state: _State, name: str, context: _Context) -> _Node:
    """The entity a garment noun names: the title's garment, an earlier one it refers back to, or a
    new one (numbered when the name was used before)."""
    previous = context.previous.text if context.previous is not None else ""
    determiner = context.determiner
    if state.title is not None and determiner not in INDEFINITE:
        node, state.title = state.title, None
    elif previous == "/" and state.last_head is not None and state.last_head.parent is None:
        node = state.last_head
    elif name in state.names and (determiner in DEFINITE or (not state.sentence_heads and determiner not in INDEFINITE)):
        node = state.names[name]
    else:
        seen = state.garments.setdefault(name, [])
        node = _Node(name, None, len(seen) + 1)
        seen.append(node)
        head_word = name.split()[-1]
        if head_word != name and parser_entries().get(head_word) is WordKind.GARMENT:
            state.names[head_word] = node
    state.names[name] = node
    return node


def _is_location(state: _State, span: Span, context: _Context) -> bool:
    """A part that only says where something sits: after "at"/"on"/..., "in the", or "and" right
    after such a part ("at the cuffs and hem")."""
    previous = context.previous.text if context.previous is not None else ""
    before = context.before_previous.text if context.before_previous is not None else ""
    if state.locate:
        return True
    if span.text not in LOCATION_PARTS:
        return False
    return (previous == "and" and state.after_location) or (previous == "the" and before == "in")


def _head(state: _State, span: Span, context: _Context, relation_set: str) -> None:
    modifiers, state.pending = state.pending, []
    if state.negate or _is_location(state, span, context):
        if state.negate:
            state.negated.append(" ".join([*(m.source for m in modifiers), span.source]))
        state.after_location = not state.negate and span.text in LOCATION_PARTS
        state.negate = state.locate = False
        return
    state.after_location = False
    if span.kind is WordKind.GARMENT:
        node = _garment_node(state, span.text, context)
        state.anchor = node
        _attach(state, node, modifiers, relation_set)
    else:
        node = _Node(span.text, state.anchor)
        if state.anchor is not None:
            relation = "has-feature" if span.kind is WordKind.PART else "has-pattern"
            state.facts.append((state.anchor, relation, node))
        _attach(state, node, modifiers, relation_set)
    state.last_head = node
    state.sentence_heads.append(node)


def _flush(state: _State, relation_set: str) -> None:
    """Modifiers with no head of their own go to the last head (hard boundary or end of text), or
    to the anchor garment when their sentence has no head at all ("Lined."); before any head they
    wait for the first one."""
    target = state.last_head if state.sentence_heads else state.anchor
    if state.pending and state.negate:
        state.negated.append(" ".join(m.source for m in state.pending))
    elif state.pending and target is None:
        state.locate = False
        return  # nothing to give them to yet ("Black. A top ..."): they wait for the first head
    elif state.pending:
        _attach(state, target, state.pending, relation_set)
    state.pending = []
    state.negate = state.locate = False


def _end_sentence(state: _State) -> None:
    """A first sentence that is one garment and nothing else is the title of what follows."""
    heads = list(dict.fromkeys(state.sentence_heads))
    if state.sentence == 0 and len(heads) == 1 and heads[0].parent is None and state.anchor is heads[0]:
        state.title = heads[0]
    elif state.sentence == 0:
        state.title = None
    state.sentence += 1
    state.sentence_heads = []
    state.after_location = False


def _compound_modifier(span: Span, following: Span | None) -> bool:
    """A part right before another part, or a garment right before another garment, is a style."""
    return following is not None and span.kind in (WordKind.PART, WordKind.GARMENT) and following.kind is span.kind


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
    before_previous: Span | None = None
    determiner = ""
    for index, span in enumerate(spans):
        following = spans[index + 1] if index + 1 < len(spans) else None
        if _compound_modifier(span, following):
            state.pending.append(Span(span.text, WordKind.STYLE, span.source))
        elif span.kind in HEAD_KINDS:
            _head(state, span, _Context(previous, before_previous, following, determiner), config.relation_set)
            determiner = ""
        elif span.kind in MODIFIER_KINDS:
            state.pending.append(span)
        elif span.text in DEFINITE or span.text in INDEFINITE:
            determiner = span.text
        elif span.text in HARD_BOUNDARIES:
            determiner = ""
            _flush(state, config.relation_set)
            if span.text in SENTENCE_ENDS:
                _end_sentence(state)
        elif span.text in NEGATIONS:
            _flush(state, config.relation_set)
            state.negate = True
        elif span.text in LOCATIONS:
            _flush(state, config.relation_set)
            state.locate = True
        elif span.text in GENERIC_NOUNS and (following is None or following.text in PHRASE_ENDS):
            if state.pending and state.anchor is not None:
                _attach(state, state.anchor, state.pending, config.relation_set)
            state.pending = []
        elif span.text not in COMMON_WORDS and span.text.isalpha():
            unknown.append(span.text)
            title_of_unknown_kind = state.anchor is None and following is not None and following.text in SENTENCE_ENDS
            if (following is None or following.text in PHRASE_ENDS) and not title_of_unknown_kind:
                state.pending = []  # the phrase's head is this unknown noun: its modifiers are its own
        before_previous, previous = previous, span
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
