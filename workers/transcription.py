"""Job: transcribe one speaker's track onto the room clock."""

from __future__ import annotations

from faster_whisper import WhisperModel

from spaces import keys
from spaces.exceptions import NotFound
from spaces.languages import AUTO
from spaces.models import SpeakerLanguage
from transcribe.context import clips_to_bytes, context_clips
from transcribe.language import decide, speaks_language
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
    language = track_language(ctx, space_id, track_id, ctx.model())
    # An English-only model is told English whatever the speech: it knows no other.
    told = language.language if language.model_speaks else "en"
    words = (
        transcribe(
            ctx.model(),
            audio,
            speaker=track.speaker,
            offset=start,
            options=TranscribeOptions(language=told),
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
        {
            "track_id": track_id,
            "speaker": track.speaker,
            "language": language.to_dict(),
            "words": [w.to_dict() for w in words],
            "errors": errors,
        },
    )
    progress(1.0)
    return len(words)


def _others_levels(ctx: Context, space_id: str, track_id: str) -> list[Levels]:
    """The levels of the space's other tracks (measured by the levels stage)."""
    others = (read_levels(ctx, space_id, other) for other, _ in ctx.manifest(space_id).tracks if other != track_id)
    return [lv for lv in others if lv is not None]


def track_language(ctx: Context, space_id: str, track_id: str, model: WhisperModel) -> SpeakerLanguage:
    """The language to transcribe a track in: the space's, else detected with the room as evidence."""
    manifest = ctx.manifest(space_id)
    multilingual = speaks_language(model)
    language = ctx.language(space_id)
    if language != AUTO:
        return SpeakerLanguage(language, "set", 1.0, model_speaks=multilingual or language == "en")
    if not multilingual:
        return SpeakerLanguage("en", "model", 1.0)
    detected = {t: _detected(ctx, space_id, t) for t, _ in manifest.tracks}
    own = detected.pop(track_id)
    decision = decide(own, [p for p in detected.values() if p])
    if decision is None:  # no speech to tell from: the room's language, else English
        room = decide({lang: 1.0 for p in detected.values() for lang in list(p)[:1]}, list(detected.values()))
        return SpeakerLanguage(room[0] if room else "en", "detected", 0.0)
    return SpeakerLanguage(decision[0], "detected", decision[1])


def _detected(ctx: Context, space_id: str, track_id: str) -> dict[str, float]:
    try:
        return dict(ctx.read_json(keys.language(space_id, track_id))["probabilities"])
    except NotFound:
        return {}
