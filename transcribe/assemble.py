"""Every track's words merged into one room timeline of speaker turns.

Per-speaker tracks make diarization a matter of bookkeeping: a word's
speaker is its track's. What is left to decide is which words are not the
track owner's (bleed, see :mod:`transcribe.bleed`; loops, see
:mod:`transcribe.loops`) and how words group into turns.

Overlapping speech is kept, each speaker's words in their own turns, so
turns may overlap in time. A short remark inside someone's long turn ("yes,
exactly") splits that turn, so reading the turns in order follows the
conversation.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace

from spaces.models import Turn, Word
from transcribe.bleed import BleedRules, find_bleed
from transcribe.levels import Levels
from transcribe.loops import LoopRules, drop_loops


@dataclass(frozen=True)
class TrackWords:
    """One track's transcription: its speaker, words and levels (if known)."""

    speaker: str
    words: Sequence[Word]
    levels: Levels | None = None


@dataclass(frozen=True)
class AssembleOptions:
    bleed: BleedRules = BleedRules()
    loops: LoopRules = LoopRules()
    turn_gap: float = 1.5
    """A pause this long (seconds) in one speaker's words starts a new turn."""
    split_interjections: bool = True
    """Split a turn around another speaker's turn that lies wholly inside it."""


def clean_tracks(tracks: Sequence[TrackWords], *, options: AssembleOptions = AssembleOptions()) -> list[list[Word]]:
    """Each track's words without bleed and loops, attributed to the track's speaker."""
    ordered = [sorted(t.words, key=lambda w: (w.start, w.end)) for t in tracks]
    bleed = find_bleed([(t.speaker, words, t.levels) for t, words in zip(tracks, ordered, strict=True)], options.bleed)
    out: list[list[Word]] = []
    for track, words, drop in zip(tracks, ordered, bleed, strict=True):
        kept = [
            w if w.speaker == track.speaker else replace(w, speaker=track.speaker)
            for i, w in enumerate(words)
            if i not in drop
        ]
        out.append(kept)
    return out


def assemble(tracks: Sequence[TrackWords], *, options: AssembleOptions = AssembleOptions()) -> list[Turn]:
    """Merge every track's words into speaker turns, sorted by start.

    Args:
        tracks: One entry per track; several tracks may share a speaker (a
            speaker who rejoined).
        options: Bleed, loop and turn rules.

    Returns:
        Turns sorted by start time (then end); turns of different
        speakers may overlap in time.
    """
    by_speaker: dict[str, list[Word]] = {}
    for track, words in zip(tracks, clean_tracks(tracks, options=options), strict=True):
        by_speaker.setdefault(track.speaker, []).extend(words)
    turns: list[Turn] = []
    for words in by_speaker.values():
        words.sort(key=lambda w: (w.start, w.end))
        turns.extend(_split_at_pauses(drop_loops(words, options.loops), options.turn_gap))
    if options.split_interjections:
        turns = _split_around_interjections(turns)
    # At equal starts the shorter turn first: an interjection before the rest of the turn it cut.
    return sorted(turns, key=lambda t: (t.start, t.end, t.speaker))


def _split_at_pauses(words: Sequence[Word], gap: float) -> list[Turn]:
    turns: list[Turn] = []
    current: list[Word] = []
    last_end = 0.0
    for w in words:
        if current and w.start - last_end >= gap:
            turns.append(Turn(current[0].speaker, tuple(current)))
            current = []
        current.append(w)
        last_end = max(last_end, w.end) if len(current) > 1 else w.end
    if current:
        turns.append(Turn(current[0].speaker, tuple(current)))
    return turns


def _split_around_interjections(turns: list[Turn]) -> list[Turn]:
    ordered = sorted(turns, key=lambda t: t.start)
    starts = [t.start for t in ordered]
    out: list[Turn] = []
    for turn in ordered:
        lo = bisect.bisect_right(starts, turn.start)
        hi = bisect.bisect_left(starts, turn.end)
        cuts = sorted(
            other.start for other in ordered[lo:hi] if other.speaker != turn.speaker and other.end <= turn.end
        )
        if not cuts:
            out.append(turn)
            continue
        pieces: list[list[Word]] = [[]]
        remaining = iter(cuts)
        cut = next(remaining, None)
        for w in turn.words:
            while cut is not None and w.start >= cut:
                pieces.append([])
                cut = next(remaining, None)
            pieces[-1].append(w)
        out.extend(Turn(turn.speaker, tuple(p)) for p in pieces if p)
    return out
