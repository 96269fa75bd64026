"""User search queries, parsed once and rendered for each backend.

People type anything: quotes, ``*``, ``NEAR``, parentheses. We never hand
that text to a query language. A query is a list of phrases (quoted text) and
single words; every term must match. Each backend renders the parsed form
with its own quoting, so both return the same turns and neither can fail on
syntax.

The last word typed (unquoted, with nothing after it) matches as a prefix,
as the replay page's search within a space does: ``ten clu`` finds "ten of
clubs" while the word is still being typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: More terms than this are ignored: they only slow the index down.
MAX_TERMS = 16

#: PostgreSQL's ``english`` stop words, which its index never holds. Single-word
#: terms on this list are dropped for both backends, so a query like
#: ``the clubs`` finds the same turns in SQLite (which indexes every word) as
#: in PostgreSQL.
STOP_WORDS = frozenset(
    {
        "i",
        "me",
        "my",
        "myself",
        "we",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "it",
        "its",
        "itself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "a",
        "an",
        "the",
        "and",
        "but",
        "if",
        "or",
        "because",
        "as",
        "until",
        "while",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
    }
)

#: A last word shorter than this matches whole: a prefix of one or two
#: letters would match a good part of the vocabulary and cost both indexes
#: a scan of it.
MIN_PREFIX = 3

_PHRASE = re.compile(r'"([^"]*)"')
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_PHRASE_MARK = "\x00"


@dataclass(frozen=True)
class Term:
    """One thing every hit must contain: a word, or a phrase of words in order."""

    words: tuple[str, ...]
    prefix: bool = False
    """The (single) word may be the start of a longer one."""


def parse(query: str) -> list[Term]:
    """Split a query into terms (phrases of lower-case words, then words), in order."""
    terms: list[Term] = []
    rest = _PHRASE.sub(_PHRASE_MARK, query)
    for phrase in _PHRASE.findall(query):
        words = _strip_stop_words(_words(phrase))
        if words:
            terms.append(Term(tuple(words)))
    matches = list(_WORD.finditer(rest))
    for m in matches:
        word = m.group().lower()
        if word in STOP_WORDS:
            continue
        last = m is matches[-1] and _PHRASE_MARK not in rest[m.end() :]
        terms.append(Term((word,), prefix=last and len(word) >= MIN_PREFIX))
    return terms[:MAX_TERMS]


def _strip_stop_words(words: list[str]) -> list[str]:
    """Drop a phrase's leading and trailing stop words (PostgreSQL ignores them).

    Inner ones stay: they keep the distance between the words that matter.
    """
    kept = [i for i, w in enumerate(words) if w not in STOP_WORDS]
    return words[kept[0] : kept[-1] + 1] if kept else []


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def to_fts5(terms: list[Term]) -> str:
    """FTS5 MATCH expression: every phrase quoted (a prefix starred), all ANDed."""
    return " AND ".join('"' + " ".join(t.words).replace('"', "") + '"' + ("*" if t.prefix else "") for t in terms)


def to_tsquery(terms: list[Term], placeholder: str = "?", config: str = "english") -> tuple[str, list[str]]:
    """A PostgreSQL tsquery expression (with ``placeholder`` for its arguments) and the arguments.

    Phrases go through ``phraseto_tsquery`` (plain text, nothing to escape);
    a prefix through ``to_tsquery`` as a quoted lexeme with ``:*``; both
    analysed with the text search configuration ``config`` (a trusted name).
    """
    parts: list[str] = []
    args: list[str] = []
    for t in terms:
        if t.prefix:
            parts.append(f"to_tsquery('{config}', {placeholder})")
            args.append("'" + t.words[0].replace("'", "''") + "':*")
        else:
            parts.append(f"phraseto_tsquery('{config}', {placeholder})")
            args.append(" ".join(t.words))
    return "(" + " && ".join(parts) + ")", args
