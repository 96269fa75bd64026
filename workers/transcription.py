"""Job: transcribe one speaker's track onto the room clock."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from spaces import keys
from spaces.models import Track
from transcribe.audio import decode, timeline
from transcribe.context import clips_to_bytes, context_clips
from transcribe.exceptions import AudioError
from transcribe.levels import levels
from transcribe.transcribe import TranscribeOptions, transcribe
from workers.context import Context, Progress, context

log = logging.getLogger(__name__)


def transcribe_track(space_id: str, track_id: str) -> int:
    """Write ``words/{track_id}.json``; returns the number of words."""
    ctx = context()
    track = ctx.track(space_id, track_id)
    progress = Progress(ctx.catalog, space_id, f"transcribe:{track.speaker}")
    progress(0.0)
    start, audio, errors = load_track_audio(ctx, space_id, track)
    model = ctx.model()
    words = (
        transcribe(model, audio, speaker=track.speaker, offset=start, options=TranscribeOptions(),
                   on_progress=progress)
        if audio.size
        else []
    )
    # The utterances to redo with the room's text as prompt, once every track
    # is transcribed (the assemble job): kept now so nothing is decoded twice.
    ctx.blobs.put(
        keys.context_clips(space_id, track_id),
        clips_to_bytes(context_clips(audio, words, offset=start) if words else []),
        content_type="application/octet-stream",
    )
    ctx.write_json(
        keys.words(space_id, track_id),
        {
            "track_id": track_id,
            "speaker": track.speaker,
            "words": [w.to_dict() for w in words],
            "levels": levels(audio, offset=start).to_dict(),
            "errors": errors,
        },
    )
    progress(1.0)
    return len(words)


def load_track_audio(ctx: Context, space_id: str, track: Track) -> tuple[float, np.ndarray, list[str]]:
    """The track's segments decoded and placed on one array.

    A segment that does not decode is skipped and reported, so one damaged
    file costs its own seconds, not the track.
    """
    pieces: list[tuple[float, np.ndarray]] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="spaces-track-") as tmp:
        for segment in track.segments:
            path = Path(tmp) / f"{segment.seq:06d}.ogg"
            ctx.blobs.download(segment.key, path)
            try:
                pieces.append((segment.offset, decode(path)))
            except AudioError as e:
                log.warning("space %s track %s segment %d skipped: %s", space_id, track.track_id,
                            segment.seq, e, extra={"space_id": space_id})
                errors.append(f"segment {segment.seq}: {e}")
            path.unlink()
    if not pieces:
        return track.start, np.zeros(0, dtype=np.float32), errors
    start, audio = timeline(pieces)
    return start, audio, errors
