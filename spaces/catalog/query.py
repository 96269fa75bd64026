"""User search queries, parsed once and rendered for each backend.

People type anything: quotes, ``*``, ``NEAR``, parentheses. We never hand
that text to a query language. A query is a list of phrases (quoted text) and
single words; every term must match. Each backend renders the parsed form
with its own quoting, so both return the same turns and neither can fail on
syntax.
"""

from __future__ import annotations

import re

#: More terms than this are ignored: they only slow the index down.
MAX_TERMS = 16

_PHRASE = re.compile(r'"([^"]*)"')
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def parse(query: str) -> list[list[str]]:
    """Split a query into phrases (lists of lower-case words), in order."""
    terms: list[list[str]] = []
    rest = _PHRASE.sub(" ", query)
    for phrase in _PHRASE.findall(query):
        words = _words(phrase)
        if words:
            terms.append(words)
    terms.extend([w] for w in _words(rest))
    return terms[:MAX_TERMS]


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def to_fts5(terms: list[list[str]]) -> str:
    """FTS5 MATCH expression: every phrase quoted, all ANDed."""
    return " AND ".join('"' + " ".join(words).replace('"', "") + '"' for words in terms)


def to_tsquery_args(terms: list[list[str]]) -> list[str]:
    """One plain-text phrase per term, for ``phraseto_tsquery`` in PostgreSQL."""
    return [" ".join(words) for words in terms]
