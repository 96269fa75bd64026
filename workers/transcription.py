"""Job: transcribe one speaker's track onto the room clock."""

from __future__ import annotations

from spaces import keys
from transcribe.context import clips_to_bytes, context_clips
from transcribe.levels import Levels
from transcribe.transcribe import TranscribeOptions, transcribe
from workers.context import Context, Progress, context, stage
from workers.levels import read_levels
from workers.tracks import load_track_audio


@stage
def transcribe_track(space_id: str, track_id: str) -> int:
    """Write ``words/{track_id}.json``; returns the number of words."""
    ctx = context()
    track = ctx.track(space_id, track_id)
    progress = Progress(ctx.catalog, space_id, f"transcribe:{track.speaker}")
    progress(0.0)
    start, audio, errors = load_track_audio(ctx, space_id, track)
    words = (
        transcribe(
            ctx.model(),
            audio,
            speaker=track.speaker,
            offset=start,
            options=TranscribeOptions(),
            on_progress=progress,
            others=_others_levels(ctx, space_id, track_id),
        )
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
        {"track_id": track_id, "speaker": track.speaker, "words": [w.to_dict() for w in words], "errors": errors},
    )
    progress(1.0)
    return len(words)


def _others_levels(ctx: Context, space_id: str, track_id: str) -> list[Levels]:
    """The levels of the space's other tracks (measured by the levels stage)."""
    others = (read_levels(ctx, space_id, other) for other, _ in ctx.manifest(space_id).tracks if other != track_id)
    return [lv for lv in others if lv is not None]
