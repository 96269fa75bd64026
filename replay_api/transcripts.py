"""Reading a space's transcript and cutting windows of it (clips, ``?from=&to=``)."""

from __future__ import annotations

import json
from dataclasses import replace

from spaces import keys
from spaces.blobstore import BlobStore
from spaces.captions import build_cues, shifted, to_webvtt
from spaces.exceptions import StorageError
from spaces.models import Transcript


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
            turns.append(replace(turn, words=words))
    gaps = tuple(g for g in transcript.gaps if g.end > start and g.start < end)
    return replace(transcript, turns=tuple(turns), gaps=gaps)


def webvtt(transcript: Transcript, *, offset: float = 0.0) -> str:
    """WebVTT cues with ``<v Speaker>`` tags, times shifted by ``-offset`` (a clip's start).

    Cut by the one caption writer (``spaces.captions``): a clip's cues are the
    replay's, word for word, as far as the clip holds their words.
    """
    return to_webvtt(shifted(build_cues(transcript.turns), offset))
