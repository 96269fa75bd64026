"""Cross-talk bleed: another speaker's voice picked up by a microphone.

When A speaks, B's microphone hears A too, say 18 dB lower, and Whisper
transcribes it on B's track: words that duplicate A's, at the same time.
Such a word is told from B's own by two signs, and both must hold:

1. A's track has the same word (or one close in spelling) at the same time;
2. at that moment A's track is much louder than B's (``margin_db``).

Whisper often mishears the quiet copy ("clubs" as "close"), so a word of B
without a twin on A's track is bleed too when B's track is quiet at that
moment, both against A (``margin_db``) and against B's own speaking level
(``quiet_db``) while A has a word at that time. B's own words are loud on
B's microphone, so neither rule touches them, even when A and B talk at once.
Without levels for both tracks nothing is removed: text alone cannot say
which microphone a voice was spoken into.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spaces.models import Word
from transcribe.levels import Levels
from transcribe.loops import norm


@dataclass(frozen=True)
class BleedRules:
    margin_db: float = 10.0
    """How much louder the source's track must be than the pick-up's."""
    quiet_db: float = 10.0
    """A word without a twin is bleed only this far below its track's own speech."""
    slack: float = 0.5
    """Seconds of timing difference allowed between a word and its twin."""
    similarity: float = 0.7
    """Spelling similarity (0-1) that makes two words twins."""


@dataclass(frozen=True)
class _Track:
    speaker: str
    words: Sequence[Word]
    levels: Levels
    starts: list[float]
    longest: float


def similar(a: str, b: str, threshold: float) -> bool:
    a, b = norm(a), norm(b)
    if not a or not b:
        return False
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= threshold


def find_bleed(
    tracks: Sequence[tuple[str, Sequence[Word], Levels | None]], rules: BleedRules = BleedRules()
) -> list[set[int]]:
    """Indexes of the bleed words of each track.

    Args:
        tracks: ``(speaker, words, levels)`` per track, words sorted by start.
        rules: Thresholds.

    Returns:
        For each track, in order, the indexes into its words that are bleed.
    """
    leveled = [
        _Track(speaker, words, lv, [w.start for w in words], max((w.end - w.start for w in words), default=0.0))
        for speaker, words, lv in tracks
        if lv is not None
    ]
    index_of = [i for i, (_, _, lv) in enumerate(tracks) if lv is not None]
    found: list[set[int]] = [set() for _ in tracks]
    for k, victim in enumerate(leveled):
        sources = [s for s in leveled if s.speaker != victim.speaker]
        if not sources:
            continue
        twins = {i for i, w in enumerate(victim.words) if _has_louder_twin(w, victim, sources, rules)}
        own = [victim.levels.loudness(w.start, w.end) for i, w in enumerate(victim.words) if i not in twins]
        own_level = float(np.median(own)) if own else None
        strays = {
            i
            for i, w in enumerate(victim.words)
            if i not in twins and own_level is not None and _is_quiet_echo(w, victim, sources, own_level, rules)
        }
        found[index_of[k]] = twins | strays
    return found


def _near(source: _Track, start: float, end: float) -> list[Word]:
    """The source's words overlapping ``[start, end]``."""
    lo = bisect.bisect_left(source.starts, start - source.longest)
    hi = bisect.bisect_right(source.starts, end)
    return [w for w in source.words[lo:hi] if w.end > start and w.start < end]


def _has_louder_twin(word: Word, victim: _Track, sources: Sequence[_Track], rules: BleedRules) -> bool:
    for source in sources:
        for twin in _near(source, word.start - rules.slack, word.end + rules.slack):
            if not similar(word.text, twin.text, rules.similarity):
                continue
            start, end = min(word.start, twin.start), max(word.end, twin.end)
            if source.levels.loudness(start, end) - victim.levels.loudness(start, end) >= rules.margin_db:
                return True
    return False


def _is_quiet_echo(word: Word, victim: _Track, sources: Sequence[_Track], own_level: float, rules: BleedRules) -> bool:
    here = victim.levels.loudness(word.start, word.end)
    if here > own_level - rules.quiet_db:
        return False
    for source in sources:
        if not _near(source, word.start - rules.slack / 2, word.end + rules.slack / 2):
            continue
        if source.levels.loudness(word.start, word.end) - here >= rules.margin_db:
            return True
    return False
