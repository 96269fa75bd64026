"""Local agreement (whisper_streaming's ``HypothesisBuffer``): commit the words two successive passes agree on.

Interim captions are passes over a growing utterance; each pass may read
the end of it differently. Only what two passes in a row agree on is
committed, so the committed text only grows and the wobble stays in the
tentative tail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from spaces.models import Word


def _norm(text: str) -> str:
    return re.sub(r"[^\w']+", "", text.lower())


class HypothesisBuffer:
    """Local agreement: a word is committed once two successive passes agree on it.

    Each pass hands in the words of the whole utterance so far. Words the
    buffer already committed (by time, then by a matching run of text, as
    whisper_streaming does) are skipped; of the rest, the longest prefix
    the previous pass also had is committed.
    """

    def __init__(self, *, slack: float = 0.1) -> None:
        self.slack = slack
        self.committed: list[Word] = []
        self._previous: list[Word] = []

    def insert(self, words: Sequence[Word]) -> list[Word]:
        """Take one pass's words; return the words newly committed by it."""
        new = self.new_words(words)
        agreed = 0
        for a, b in zip(new, self._previous, strict=False):
            if _norm(a.text) != _norm(b.text):
                break
            agreed += 1
        fresh = new[:agreed]
        self.committed.extend(fresh)
        self._previous = new[agreed:]
        return fresh

    @property
    def tentative(self) -> list[Word]:
        """The last pass's words that no two passes agree on yet."""
        return list(self._previous)

    def new_words(self, words: Sequence[Word]) -> list[Word]:
        """``words`` less those already committed."""
        if not self.committed:
            return list(words)
        last_end = self.committed[-1].end
        new = [w for w in words if w.start > last_end - self.slack]
        # A word heard again with a slightly earlier start: drop the longest
        # run at the head of ``new`` that repeats the committed tail.
        tail = [_norm(w.text) for w in self.committed[-5:]]
        head = [_norm(w.text) for w in new[:5]]
        for n in range(min(len(tail), len(head)), 0, -1):
            if tail[-n:] == head[:n]:
                return new[n:]
        return new
