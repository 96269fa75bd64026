"""BM25 computed in Python over a bounded set of candidate turns (SQLite).

FTS5's own ``bm25()`` counts, for every query, the turns each phrase occurs
in by walking the phrase's whole doclist: a word said in half of all turns
costs tens of milliseconds at a million turns before a single row is
ranked. The catalog keeps those counts (``stem_docs``) as turns are indexed
and deleted, so ranking costs only what the candidates cost.

Same formula and constants as FTS5 (k1 = 1.2, b = 0.75, idf floored at
1e-6), on the same tokens (each turn's ``stems``). Where FTS5 would count a
phrase's own turns, a phrase is given its rarest word's count (an upper
bound: it weighs a phrase at most as much as FTS5 did); a prefix, the sum of
its words' counts (capped at the number of turns).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class Scored:
    """One query term as analysed for ranking."""

    words: tuple[str, ...]
    """A word, or a phrase's words in order (stems)."""
    alternatives: frozenset[str] = frozenset()
    """A prefix term: any of these words matches (its stem and the indexed words it starts)."""
    docs: int = 0
    """Turns the term occurs in (or an upper bound)."""


def idf(docs: int, total: int) -> float:
    value = math.log((total - docs + 0.5) / (docs + 0.5)) if total else 0.0
    return value if value > 0 else 1e-6


def occurrences(term: Scored, tokens: Sequence[str]) -> int:
    if term.alternatives:
        return sum(1 for t in tokens if t in term.alternatives)
    if len(term.words) == 1:
        return tokens.count(term.words[0])
    n = len(term.words)
    first = term.words[0]
    return sum(1 for i in range(len(tokens) - n + 1) if tokens[i] == first and tuple(tokens[i : i + n]) == term.words)


def score(terms: Collection[Scored], tokens: Sequence[str], *, total: int, avg_length: float) -> float:
    """The turn's BM25 for the query (higher is better)."""
    norm = K1 * (1 - B + B * len(tokens) / (avg_length or 1.0))
    result = 0.0
    for term in terms:
        tf = occurrences(term, tokens)
        if tf:
            result += idf(term.docs, total) * tf * (K1 + 1) / (tf + norm)
    return result
