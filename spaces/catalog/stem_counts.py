"""The word counts SQLite search ranks with, and queries analysed against them.

``stem_docs`` holds how many turns each stem is in and ``stem_totals`` the
turns and tokens in all (``Tally`` keeps them as turns come and go);
``analyse`` turns a query into an FTS5 expression over ``stems`` and the
document frequencies BM25 needs, expanding the word still being typed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from spaces.catalog import bm25
from spaces.catalog.query import Term
from spaces.languages import fold, stems

#: A prefix matches at most this many indexed words (with the typed word's
#: own stem), those in the most turns: Elasticsearch's ``max_expansions``
#: default, for the same reason (a three-letter start can begin hundreds).
MAX_EXPANSIONS = 50


@dataclass
class Analysed:
    match: str
    """An FTS5 expression over ``stems``: every term."""
    terms: list[bm25.Scored]
    languages: list[str]
    tokens_decide: bool = True
    """A turn's tokens tell whether it matches (``bm25.matcher``), as FTS5 would;
    not so for a phrase still being typed (``"l'amo"*``: FTS5's phrase prefix)."""


def analyse(cur: Any, terms: list[Term], language: str) -> Analysed | None:
    """The query analysed in ``language``; None if a term has no words left in it.

    A prefix term (the word still being typed) matches its stem as a word,
    or the indexed words its folded letters start (the ``MAX_EXPANSIONS``
    said most): ``ecout`` and ``clu…``.
    """
    analysed = [stems(" ".join(t.words), language).split() for t in terms]
    if not all(analysed):
        return None
    cur.execute(
        f"SELECT term, docs FROM stem_docs WHERE term IN ({','.join('?' * sum(map(len, analysed)))})",
        [w for words in analysed for w in words],
    )
    docs: dict[str, int] = dict(cur.fetchall())
    cur.execute("SELECT turns FROM stem_totals")
    total = int((cur.fetchone() or (0,))[0])
    parts: list[str] = []
    scored: list[bm25.Scored] = []
    for term, words in zip(terms, analysed, strict=True):
        if term.prefix and len(words) == 1:
            start = fold(term.words[0])
            cur.execute(
                "SELECT term, docs FROM stem_docs WHERE term >= ? AND term < ? ORDER BY docs DESC, term LIMIT ?",
                (start, start + "\U0010ffff", MAX_EXPANSIONS),
            )
            started = dict(cur.fetchall())
            alternatives = frozenset({words[0], *started})
            parts.append("(" + " OR ".join(f'"{w}"' for w in sorted(alternatives)) + ")")
            count = docs.get(words[0], 0) + sum(n for w, n in started.items() if w != words[0])
            scored.append(bm25.Scored(tuple(words), alternatives, min(count, total)))
        else:
            # A word with an apostrophe typed last ("l'amo") stays FTS5's phrase prefix.
            prefix = f' OR "{fold(term.words[0])}"*' if term.prefix else ""
            parts.append(f'("{" ".join(words)}"{prefix})' if prefix else f'"{" ".join(words)}"')
            scored.append(bm25.Scored(tuple(words), docs=min(docs.get(w, 0) for w in words)))
    phrase_prefix = any(t.prefix and len(w) > 1 for t, w in zip(terms, analysed, strict=True))
    return Analysed(" AND ".join(parts), scored, [], not phrase_prefix)


class Tally:
    """Turns each stem is in, and tokens, for ``stem_docs`` and ``stem_totals``."""

    def __init__(self) -> None:
        self.docs: Counter[str] = Counter()
        self.turns = 0
        self.tokens = 0

    def add(self, stemmed: str) -> str:
        words = split_stems(stemmed)
        self.docs.update(set(words))
        self.turns += 1
        self.tokens += len(words)
        return stemmed

    def save(self, cur: Any, sign: int = 1) -> None:
        cur.executemany(
            "INSERT INTO stem_docs (term, docs) VALUES (?, ?) "
            "ON CONFLICT (term) DO UPDATE SET docs = docs + excluded.docs",
            [(w, sign * n) for w, n in self.docs.items()],
        )
        if sign < 0:
            # Words no longer said anywhere: a prefix should not expand to them.
            cur.executemany("DELETE FROM stem_docs WHERE term = ? AND docs <= 0", [(w,) for w in self.docs])
        cur.execute(
            "UPDATE stem_totals SET turns = turns + ?, tokens = tokens + ?", (sign * self.turns, sign * self.tokens)
        )


def split_stems(stemmed: str) -> list[str]:
    # FTS5's unicode61 splits at "_" too (Python's \w keeps it).
    return stemmed.replace("_", " ").split()
