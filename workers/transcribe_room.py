"""Job: transcribe the room, every speaker's words onto the room clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from faster_whisper import WhisperModel
from rq import get_current_job

from spaces import keys
from spaces.exceptions import NotFound
from spaces.languages import AUTO
from spaces.models import SpeakerLanguage, Word
from transcribe import room
from transcribe.context_pass import clips_to_bytes, context_clips
from transcribe.language import decide, speaks_language
from transcribe.levels import Levels
from transcribe.transcribe import TranscribeOptions, transcribe
from workers.environment import Environment, environment
from workers.levels import read_levels
from workers.mix import level_gain
from workers.stage import Progress, stage
from workers.tracks import load_track_audio, track_pieces

MAX_ROOM_PASSES = 2
"""Whisper passes a room job runs at once (runs of the mix, overlap clips; :mod:`transcribe.room`).

Each pass is a replica of the model, +0.15-0.25 GB of the job's memory with
``base`` (the 10-minute bench space: a worker at 601 -> 798 MB): two cut
that room's transcription from 84 s to 62 s of wall time on two cores; more
add memory for little on small machines.
"""


def room_passes(workers: int) -> int:
    """The passes a room job runs: one per worker at most (the room is one job; the others wait on it)."""
    return max(1, min(workers, MAX_ROOM_PASSES))


def room_threads(threads: int, passes: int) -> int:
    """The threads of a room job's one pass where it runs one: what its ``passes`` have together.

    ``threads``: a worker's (:attr:`Settings.model_threads`), shared among
    the passes, each at least one.
    """
    return passes * max(1, threads // passes)


def pass_layout(heard: Sequence[Levels], threads: int, passes: int) -> tuple[int, int]:
    """``(threads per pass, passes)`` of the room job's model, ``heard``: the levels of the room its
    mix is heard from (none: its tracks one by one).

    Side by side where the room pass hears its mix in runs; else one pass on
    the threads they would have had together: a room heard in one run is one
    Whisper call, and on one of the job's threads it took 1.6-2.1x the wall
    time of plain faster-whisper on the mix on both (the seven-speaker bench
    space, a quiet machine); both threads hear the same words.
    """
    if room.runs(heard, passes) > 1:
        return max(1, threads // passes), passes
    return room_threads(threads, passes), 1


@stage
def transcribe_room(space_id: str) -> int:
    """Write every track's ``words/{track_id}.json``; returns the room's number of words.

    The room is transcribed from its mix, each word on the speaker loudest
    on their own track at that moment, overlaps from the tracks themselves
    (:mod:`transcribe.room`). A room whose speakers are transcribed in
    different languages cannot share one Whisper pass: there each track is
    transcribed on its own, as before, in this one job (one model load).
    So is a room in another language than English for now: the bench
    measures the room pass in English only, and on the French test space
    it hears one word fewer than the per-track pass with its context pass.
    """
    cpu = time.process_time()
    env = environment()
    manifest = env.manifest(space_id)
    track_ids = [t for t, _ in manifest.tracks]
    levels = {t: read_levels(env, space_id, t) for t in track_ids}
    # The one model of the job (language, room pass, per-track fallback):
    # each model loaded is its own memory.
    model = _room_model(env, levels)
    speakers = {speaker for _, speaker in manifest.tracks}
    bars = [Progress(env.catalog, space_id, f"transcribe:{s}") for s in sorted(speakers)]

    def progress(fraction: float) -> None:
        for bar in bars:
            bar(fraction)

    progress(0.0)
    languages = {t: track_language(env, space_id, t, model) for t in track_ids}
    # An English-only model is told English whatever the speech: it knows no other.
    told = {t: lang.language if lang.model_speaks else "en" for t, lang in languages.items()}
    if set(told.values()) == {"en"} and _mostly_in_turn(levels):
        words, errors = _room_words(env, space_id, model, track_ids, levels, told[track_ids[0]], progress)
        # No context pass after the room's: its words were heard in context already
        # (clips of the mix redone with a prompt lost more words than they fixed).
        clips: dict[str, bytes] = dict.fromkeys(track_ids, clips_to_bytes([]))
    else:
        words, errors, clips = {}, {}, {}
        for n, t in enumerate(track_ids):

            def share(fraction: float, done: int = n) -> None:
                progress((done + fraction) / len(track_ids))

            words[t], errors[t], clips[t] = _track_words(env, space_id, t, model, told[t], share)
    for t, speaker in manifest.tracks:
        # The utterances to redo with the room's text as prompt (assemble), if any.
        env.blobs.put(keys.context_clips(space_id, t), clips[t], content_type="application/octet-stream")
        env.write_json(
            keys.words(space_id, t),
            {
                "track_id": t,
                "speaker": speaker,
                "language": languages[t].to_dict(),
                "words": [w.to_dict() for w in words[t]],
                "errors": errors[t],
            },
        )
    progress(1.0)
    _report_cpu(time.process_time() - cpu)
    return sum(len(w) for w in words.values())


def _room_model(env: Environment, levels: dict[str, Levels | None]) -> WhisperModel:
    """The job's model (:func:`pass_layout`); the per-track path hears one track after another."""
    heard = [lv for _, lv in _known(levels)] if _mostly_in_turn(levels) else []
    threads, passes = pass_layout(heard, env.settings.model_threads, room_passes(env.settings.worker_count))
    return env.model(passes=passes, threads=threads)


