"""Job: transcribe one speaker's track onto the room clock."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from spaces import keys
from spaces.models import Track
from transcribe.audio import decode, timeline
from transcribe.exceptions import AudioError
from transcribe.levels import levels
from transcribe.model import load_model
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
    settings = ctx.settings
    model = load_model(
        settings.whisper_model,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_threads,
    )
    words = (
        transcribe(model, audio, speaker=track.speaker, offset=start, options=TranscribeOptions(),
                   on_progress=progress)
        if audio.size
        else []
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
