"""Turn a prompt into lexicon-tagged spans: longest match over the fashion lexicon, shades joined
to colours, and (optionally) close misspellings of single words corrected with ``difflib``."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

from .lexicon import PATTERN_ADJECTIVES, WordKind, lexicon_entries, match_key

WORD_PATTERN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[,.;:!?()&/+]")
MAX_PHRASE_WORDS = 3
FUZZY_MIN_LENGTH = 5
FUZZY_CUTOFF = 0.8


@dataclass(frozen=True)
class Span:
    """One token of the tagged prompt.

    Args:
        text: the canonical phrase for lexicon words ("navy blue", "stripes" for "striped"),
            else the word or punctuation mark as written (lower case).
        kind: the lexicon kind, or None for any other word or mark.
        source: the words as written in the prompt.
    """

    text: str
    kind: WordKind | None
    source: str


@lru_cache(maxsize=1)
def _lexicon_by_key() -> dict[tuple[str, ...], tuple[str, WordKind]]:
    return {match_key(phrase): (phrase, kind) for phrase, kind in lexicon_entries().items()}


@lru_cache(maxsize=1)
def _single_words() -> tuple[str, ...]:
    return tuple(" ".join(key) for key in _lexicon_by_key() if len(key) == 1 and len(key[0]) >= FUZZY_MIN_LENGTH - 1)


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks; hyphens and other symbols separate words."""
    return WORD_PATTERN.findall(text.lower().replace("-", " "))


def tag_spans(
    text: str, fuzzy: bool = True, keep_as_written: frozenset[str] = frozenset(),
) -> tuple[list[Span], list[tuple[str, str]]]:
    """Tagged spans of ``text`` and the spelling corrections made ``[(written, read as)]``.

    A word is corrected only when it is not in the lexicon nor in ``keep_as_written``, has at least
    FUZZY_MIN_LENGTH letters, and a lexicon word with the same first letter is close enough.
    """
    words = split_words(text)
    spans = _longest_match(words)
    corrections: list[tuple[str, str]] = []
    if fuzzy:
        corrected: list[str] = []
        for span in spans:
            word = span.source
            if span.kind is None and len(word) >= FUZZY_MIN_LENGTH and word.isalpha() and word not in keep_as_written:
                candidates = [known for known in _single_words() if known[0] == word[0]]
                close = difflib.get_close_matches(word, candidates, n=1, cutoff=FUZZY_CUTOFF)
                if close:
                    corrections.append((word, close[0]))
                    word = close[0]
            corrected.extend(word.split())
        if corrections:
            spans = _longest_match(corrected)
    return _join_shades(spans), corrections


def _longest_match(words: list[str]) -> list[Span]:
    """Greedy longest match of word runs (up to MAX_PHRASE_WORDS) against the lexicon."""
    lexicon = _lexicon_by_key()
    spans: list[Span] = []
    index = 0
    while index < len(words):
        for length in range(min(MAX_PHRASE_WORDS, len(words) - index), 0, -1):
            key = tuple(words[index:index + length])
            if key in lexicon:
                phrase, kind = lexicon[key]
                if kind is WordKind.PATTERN_ADJECTIVE:
                    phrase = PATTERN_ADJECTIVES[phrase]
                spans.append(Span(phrase, kind, " ".join(key)))
                index += length
                break
        else:
            spans.append(Span(words[index], None, words[index]))
            index += 1
    return spans


def _join_shades(spans: list[Span]) -> list[Span]:
    """"light" + "blue" -> one colour "light blue"; a shade alone is an unknown word."""
    joined: list[Span] = []
    for span in spans:
        previous = joined[-1] if joined else None
        if span.kind is WordKind.COLOR and previous is not None and previous.kind is WordKind.COLOR_SHADE:
            joined[-1] = Span(f"{previous.text} {span.text}", WordKind.COLOR, f"{previous.source} {span.source}")
        else:
            joined.append(span)
    return [span if span.kind is not WordKind.COLOR_SHADE else Span(span.text, None, span.source) for span in joined]
