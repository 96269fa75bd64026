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

#: PostgreSQL's ``english`` stop words, which its index never holds. Single-word
#: terms on this list are dropped for both backends, so a query like
#: ``the clubs`` finds the same turns in SQLite (which indexes every word) as
#: in PostgreSQL.
STOP_WORDS = frozenset(
    {
        "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
        "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself", "it",
        "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which", "who",
        "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be", "been",
        "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an", "the", "and",
        "but", "if", "or", "because", "as", "until", "while", "of", "at", "by", "for", "with", "about",
        "against", "between", "into", "through", "during", "before", "after", "above", "below", "to",
        "from", "up", "down", "in", "out", "on", "off", "over", "under", "again", "further", "then",
        "once", "here", "there", "when", "where", "why", "how", "all", "any", "both", "each", "few",
        "more", "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so",
        "than", "too", "very", "s", "t", "can", "will", "just", "don", "should", "now",
    }
)

_PHRASE = re.compile(r'"([^"]*)"')
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def parse(query: str) -> list[list[str]]:
    """Split a query into phrases (lists of lower-case words), in order."""
    terms: list[list[str]] = []
    rest = _PHRASE.sub(" ", query)
    for phrase in _PHRASE.findall(query):
        words = _strip_stop_words(_words(phrase))
        if words:
            terms.append(words)
    terms.extend([w] for w in _words(rest) if w not in STOP_WORDS)
    return terms[:MAX_TERMS]


def _strip_stop_words(words: list[str]) -> list[str]:
    """Drop a phrase's leading and trailing stop words (PostgreSQL ignores them).

    Inner ones stay: they keep the distance between the words that matter.
    """
    kept = [i for i, w in enumerate(words) if w not in STOP_WORDS]
    return words[kept[0] : kept[-1] + 1] if kept else []


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def to_fts5(terms: list[list[str]]) -> str:
    """FTS5 MATCH expression: every phrase quoted, all ANDed."""
    return " AND ".join('"' + " ".join(words).replace('"', "") + '"' for words in terms)


def to_tsquery_args(terms: list[list[str]]) -> list[str]:
    """One plain-text phrase per term, for ``phraseto_tsquery`` in PostgreSQL."""
    return [" ".join(words) for words in terms]
