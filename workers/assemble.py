"""Job: merge the tracks' words into the space's transcript, captions and index."""

from __future__ import annotations

import logging
from dataclasses import replace

from spaces import keys
from spaces.captions import build_cues, to_srt, to_webvtt
from spaces.exceptions import NotFound
from spaces.languages import main_language
from spaces.models import Gap, Manifest, SpeakerLanguage, Transcript, Word
from transcribe.assemble import TrackWords
from transcribe.assemble import assemble as assemble_turns
from transcribe.context_pass import Clip, clips_from_bytes, refine_room
from workers.environment import Environment, environment
from workers.levels import read_levels
from workers.stage import Progress, stage, superseded

log = logging.getLogger(__name__)

#: ``Gap.reason`` of speech by someone who chose not to be recorded.
NOT_RECORDED = "not_recorded"


@stage
def assemble(space_id: str) -> int:
    """Write transcript.json, captions.vtt/.srt and the search rows; returns turns."""
    env = environment()
    progress = Progress(env.catalog, space_id, "assemble")
    progress(0.0)
    manifest = env.manifest(space_id)
    tracks = [_track_words(env, space_id, track_id) for track_id, _ in manifest.tracks]
    clips = [_clips(env, space_id, track_id) for track_id, _ in manifest.tracks]
    languages = _languages(env, space_id, manifest)
    # Each speaker's clips are redone in the language their track was told.
    told = {name: lang.language if lang.model_speaks else "en" for name, lang in languages.items()}
    # The context pass is most of the time: the rest (turns, captions, index) is quick.
    redone = refine_room(
        env.model() if any(clips) else None,
        tracks,
        clips,
        on_progress=lambda done: progress(0.9 * done),
        languages=told,
    )
    turns = assemble_turns(redone)
    if superseded(space_id):  # a reprocess began during the context pass: its run writes
        return 0
    turns = [replace(t, language=languages[t.speaker].language) if t.speaker in languages else t for t in turns]
    transcript = Transcript(
        space_id=space_id,
        duration=env.duration(manifest),
        speakers=tuple(speaker for _, speaker in manifest.tracks),
        turns=tuple(turns),
        gaps=gaps_of(manifest),
        language=manifest.language,
        languages=languages,
    )
    env.write_json(keys.transcript(space_id), transcript.to_dict())
    cues = build_cues(turns)
    vtt = to_webvtt(cues, language=main_language(turns))
    env.blobs.put(keys.captions(space_id, "vtt"), vtt.encode(), content_type="text/vtt")
    env.blobs.put(keys.captions(space_id, "srt"), to_srt(cues).encode(), content_type="application/x-subrip")
    env.catalog.replace_turns(space_id, turns)
    space = env.catalog.get_space(space_id)
    env.catalog.put_space(
        replace(
            space,
            duration=transcript.duration,
            speakers=transcript.speakers,
            partial=manifest.partial,
            languages=languages,
        )
    )
    progress(1.0)
    return len(turns)


def gaps_of(manifest: Manifest) -> tuple[Gap, ...]:
    """Speech kept out of the transcript: that of speakers who chose not to be recorded."""
    return tuple(
        sorted(
            (Gap(speaker, start, end, NOT_RECORDED) for speaker, start, end in manifest.unrecorded),
            key=lambda g: (g.start, g.speaker),
        )
    )


def _languages(env: Environment, space_id: str, manifest: Manifest) -> dict[str, SpeakerLanguage]:
    """Each speaker's language, as their track was transcribed (a speaker with two tracks: the first)."""
    out: dict[str, SpeakerLanguage] = {}
    for track_id, speaker in manifest.tracks:
        data = env.read_json(keys.words(space_id, track_id)).get("language")
        if data and speaker not in out:
            out[speaker] = SpeakerLanguage.from_dict(data)
    return out


def _clips(env: Environment, space_id: str, track_id: str) -> list[Clip]:
    try:
        return clips_from_bytes(env.blobs.get(keys.context_clips(space_id, track_id)))
    except NotFound:  # transcribed before the context pass existed
        return []


def _track_words(env: Environment, space_id: str, track_id: str) -> TrackWords:
    data = env.read_json(keys.words(space_id, track_id))
    return TrackWords(
        speaker=data["speaker"],
        words=[Word.from_dict(w) for w in data["words"]],
        levels=read_levels(env, space_id, track_id),
    )
