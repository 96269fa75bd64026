"""Reading a space's transcript and cutting windows of it (clips, ``?from=&to=``)."""

from __future__ import annotations

import json

from spaces import keys
from spaces.blobstore import BlobStore
from spaces.exceptions import StorageError
from spaces.models import Transcript, Turn, Word

#: A caption cue ends after this many seconds or words, or at a sentence end.
CUE_SECONDS = 6.0
CUE_WORDS = 14


def load(blobs: BlobStore, space_id: str) -> Transcript:
    raw = blobs.get(keys.transcript(space_id))
    try:
        return Transcript.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError) as e:
        raise StorageError(f"transcript of {space_id!r} is unreadable", retryable=False) from e


def window(transcript: Transcript, start: float, end: float, *, margin: float = 0.0) -> Transcript:
    """The words that overlap ``[start, end)`` by more than ``margin`` s, still grouped in their turns."""
    turns = []
    for turn in transcript.turns:
        if turn.end <= start + margin or turn.start >= end - margin:
            continue
        words = tuple(w for w in turn.words if w.end > start + margin and w.start < end - margin)
        if words:
            turns.append(Turn(turn.speaker, words))
    gaps = tuple(g for g in transcript.gaps if g.end > start and g.start < end)
    return Transcript(transcript.space_id, transcript.duration, transcript.speakers, tuple(turns), gaps)


def webvtt(transcript: Transcript, *, offset: float = 0.0) -> str:
    """WebVTT cues with ``<v Speaker>`` tags, times shifted by ``-offset``.

    Cues are built from word timings, never across a change of speaker.
    """
    lines = ["WEBVTT", ""]
    for n, (speaker, words) in enumerate(_cues(transcript.turns), start=1):
        begin = max(0.0, words[0].start - offset)
        finish = max(begin + 0.001, words[-1].end - offset)
        text = " ".join(_vtt_escape(w.text) for w in words)
        lines += [
            str(n),
            f"{_vtt_time(begin)} --> {_vtt_time(finish)}",
            f"<v {_vtt_escape(speaker)}>{text}",
            "",
        ]
    return "\n".join(lines)


def _cues(turns: tuple[Turn, ...]) -> list[tuple[str, list[Word]]]:
    cues: list[tuple[str, list[Word]]] = []
    for turn in turns:
        current: list[Word] = []
        for word in turn.words:
            if current and (
                word.end - current[0].start > CUE_SECONDS
                or len(current) >= CUE_WORDS
                or current[-1].text.endswith((".", "?", "!"))
            ):
                cues.append((turn.speaker, current))
                current = []
            current.append(word)
        if current:
            cues.append((turn.speaker, current))
    return cues


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