def _report_cpu(seconds: float) -> None:
    """The job's CPU time (every thread's, model load and decoding included), in its rq meta.

    What the quality test and the bench compare with the mix baseline's: on
    a shared machine wall time says more about the neighbours than the job.
    """
    job = get_current_job()
    if job is not None:
        job.meta["cpu_seconds"] = seconds
        job.save_meta()  # type: ignore[no-untyped-call]


def _room_words(
    env: Environment,
    space_id: str,
    model: WhisperModel,
    track_ids: list[str],
    levels: dict[str, Levels | None],
    language: str,
    progress: Callable[[float], None],
) -> tuple[dict[str, list[Word]], dict[str, list[str]]]:
    """Each track's words and decoding errors, from one pass over the room's mix.

    The mix is summed segment by segment and only the overlaps' audio of each
    track is kept, so memory is the mix's plus the segments read ahead (of
    the track being summed and the next: at most 65 of each).
    """
    tracks = {t: env.track(space_id, t) for t in track_ids}
    errors: dict[str, list[str]] = {t: [] for t in track_ids}
    # The track's id as its label: a speaker who rejoined has two tracks.
    heard = room.transcribe_tracks(
        model,
        [
            room.TrackAudio(t, lv, track_pieces(env, space_id, tracks[t], errors[t]), level_gain(lv))
            for t, lv in _known(levels)
        ],
        start=min(tr.start for tr in tracks.values()),
        end=max(tr.end for tr in tracks.values()),
        options=TranscribeOptions(language=language),
        on_progress=progress,
    )
    speaker = {t: tr.speaker for t, tr in tracks.items()}
    return {t: [replace(w, speaker=speaker[t]) for w in heard if w.speaker == t] for t in track_ids}, errors


def _mostly_in_turn(levels: dict[str, Levels | None]) -> bool:
    """Whether the room pass fits: every track's levels known, and speakers mostly taking turns.

    Where most of the speech is people talking over each other, the mix is
    no context for anyone's words; each track alone is.
    """
    known = [lv for lv in levels.values() if lv is not None]
    return len(known) == len(levels) and room.overlap_share(known) <= room.RoomRules().max_overlap_share


def _known(levels: dict[str, Levels | None]) -> list[tuple[str, Levels]]:
    return [(t, lv) for t, lv in levels.items() if lv is not None]


def _track_words(
    env: Environment,
    space_id: str,
    track_id: str,
    model: WhisperModel,
    language: str,
    progress: Callable[[float], None],
) -> tuple[list[Word], list[str], bytes]:
    """One track transcribed on its own: its words, decoding errors and context clips."""
    track = env.track(space_id, track_id)
    start, audio, errors = load_track_audio(env, space_id, track)
    if not audio.size:
        return [], errors, clips_to_bytes([])
    words = transcribe(
        model,
        audio,
        speaker=track.speaker,
        offset=start,
        options=TranscribeOptions(language=language),
        on_progress=progress,
        others=_others_levels(env, space_id, track_id),
    )
    return words, errors, clips_to_bytes(context_clips(audio, words, offset=start) if words else [])


def _others_levels(env: Environment, space_id: str, track_id: str) -> list[Levels]:
    """The levels of the space's other tracks (measured by the levels stage)."""
    others = (read_levels(env, space_id, other) for other, _ in env.manifest(space_id).tracks if other != track_id)
    return [lv for lv in others if lv is not None]


def track_language(env: Environment, space_id: str, track_id: str, model: WhisperModel) -> SpeakerLanguage:
    """The language to transcribe a track in: the space's, else detected with the room as evidence."""
    manifest = env.manifest(space_id)
    multilingual = speaks_language(model)
    language = env.language(space_id)
    if language != AUTO:
        return SpeakerLanguage(language, "set", 1.0, model_speaks=multilingual or language == "en")
    if not multilingual:
        return SpeakerLanguage("en", "model", 1.0)
    detected = {t: _detected(env, space_id, t) for t, _ in manifest.tracks}
    own = detected.pop(track_id)
    decision = decide(own, [p for p in detected.values() if p])
    if decision is None:  # no speech to tell from: the room's language, else English
        room = decide({lang: 1.0 for p in detected.values() for lang in list(p)[:1]}, list(detected.values()))
        return SpeakerLanguage(room[0] if room else "en", "detected", 0.0)
    return SpeakerLanguage(decision[0], "detected", decision[1])


def _detected(env: Environment, space_id: str, track_id: str) -> dict[str, float]:
    try:
        return dict(env.read_json(keys.language(space_id, track_id))["probabilities"])
    except NotFound:
        return {}
