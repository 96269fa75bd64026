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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import methodcaller

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


def _counter(term: Scored) -> Callable[[Sequence[str]], int]:
    """How many times ``term`` occurs in a turn's tokens."""
    if term.alternatives:
        contains = term.alternatives.__contains__
        return lambda tokens: sum(map(contains, tokens))
    if len(term.words) == 1:
        return methodcaller("count", term.words[0])
    n, first, words = len(term.words), term.words[0], list(term.words)
    return lambda tokens: sum(
        1 for i in range(len(tokens) - n + 1) if tokens[i] == first and list(tokens[i : i + n]) == words
    )


def matcher(terms: Sequence[Scored]) -> Callable[[Sequence[str]], bool]:
    """Whether a turn's tokens hold every term (as FTS5 matches them: words, phrases, a prefix's words)."""
    counters = [_counter(t) for t in terms]
    return lambda tokens: all(count(tokens) for count in counters)


def scores(terms: Sequence[Scored], turns: Iterable[Sequence[str]], *, total: int, avg_length: float) -> list[float]:
    """Each turn's BM25 for the query (higher is better), from its tokens."""
    weights = [(idf(t.docs, total) * (K1 + 1), _counter(t)) for t in terms]
    flat = K1 * (1 - B)
    per_token = K1 * B / (avg_length or 1.0)
    out: list[float] = []
    for tokens in turns:
        norm = flat + per_token * len(tokens)
        result = 0.0
        for weight, count in weights:
            tf = count(tokens)
            if tf:
                result += weight * tf / (tf + norm)
        out.append(result)
    return out


#: A query whose terms are all single words (or a prefix of at most this many)
#: is counted in each turn's stored stems as they are (``stem_scores``).
MAX_NEEDLES = 4


def stem_scores(terms: Sequence[Scored], stemmed: Sequence[str], *, total: int, avg_length: float) -> list[float]:
    """``scores`` from each turn's stems as stored (words between single spaces).

    Splitting a thousand candidates into tokens cost more than ranking
    them: single words are counted in the text itself, between spaces
    doubled so that a word said twice in a row counts twice. Phrases,
    longer prefixes and stems FTS5 splits further ("_") take the tokens.
    """
    needles = [sorted(t.alternatives) if t.alternatives else list(t.words) for t in terms]
    if any(len(t.words) > 1 or len(n) > MAX_NEEDLES for t, n in zip(terms, needles, strict=True)):
        return scores(terms, [_tokens(text) for text in stemmed], total=total, avg_length=avg_length)
    weights = [(idf(t.docs, total) * (K1 + 1), [f" {w} " for w in n]) for t, n in zip(terms, needles, strict=True)]
    flat = K1 * (1 - B)
    per_token = K1 * B / (avg_length or 1.0)
    out: list[float] = []
    for text in stemmed:
        if "_" in text or "  " in text or text != text.strip():
            out.extend(scores(terms, [_tokens(text)], total=total, avg_length=avg_length))
            continue
        spaced = " " + text.replace(" ", "  ") + " "
        norm = flat + per_token * (text.count(" ") + 1 if text else 0)
        result = 0.0
        for weight, words in weights:
            tf = sum(spaced.count(w) for w in words)
            if tf:
                result += weight * tf / (tf + norm)
        out.append(result)
    return out


def _tokens(stemmed: str) -> list[str]:
    # FTS5's unicode61 splits at "_" too (Python's \w keeps it).
    return stemmed.replace("_", " ").split()
