"""Job: transcribe the room, every speaker's words onto the room clock."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from faster_whisper import WhisperModel
from rq import get_current_job

from spaces import keys
from spaces.languages import AUTO
from spaces.models import SpeakerLanguage, Track, Word
from transcribe import room
from transcribe.context_pass import clips_to_bytes, context_clips
from transcribe.language import Probabilities, decide, speaks_language
from transcribe.levels import Levels
from transcribe.room_audio import Detection, RoomAudio
from transcribe.samples import Samples
from transcribe.transcribe import TranscribeOptions, transcribe
from workers.environment import Environment, environment
from workers.mix import level_gain, yield_cpu
from workers.stage import Progress, stage
from workers.tracks import room_track

log = logging.getLogger(__name__)

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
    """Write every track's levels, its speaker's language evidence in a space in ``auto``, and its
    words (``words/{track_id}.levels.json``, ``.language.json``, ``.json``); returns the room's number of words.

    Each track is read once (:class:`~transcribe.room_audio.RoomAudio`):
    its levels, its share of the room's mix, and its audio kept on disk for
    where two people speak at once. The room is transcribed from its mix,
    each word on the speaker loudest on their own track at that moment,
    overlaps from the tracks themselves (:mod:`transcribe.room`). A room
    whose speakers are transcribed in different languages cannot share one
    Whisper pass: there each track is transcribed on its own, as before, in
    this one job (one model load). So is a room in another language than
    English for now: the bench measures the room pass in English only, and
    on the French test space it hears one word fewer than the per-track
    pass with its context pass.

    One job where the levels were a job before it: a job's start, the
    model's load and every track's decode were paid twice (the seven-speaker
    bench space: the levels job took 2.3-2.8 s in ``auto``).
    """
    cpu = time.process_time()
    env = environment()
    manifest = env.manifest(space_id)
    tracks = {t: env.track(space_id, t) for t, _ in manifest.tracks}
    bars = [Progress(env.catalog, space_id, f"transcribe:{s}") for s in sorted({s for _, s in manifest.tracks})]

    def progress(fraction: float) -> None:
        for bar in bars:
            bar(fraction)

    progress(0.0)
    errors: dict[str, list[str]] = {t: [] for t in tracks}
    with tempfile.TemporaryDirectory(prefix="spaces-room-") as tmp:
        audio = read_room(env, space_id, tracks, errors, Path(tmp))
        # The one model of the job (language, room pass, per-track fallback):
        # each model loaded is its own memory.
        model = _room_model(env, audio.levels)
        # The space's language, read once (a blob, and the catalog for a live space).
        language = env.language(space_id)
        detection = _detection(env, language, audio, model)
        heard = _room_pass(space_id, language, audio, model, detection, progress)
        evidence = detection.evidence() if detection else {}
        for t, (probabilities, seconds) in evidence.items():
            env.write_json(keys.language(space_id, t), {"probabilities": probabilities, "seconds": seconds})
        languages = _languages(language, audio.labels, model, evidence)
        speakers = {t: tr.speaker for t, tr in tracks.items()}
        if heard is not None and _english(languages):
            # The track's id as its label: a speaker who rejoined has two tracks.
            words = {t: [replace(w, speaker=speakers[t]) for w in heard if w.speaker == t] for t in tracks}
            # No context pass after the room's: its words were heard in context already
            # (clips of the mix redone with a prompt lost more words than they fixed).
            clips = dict.fromkeys(tracks, clips_to_bytes([]))
        else:
            if heard is not None:  # detection was done after the pass
                _not_english(space_id, "its words dropped")
            words, clips = _track_by_track(audio, model, speakers, _told(languages), progress)
    for t, tr in tracks.items():
        # The utterances to redo with the room's text as prompt (assemble), if any.
        env.blobs.put(keys.context_clips(space_id, t), clips[t], content_type="application/octet-stream")
        env.write_json(
            keys.words(space_id, t),
            {
                "track_id": t,
                "speaker": tr.speaker,
                "language": languages[t].to_dict(),
                "words": [w.to_dict() for w in words[t]],
                "errors": errors[t],
            },
        )
    progress(1.0)
    _report_cpu(time.process_time() - cpu)
    return sum(len(w) for w in words.values())


def read_room(
    env: Environment, space_id: str, tracks: dict[str, Track], errors: dict[str, list[str]], directory: Path
) -> RoomAudio:
    """Every track read (its segments' decoding errors in ``errors``), its levels stored as they come."""
    bars = {t: Progress(env.catalog, space_id, f"levels:{track.speaker}") for t, track in tracks.items()}
    for bar in bars.values():
        bar(0.0)
    ids = list(tracks)
    audio = RoomAudio(
        ids,
        start=min(tr.start for tr in tracks.values()),
        end=max(tr.end for tr in tracks.values()),
        directory=directory,
    )
    sources = [room_track(env, space_id, tracks[t], errors[t]) for t in ids]
    with closing(audio.read(sources, gain=level_gain)) as read:
        for i, track_levels in read:
            env.write_json(keys.levels(space_id, ids[i]), track_levels.to_dict())
            bars[ids[i]](1.0)
    return audio


def _room_pass(
    space_id: str,
    language: str,
    audio: RoomAudio,
    model: WhisperModel,
    detection: Detection | None,
    progress: Callable[[float], None],
) -> list[Word] | None:
    """The room's words from its mix, heard in English; None where the room pass does not fit.

    It fits where speakers mostly take turns, all in English. With the
    speakers' languages being detected beside it (``detection``), it runs in
    English, as most rooms speak one language, and stops where it next
    reports progress once detection says otherwise.
    """
    if not _mostly_in_turn(audio.levels):
        return None
    if detection is None and not _english(_languages(language, audio.labels, model, {})):
        return None
    english: list[bool] = []  # detection's verdict, once it is in

    def checked(fraction: float) -> None:
        progress(fraction)
        if detection is not None and detection.done() and not english:
            english.append(_english(_languages(language, audio.labels, model, detection.evidence())))
        if english and not english[0]:
            raise _OtherLanguage

    try:
        return audio.transcribe(model, options=TranscribeOptions(language="en"), on_progress=checked)
    except _OtherLanguage:
        _not_english(space_id, "it stopped")
        return None


def _not_english(space_id: str, what: str) -> None:
    log.info(
        "space %s: a speaker is not in English: the room pass %s, track by track",
        space_id,
        what,
        extra={"space_id": space_id},
    )


class _OtherLanguage(Exception):
    """The room pass is stopped: a speaker is not transcribed in English."""


def _track_by_track(
    audio: RoomAudio,
    model: WhisperModel,
    speaker: dict[str, str],
    told: dict[str, str],
    progress: Callable[[float], None],
) -> tuple[dict[str, list[Word]], dict[str, bytes]]:
    """Each track's words and context clips, each track transcribed on its own in its language (``told``)."""
    words, clips = {}, {}
    for n, t in enumerate(audio.labels):

        def share(fraction: float, done: int = n) -> None:
            progress((done + fraction) / len(audio.labels))

        others = [lv for k, lv in enumerate(audio.levels) if k != n]
        words[t], clips[t] = _track_words(model, speaker[t], audio.track(n), told[t], others, share)
    return words, clips


def _room_model(env: Environment, levels: Sequence[Levels]) -> WhisperModel:
    """The job's model (:func:`pass_layout`); the per-track path hears one track after another."""
    heard = levels if _mostly_in_turn(levels) else []
    threads, passes = pass_layout(heard, env.settings.model_threads, room_passes(env.settings.worker_count))
    return env.model(passes=passes, threads=threads)


def _detection(env: Environment, language: str, audio: RoomAudio, model: WhisperModel) -> Detection | None:
    """Each speaker's language detected beside the room pass (:class:`Detection`), in a space whose
    ``language`` is ``auto`` and with a model that speaks languages: on one thread of a model instance
    of its own, at idle priority."""
    if language != AUTO or not speaks_language(model):
        return None
    return Detection(audio, lambda: env.model(threads=1), before=yield_cpu)


def _languages(
    language: str, track_ids: Sequence[str], model: WhisperModel, evidence: dict[str, tuple[Probabilities, float]]
) -> dict[str, SpeakerLanguage]:
    """Each track's language (:func:`track_language`) in a space of ``language``, given what detection
    found (:class:`Detection`)."""
    detected = {t: probabilities for t, (probabilities, _) in evidence.items()}
    return {t: track_language(language, t, track_ids, model, detected) for t in track_ids}


def _told(languages: dict[str, SpeakerLanguage]) -> dict[str, str]:
    """The language each track is transcribed in: an English-only model is told English whatever the
    speech (it knows no other)."""
    return {t: lang.language if lang.model_speaks else "en" for t, lang in languages.items()}


def _english(languages: dict[str, SpeakerLanguage]) -> bool:
    return set(_told(languages).values()) == {"en"}


def _report_cpu(seconds: float) -> None:
    """The job's CPU time (every thread's, model load and decoding included), in its rq meta.

    What the quality test and the bench compare with the mix baseline's: on
    a shared machine wall time says more about the neighbours than the job.
    """
    job = get_current_job()
    if job is not None:
        job.meta["cpu_seconds"] = seconds
        job.save_meta()  # type: ignore[no-untyped-call]


def _mostly_in_turn(levels: Sequence[Levels]) -> bool:
    """Whether the room pass fits: speakers mostly taking turns.

    Where most of the speech is people talking over each other, the mix is
    no context for anyone's words; each track alone is.
    """
    return room.overlap_share(levels) <= room.RoomRules().max_overlap_share


def _track_words(
    model: WhisperModel,
    speaker: str,
    track: tuple[float, Samples],
    language: str,
    others: list[Levels],
    progress: Callable[[float], None],
) -> tuple[list[Word], bytes]:
    """One track transcribed on its own: its words and context clips; ``others``: the other tracks' levels."""
    start, audio = track
    if not len(audio):
        return [], clips_to_bytes([])
    words = transcribe(
        model,
        audio,
        speaker=speaker,
        offset=start,
        options=TranscribeOptions(language=language),
        on_progress=progress,
        others=others,
    )
    return words, clips_to_bytes(context_clips(audio, words, offset=start) if words else [])


def track_language(
    language: str, track_id: str, track_ids: Sequence[str], model: WhisperModel, detected: dict[str, Probabilities]
) -> SpeakerLanguage:
    """The language to transcribe a track in: the space's (``language``), else detected with the room
    (``track_ids``, every track's) as evidence.

    ``detected``: every track's evidence (:class:`Detection`; none for a track without speech).
    """
    multilingual = speaks_language(model)
    if language != AUTO:
        return SpeakerLanguage(language, "set", 1.0, model_speaks=multilingual or language == "en")
    if not multilingual:
        return SpeakerLanguage("en", "model", 1.0)
    others = [detected.get(t, {}) for t in track_ids if t != track_id]
    decision = decide(detected.get(track_id, {}), [p for p in others if p])
    if decision is None:  # no speech to tell from: the room's language, else English
        room = decide({lang: 1.0 for p in others for lang in list(p)[:1]}, others)
        return SpeakerLanguage(room[0] if room else "en", "detected", 0.0)
    return SpeakerLanguage(decision[0], "detected", decision[1])
