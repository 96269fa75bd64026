"""Repeated-phrase loops: Whisper's best-known failure, a phrase over and over.

People repeat themselves too ("no, no, no"; "thank you, thank you"), so a
phrase may come back a few times; past that it is a loop, and only its first
occurrence is kept. A sentence heard twice is a loop too where the timestamps
say one of the two was not said: a prompt makes Whisper hear its window's
last sentence again, squeezed into the instant after it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from spaces.models import Word

_NOT_WORD = re.compile(r"[^\w']+")


@dataclass(frozen=True)
class LoopRules:
    max_ngram: int = 8
    """Longest phrase (in words) looked at."""
    word_repeats: int = 3
    """A single word may come this many times in a row ("no, no, no")."""
    phrase_repeats: int = 2
    """A phrase of two words or more may come this many times in a row."""
    max_sentence: int = 40
    """Longest phrase (in words) looked at for a copy said in an instant."""


NO_LOOPS = LoopRules(max_ngram=0, max_sentence=0)
"""Rules that find no loop: for a caller that looks for them itself (words of several speakers)."""

MAX_CHARS_PER_SECOND = 35.0
"""Fast speech is about 20 characters a second; more means Whisper's timestamps went wrong."""


def norm(text: str) -> str:
    """A word's text for comparison: lower case, without punctuation."""
    return _NOT_WORD.sub("", text.lower())


def drop_loops(words: Sequence[Word], rules: LoopRules = LoopRules()) -> list[Word]:
    """``words`` without looping repetitions (one speaker's words, in time order).

    Where a phrase repeats in a row more often than ``rules`` allow, its first
    occurrence stays and every repetition goes. A phrase of
    :data:`REPEATED_WORDS` words or more heard twice in a row, one of the two
    said faster than anyone speaks, is said once: the other stays.
    """
    keys = [norm(w.text) for w in words]
    out: list[Word] = []
    i = 0
    while i < len(words):
        n, k = _loop_at(keys, i, rules)
        said = words[i : i + n] if k else _said_once(words, keys, i, rules)
        if said:
            out.extend(said)
            i += len(said) * (k or 2)
        else:
            out.append(words[i])
            i += 1
    return out


def _loop_at(keys: Sequence[str], i: int, rules: LoopRules) -> tuple[int, int]:
    """``(words in the phrase, times in a row)`` of the longest loop starting at ``i``; ``(0, 0)``: none."""
    best_n, best_k = 0, 0
    for n in range(1, rules.max_ngram + 1):
        if i + 2 * n > len(keys):
            break
        phrase = keys[i : i + n]
        if not any(phrase):
            continue
        k = 1
        while keys[i + k * n : i + (k + 1) * n] == phrase:
            k += 1
        allowed = rules.word_repeats if n == 1 else rules.phrase_repeats
        if k > allowed and n * k > best_n * best_k:
            best_n, best_k = n, k
    return best_n, best_k


#: Words a phrase must have for its repetition right after it to count as Whisper's, not a speaker's.
REPEATED_WORDS = 4


def _said_once(words: Sequence[Word], keys: Sequence[str], i: int, rules: LoopRules) -> Sequence[Word]:
    """The copy to keep of a phrase at ``i`` heard twice in a row, one copy squeezed (none: no such phrase).

    Found in the live revision's window of two sentences: "My sister is
    learning to play the piano this year" heard a second time, its ten words
    in 0.56 s after the first's 2.2 s.
    """
    if not keys[i]:
        return ()
    for n in range(REPEATED_WORDS, min(rules.max_sentence, (len(words) - i) // 2) + 1):
        if keys[i + n] != keys[i] or keys[i : i + n] != keys[i + n : i + 2 * n]:
            continue
        first, second = words[i : i + n], words[i + n : i + 2 * n]
        if _squeezed(second, keys[i + n : i + 2 * n]):
            return first
        if _squeezed(first, keys[i : i + n]):
            return second
    return ()


def _squeezed(words: Sequence[Word], keys: Sequence[str]) -> bool:
    """Whether ``words`` (``keys``: their :func:`norm`) take less time than their characters need at
    :data:`MAX_CHARS_PER_SECOND`."""
    return sum(map(len, keys)) > MAX_CHARS_PER_SECOND * (words[-1].end - words[0].start)


def repeats_a_phrase(text: str) -> bool:
    """Whether ``text`` has a phrase of :data:`REPEATED_WORDS` words or more twice in a row.

    People repeat a word or two ("no, no"); a longer phrase said twice in a
    row is Whisper hearing its prompt's sentence again.
    """
    words = [w for w in map(norm, text.split()) if w]
    return any(
        words[i : i + n] == words[i + n : i + 2 * n]
        for n in range(REPEATED_WORDS, len(words) // 2 + 1)
        for i in range(len(words) - 2 * n + 1)
    )
