"""Snippets of a turn with the words a query matched marked, in the turn's own spelling.

SQLite matches on stemmed, accent-folded words (:func:`spaces.languages.stems`),
which is not text anyone should read: the snippet is cut from the turn's
text as said, and a word is marked when its stem is one the query asked for.
"""

from __future__ import annotations

import re

from spaces.catalog.query import Term
from spaces.languages import fold, stems

_TOKEN = re.compile(r"\w+", re.UNICODE)


def snippet(text: str, language: str, terms: list[Term], *, start: str, end: str, words: int = 16) -> str:
    """About ``words`` words of ``text`` around its first match; matches between ``start`` and ``end``."""
    wanted = {s for term in terms for s in stems(" ".join(term.words), language).split()}
    prefixes = tuple(fold(term.words[0]) for term in terms if term.prefix)
    tokens = list(_TOKEN.finditer(text))
    if not tokens:
        return text
    marked = [
        stems(t.group(), language) in wanted or (bool(prefixes) and fold(t.group()).startswith(prefixes))
        for t in tokens
    ]
    first = marked.index(True) if any(marked) else 0
    lo = max(0, min(first - words // 4, len(tokens) - words))
    hi = min(len(tokens), lo + words)
    out: list[str] = []
    pos = tokens[lo].start() if lo else 0
    for i in range(lo, hi):
        t = tokens[i]
        out.append(text[pos : t.start()])
        out.append(f"{start}{t.group()}{end}" if marked[i] else t.group())
        pos = t.end()
    tail = text[pos:] if hi == len(tokens) else ""
    return ("…" if lo else "") + "".join(out) + tail + ("…" if hi < len(tokens) else "")
