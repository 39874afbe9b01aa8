"""Turn a prompt into lexicon-tagged spans: longest match over the parser's lexicon (base plus
catalogue vocabulary), shades joined to colours, plural garment nouns read as singular, and
(optionally) close misspellings of single words corrected with ``difflib``.

Corrections are looked up per distinct word (cached) among lexicon words with the same first
letter and a length that can reach the ratio cutoff, since catalogue text repeats its words and
most of them are ordinary English, not misspellings."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import NamedTuple

from .lexicon import PATTERN_ADJECTIVES, WordKind, match_key, parser_aliases, parser_entries

WORD_PATTERN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[,.;:!?()&/+]")
THREE_QUARTER = re.compile(r"\b3/4[\s-]*length\b")
MAX_PHRASE_WORDS = 4
FUZZY_MIN_LENGTH = 5
FUZZY_CUTOFF = 0.8


class Span(NamedTuple):
    """One token of the tagged prompt (a named tuple: cheap to make, as a prompt makes dozens).

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
    entries = parser_entries()
    table: dict[tuple[str, ...], tuple[str, WordKind]] = {}
    for phrase, kind in entries.items():
        table.setdefault(match_key(phrase), (phrase, kind))  # the first spelling of a key is canonical
    table.update({match_key(written): (canonical, entries[canonical]) for written, canonical in parser_aliases().items()})
    return table


@lru_cache(maxsize=1)
def _single_words_by_letter() -> dict[str, tuple[str, ...]]:
    by_letter: dict[str, list[str]] = {}
    for key in _lexicon_by_key():
        if len(key) == 1 and len(key[0]) >= FUZZY_MIN_LENGTH - 1:
            by_letter.setdefault(key[0][0], []).append(key[0])
    return {letter: tuple(words) for letter, words in by_letter.items()}


@lru_cache(maxsize=65536)
def _correction(word: str) -> str | None:
    """The lexicon word ``word`` is a close misspelling of, or None. Only candidates whose length
    allows difflib's ratio 2·M/(a+b) to reach FUZZY_CUTOFF are compared."""
    size = len(word)
    candidates = [known for known in _single_words_by_letter().get(word[0], ())
                  if 2 * min(size, len(known)) / (size + len(known)) >= FUZZY_CUTOFF]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=FUZZY_CUTOFF)
    return close[0] if close else None


def clear_spelling_cache() -> None:
    """Forget the per-word spelling corrections looked up so far (benchmarks time a cold start)."""
    _correction.cache_clear()


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks; hyphens and other symbols separate words;
    "3/4-length" is read as "three quarter length"."""
    lowered = THREE_QUARTER.sub("three-quarter-length", text.lower())
    return WORD_PATTERN.findall(lowered.replace("-", " "))


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
                close = _correction(word)
                if close is not None:
                    corrections.append((word, close))
                    word = close
            corrected.extend(word.split())
        if corrections:
            spans = _longest_match(corrected)
    return _join_shades(spans), corrections


@lru_cache(maxsize=1)
def _longest_phrase_by_first_word() -> dict[str, int]:
    """For each word that starts a lexicon phrase, the most words such a phrase has."""
    longest: dict[str, int] = {}
    for key in _lexicon_by_key():
        longest[key[0]] = max(longest.get(key[0], 0), len(key))
    return longest


def _longest_match(words: list[str]) -> list[Span]:
    """Greedy longest match of word runs (up to MAX_PHRASE_WORDS) against the lexicon; only words
    that start some phrase are tried at more than one length."""
    lexicon = _lexicon_by_key()
    longest = _longest_phrase_by_first_word()
    spans: list[Span] = []
    index = 0
    count = len(words)
    while index < count:
        word = words[index]
        for length in range(min(longest.get(word, 0), count - index), 0, -1):
            key = tuple(words[index:index + length])
            entry = lexicon.get(key)
            if entry is not None:
                phrase, kind = entry
                if kind is WordKind.PATTERN_ADJECTIVE:
                    phrase = PATTERN_ADJECTIVES[phrase]
                spans.append(Span(phrase, kind, " ".join(key)))
                index += length
                break
        else:
            spans.append(Span(word, None, word))
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
