"""Transcript quality, speed and memory against synthetic spaces with known truth.

    .venv/bin/python -m bench.transcripts [--duration 600] [--spaces espeak,answers,many,answers-engines,many-engines]
        [--design room|mix|tracks[,...]] [--workers 2] [--repeat-hours 3] [--shifts 0,0.25,0.5] [--draws 3]
        [--test-spaces] [--errors] [--track-kbps 64] [--language en|auto]

Spaces (synthetic voices, cached; tracks are Ogg/Opus files like the SFU's:
coded as a browser sends them, at ``--track-kbps``, by default the bitrate
the SFU asks browsers for):

- ``espeak``: issue 3's evaluation space, ``--duration`` long: 4 speakers,
  turns of 1 to 20 s, two stretches of overlapping speech, one track where
  another speaker bleeds in at -18 dB, one late joiner, one long silence;
- ``answers``: long turns ending in a question, answered in one to four
  words by the next speaker, one speaker on a phone line (300-3400 Hz);
- ``many``: seven speakers in 90 s, short turns, one overlap, room noise on
  every microphone;
- ``answers-engines``, ``many-engines``: the same kinds of space (the same
  texts and speakers, timed by each voice's pace), spoken by Festival's
  diphone and HTS voices and Flite's clustergen voices (``tests.engines``),
  two espeak-ng voices among the seven: other families of sounds, where
  espeak-ng's alone could flatter one design or the other.

Then it runs, each in fresh processes (like rq's work horses):

- the naive baseline: faster-whisper, same model, on the mixed audio, no
  speakers (defaults plus word timestamps), ``--draws`` times: where a
  window fails Whisper's thresholds it samples at a higher temperature, so
  its WER is a draw; each draw seeds CTranslate2's sampler (1, 2, ...), the
  summary's baseline WER is their mean and the detailed table is seed 1's.
  The space's mix is its voices summed before any coding, which no
  recorded room has; so the same draws also hear the mix of the recorded
  tracks, summed as the room job sums them (``recorded mix WER``): the
  Opus coding of the tracks costs Whisper words that the first baseline
  never pays;
- our path, as the pipeline runs it (its sampler seeded 1): levels and the mix, then
  ``transcribe_room`` (``--design room``: the room's mix for the words, the
  levels for the speakers), or plain faster-whisper on the same summed mix,
  each word on the speaker the levels say (``--design mix``: the baseline
  as a pipeline stage, so the difference between the two is what the room
  pass costs, and the rest what the pipeline does either way), or one
  ``transcribe`` per track (``--design tracks``, the design before issue
  16), then ``assemble`` with its context pass, captions. Several designs
  (``--design room,mix``) each run against the same baseline draws.

and prints every figure of issue 3's target table per space, then one line
per space and design: our per-speaker WER, the baseline's on the mix and on
the recorded tracks' mix, our ratio to each, attribution, word start error,
wall and CPU time against the baseline (on the mix).

Whisper's words on a synthetic voice flip with things that carry no
information: where its 30 s windows and the VAD's frames fall on the audio.
A space of a minute has a hundred words or two, so one flipped word moves
its WER by about 0.01, and one comparison of ours with the mix is a draw.
``--shifts 0,0.25,0.5`` runs each space once per shift, with that many
seconds of silence before all its tracks and the mix (nothing else
changes), ours and the baseline alike, and prints each run's line, their
mean and the mean of the paired differences (ours - mix): the spread over
shifts is the noise of one comparison, the mean difference the design's
effect. ``--test-spaces`` takes the quality test's spaces instead (the
one-minute space of seed 7, four rounds of answers, seven speakers), their
tracks encoded once more as the import does and the baseline on the mix
worker's replay, as ``tests/workers/test_quality.py`` computes it.
``--repeat-hours 3`` then repeats the espeak space's busiest track to three
hours and runs one per-track job over it, to show that a worker's memory
stays flat.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np

from bench.bitrate import kbps_argument, speaker_kbps
from bench.common import ffmpeg
from bench.room_errors import report, utterance_errors
from spaces import importer, keys
from spaces.blobstore.local import LocalBlobStore
from spaces.captions import build_cues, to_srt, to_webvtt
from spaces.formats import AudioFormat
from spaces.languages import AUTO
from spaces.models import Turn, Word
from tests.evalspace import (
    BLEED,
    ENGINE_VOICES,
    LATE,
    MANY_ENGINE_VOICES,
    MANY_VOICES,
    answer_spans,
    baseline_words,
    build,
    build_answers,
    build_many,
    in_silence,
    in_spans,
    in_utterance_order,
    lone_utterances,
    plan_space,
    pooled_wer,
    silent_stretches,
    wer_alone,
)
from tests.speech import (
    VOICES,
    Space,
    match_words,
    word_error_rate,
    write_audio,
)
from transcribe.assemble import TrackWords, assemble
from transcribe.audio import SAMPLE_RATE, decode
from transcribe.context_pass import clips_from_bytes, clips_to_bytes, context_clips, refine_room
from transcribe.language import Probabilities, speaks_language
from transcribe.levels import Levels, levels
from transcribe.model import load_model, model_label
from transcribe.room import RoomTrack, attribute
from transcribe.room_audio import Detection, RoomAudio
from transcribe.transcribe import TranscribeOptions, transcribe
from workers.levels import await_levels, room_levels
from workers.mix import LEVELS_WAIT, MixTrack, level_gain, render_mix, yield_cpu
from workers.mix import RATE as MIX_RATE
from workers.transcribe_room import pass_layout, room_passes, room_threads

OPTIONS = TranscribeOptions()  # set by main(), inherited by the forked jobs
BENCH_SPACE = "bench"  # the space id the room job stores its levels under for the mix (in the run's --out)
MODEL = ""  # WHISPER_MODEL of the run (--model), inherited by the forked jobs
CPUS = len(os.sched_getaffinity(0))
JOB_TIMEOUT = 4 * 3600

# --- jobs (each in a fresh process, like an rq work horse) --------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def job_levels(tracks: list[tuple[str, str, float]], threads: int, language: str) -> dict[str, Any]:
    """The levels stage of ``--design tracks``, as the pipeline ran it before the room job read the tracks
    itself (``measure_levels``, :func:`workers.levels.room_levels`): every track's levels, and in a space
    whose ``language`` is ``auto`` each speaker's language evidence (the model loaded once, on ``threads``)."""
    model = (lambda: load_model(MODEL, cpu_threads=threads)) if language == AUTO else None
    results = []
    with closing(room_levels([_int16(path, offset) for _, path, offset in tracks], model)) as measured:
        for i, track_levels, evidence in measured:
            result: dict[str, Any] = {"speaker": tracks[i][0], "levels": track_levels.to_dict()}
            if evidence is not None:
                result["language"] = evidence[0]
            results.append(result)
    return {"tracks": results, "cpu": time.process_time(), "rss_mb": _peak_rss_mb()}


def _int16(path: str, offset: float) -> Iterator[tuple[float, np.ndarray]]:
    """A track file as one item, decoded (int16) when its reader takes it."""
    yield offset, decode(path, dtype=np.int16)


def mix_track(path: str, offset: float, measured: Levels | None) -> MixTrack:
    """A whole-track file as the mix takes it: decoded at the mix's rate, at the gain its levels
    (``measured``; none: measured here on the track as the transcription decodes it) say."""
    if measured is None:
        measured = levels(decode(path, dtype=np.int16), offset=offset)
    return MixTrack([(offset, decode(path, rate=MIX_RATE, dtype=np.int16))], level_gain(measured))


def job_mix(tracks: list[tuple[str, float, dict[str, Any] | None]], duration: float, out: str) -> dict[str, Any]:
    """What ``mix`` does, on the whole-track files (one segment per track) and their levels; with none
    (``None``), those the room job stores in ``out`` as it reads the tracks, waited for as ``mix`` waits,
    else measured here."""
    yield_cpu()
    store = LocalBlobStore(Path(out) / "levels")
    ids = [str(i) for i in range(len(tracks))]
    if any(lv is None for _, _, lv in tracks) and await_levels(store, BENCH_SPACE, ids, wait=LEVELS_WAIT):
        stored = [json.loads(store.get(keys.levels(BENCH_SPACE, t))) for t in ids]
        tracks = [(p, o, lv) for (p, o, _), lv in zip(tracks, stored, strict=True)]
    mixed = [mix_track(path, offset, Levels.from_dict(lv) if lv else None) for path, offset, lv in tracks]
    outputs = {fmt: Path(out) / f"replay.{fmt}" for fmt in AudioFormat}
    t0 = time.perf_counter()
    render_mix(mixed, duration, outputs, lambda fraction: None)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "cpu": time.process_time(), "rss_mb": _peak_rss_mb()}


def job_transcribe(
    speaker: str, path: str, offset: float, threads: int, others: list[dict[str, Any]]
) -> dict[str, Any]:
    """What ``transcribe_track`` does: decode, transcribe, levels, clips for the context pass."""
    model = load_model(MODEL, cpu_threads=threads)
    audio = decode(path)
    words = transcribe(
        model,
        audio,
        speaker=speaker,
        offset=offset,
        options=OPTIONS,
        others=[Levels.from_dict(d) for d in others],
    )
    lv = levels(audio, offset=offset).to_dict()
    clips = context_clips(audio, words, offset=offset)
    del audio  # the track is the bulk of the job's memory: gone before the clips are serialized
    return {
        "speaker": speaker,
        "words": [w.to_dict() for w in words],
        "levels": lv,
        "clips": clips_to_bytes(clips),
        "cpu": time.process_time(),
        "rss_mb": _peak_rss_mb(),
    }


def recorded_mix(space: Space, out: Path) -> Path:
    """The room's mix as the room job sums it from the recorded tracks (a float WAV in ``out``, its
    samples the room job's to the bit): what plain faster-whisper hears of a room that was recorded,
    where the space's own mix is its voices summed before any coding, which no room's recording has."""
    target = out / "mix-recorded.wav"
    tracks = [(s, str(p), space.starts[s]) for s, p in space.items()]
    with tempfile.TemporaryDirectory(prefix="bench-recorded-") as tmp:
        audio, _ = _read_room(tracks, space.duration, Path(tmp) / "room", tmp)
        raw = ("-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1")
        ffmpeg(*raw, "-i", str(audio.mix.path), "-c:a", "pcm_f32le", str(target))
    return target


def _read_room(
    tracks: list[tuple[str, str, float]], duration: float, directory: Path, out: str
) -> tuple[RoomAudio, float]:
    """Every track read as ``transcribe_room`` reads it (:class:`RoomAudio`), its levels stored in ``out``
    for the mix as they come, and the seconds it took."""
    t0 = time.perf_counter()
    store = LocalBlobStore(Path(out) / "levels")
    audio = RoomAudio([str(i) for i in range(len(tracks))], start=0.0, end=duration, directory=directory)
    for i, track_levels in audio.read([_int16(path, offset) for _, path, offset in tracks], gain=level_gain):
        store.put(keys.levels(BENCH_SPACE, str(i)), json.dumps(track_levels.to_dict()).encode())
    return audio, time.perf_counter() - t0


def job_room(
    tracks: list[tuple[str, str, float]], threads: int, passes: int, duration: float, language: str, out: str
) -> dict[str, Any]:
    """What ``transcribe_room`` does: every track's levels, in a space in ``auto`` each speaker's language
    evidence, then the room's mix for the words and the levels for the speakers.

    With the worker's passes side by side, sharing its threads, or one pass on
    all of them for a room heard in one run (``workers.transcribe_room.pass_layout``).
    """
    with tempfile.TemporaryDirectory(prefix="bench-room-") as tmp:
        audio, reading = _read_room(tracks, duration, Path(tmp), out)
        per_pass, passes = pass_layout(audio.levels, threads, passes)
        model = load_model(MODEL, cpu_threads=per_pass, passes=passes)
        # Beside the room pass, as the room job detects: the bench's spaces are English, so the pass runs on.
        beside = language == AUTO and speaks_language(model)
        detection = Detection(audio, lambda: load_model(MODEL, cpu_threads=1), before=yield_cpu) if beside else None
        heard = audio.transcribe(model, options=OPTIONS)
        languages = detection.evidence() if detection else {}
    return _room_result(tracks, audio, heard, reading, languages)


def job_plain_mix(
    tracks: list[tuple[str, str, float]], threads: int, passes: int, duration: float, language: str, out: str
) -> dict[str, Any]:
    """The issue's baseline as a pipeline stage: plain faster-whisper (defaults plus word timestamps)
    on the room's mix summed from the tracks as the room job sums it, each word on the speaker the
    levels say (:func:`transcribe.room.attribute`); the job's threads as the room pass's one pass.

    No VAD, no guards, no retry, no overlaps redone: what ``--design room``
    adds over it costs the difference in wall time between the two designs.
    Nor ``--beam`` or ``--no-fallback``: faster-whisper's defaults, as the
    baseline's. Nor language detection: ``language`` is ``--design room``'s alone.
    """
    with tempfile.TemporaryDirectory(prefix="bench-mix-") as tmp:
        audio, reading = _read_room(tracks, duration, Path(tmp), out)
        model = load_model(MODEL, cpu_threads=room_threads(threads, passes))
        # Within: the room's mix is a file in ``tmp``.
        tracked = [RoomTrack(t, lv) for t, lv in zip(audio.labels, audio.levels, strict=True)]
        heard = attribute(baseline_words(model, audio.mix[:]), tracked)
    return _room_result(tracks, audio, heard, reading, {})


def _room_result(
    tracks: list[tuple[str, str, float]],
    audio: RoomAudio,
    heard: list[Word],
    reading: float,
    languages: dict[str, tuple[Probabilities, float]],
) -> dict[str, Any]:
    """Each track's words under its speaker and its levels, as job_transcribe's result, with the seconds
    the tracks took to read and the languages detected; ``heard``: words whose ``speaker`` is their track's
    label (its index)."""
    return {
        "tracks": [
            {
                "speaker": speaker,
                "words": [dataclasses.replace(w, speaker=speaker).to_dict() for w in heard if w.speaker == str(i)],
                "levels": lv.to_dict(),
                "clips": clips_to_bytes([]),
                **({"language": languages[str(i)][0]} if str(i) in languages else {}),
            }
            for i, ((speaker, _, _), lv) in enumerate(zip(tracks, audio.levels, strict=True))
        ],
        "reading": reading,
        "cpu": time.process_time(),
        "rss_mb": _peak_rss_mb(),
    }


def job_assemble(tracks: list[dict[str, Any]], threads: int, context: bool) -> dict[str, Any]:
    """What ``assemble`` does: the context pass (if any clip), turns, captions."""
    first = [
        TrackWords(t["speaker"], [Word.from_dict(w) for w in t["words"]], Levels.from_dict(t["levels"])) for t in tracks
    ]
    clips = [clips_from_bytes(t["clips"]) if context else [] for t in tracks]
    model = load_model(MODEL, cpu_threads=threads) if any(clips) else None
    refined = refine_room(model, first, clips, options=OPTIONS)
    turns = assemble(refined)
    cues = build_cues(turns)
    to_webvtt(cues), to_srt(cues)
    return {
        "turns": [t.to_dict() for t in turns],
        "clips": sum(len(c) for c in clips),
        "cpu": time.process_time(),
        "rss_mb": _peak_rss_mb(),
    }


def job_baseline(path: str, threads: int, seed: int) -> dict[str, Any]:
    """faster-whisper on the mix, the way most people use it (plus word timestamps).

    ``seed`` seeds CTranslate2's sampler: where a window fails Whisper's
    thresholds faster-whisper samples at a higher temperature, and an unseeded
    process draws anew each run (the 10-minute space read 0.045 to 0.058).
    """
    ctranslate2.set_random_seed(seed)
    words = [w.to_dict() for w in baseline_words(load_model(MODEL, cpu_threads=threads), Path(path))]
    return {"words": words, "cpu": time.process_time(), "rss_mb": _peak_rss_mb()}


def _pool(workers: int) -> Any:
    """Work horses: each call in a fresh process, forked like rq's from a parent
    that has imported the code but loaded no model; their samplers seeded
    alike, so two runs of our path on the same audio read the same words."""
    return multiprocessing.get_context("fork").Pool(
        processes=workers, maxtasksperchild=1, initializer=ctranslate2.set_random_seed, initargs=(1,)
    )


def run_jobs(calls: Sequence[tuple[Any, tuple[Any, ...]]], workers: int) -> list[Any]:
    """Run ``(function, args)`` calls, ``workers`` at a time."""
    with _pool(workers) as pool:
        pending = [pool.apply_async(func, args) for func, args in calls]
        return [p.get(timeout=JOB_TIMEOUT) for p in pending]


ROOM_JOBS = {"room": job_room, "mix": job_plain_mix}
"""The designs transcribing a room in one job (``--design``); ``tracks``: a job per track."""
DESIGNS = (*ROOM_JOBS, "tracks")


@dataclass
class Run:
    first: dict[str, list[Word]] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    rss_mb: float = 0.0
    clips: int = 0
    levels: dict[str, Levels] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    """Each speaker's most probable language, where it was detected (``--language auto``)."""


def run_ours(
    space: Space,
    workers: int,
    threads: int,
    out: Path,
    *,
    context: bool = True,
    design: str = "room",
    language: str = "en",
) -> Run:
    """The pipeline's stages in the order its workers take them, timed stage by stage.

    ``language``: the space's, as its host set it (``auto``: each track's
    language detected in the room job, or the levels job of ``--design
    tracks``; the room is transcribed in English all the same, the bench's
    spaces being English).

    As ``finalize`` enqueues them: the room's transcription (``design``),
    which reads every track for its levels, and the mix beside it, then
    assemble; ``--design tracks`` as the pipeline ran before: the levels
    job, then a job per track and the mix. The mix runs beside the
    transcription when there is a free worker.
    """
    run = Run()
    starts = space.starts
    tracks = [(s, str(p), starts[s]) for s, p in space.items()]
    t0 = time.perf_counter()
    with _pool(workers) as pool:
        if design in ROOM_JOBS:
            # As finalize enqueues them: the room job, which measures every track's
            # levels as it reads it, and the mix beside it (waiting for those levels).
            shutil.rmtree(out / "levels", ignore_errors=True)  # a run before's
            mixed = pool.apply_async(job_mix, ([(p, o, None) for _, p, o in tracks], space.duration, str(out)))
            done_room = pool.apply_async(
                ROOM_JOBS[design], (tracks, threads, room_passes(workers), space.duration, language, str(out))
            ).get(timeout=JOB_TIMEOUT)
            results = done_room["tracks"]
            run.seconds["transcribe"] = time.perf_counter() - t0
            run.seconds["of which reading the tracks"] = done_room["reading"]
            transcribe_cpu, transcribe_rss, levels_rss = done_room["cpu"], done_room["rss_mb"], 0.0
        else:
            # One job for every track, its model on the threads of the room job's passes together.
            measured = pool.apply_async(
                job_levels, (tracks, room_threads(threads, room_passes(workers)), language)
            ).get(timeout=JOB_TIMEOUT)
            run.seconds["levels"] = time.perf_counter() - t0
            run.cpu["levels"] = measured["cpu"]
            levels_rss = measured["rss_mb"]
            lv = {r["speaker"]: r["levels"] for r in measured["tracks"]}
            mixed = pool.apply_async(job_mix, ([(p, o, lv[s]) for s, p, o in tracks], space.duration, str(out)))
            t1 = time.perf_counter()
            others = {s: [d for o, d in lv.items() if o != s] for s in space}
            pending = [pool.apply_async(job_transcribe, (s, p, o, threads, others[s])) for s, p, o in tracks]
            done_tracks = [r.get(timeout=JOB_TIMEOUT) for r in pending]
            for result, track in zip(done_tracks, measured["tracks"], strict=True):
                result.update({k: v for k, v in track.items() if k == "language"})
            results = done_tracks
            run.seconds["transcribe"] = time.perf_counter() - t1
            transcribe_cpu = sum(r["cpu"] for r in results)
            transcribe_rss = max(r["rss_mb"] for r in results)
        run.languages = {r["speaker"]: next(iter(r["language"]), "") for r in results if "language" in r}
        run.levels = {r["speaker"]: Levels.from_dict(r["levels"]) for r in results}
        t2 = time.perf_counter()
        # Beside the mix if it is still running, alone otherwise: as a worker would.
        done = pool.apply_async(job_assemble, (results, threads, context)).get(timeout=JOB_TIMEOUT)
        run.seconds["assemble (context pass, turns, captions)"] = time.perf_counter() - t2
        mix = mixed.get(timeout=JOB_TIMEOUT)
        run.seconds["mix (beside the others)"] = mix["seconds"]
    run.seconds["total"] = time.perf_counter() - t0
    run.cpu["transcribe"] = transcribe_cpu
    run.cpu["assemble (context pass, turns, captions)"] = done["cpu"]
    run.cpu["mix (beside the others)"] = mix["cpu"]
    run.cpu["total"] = sum(run.cpu.values())
    run.rss_mb = max(levels_rss, transcribe_rss, done["rss_mb"], mix["rss_mb"])
    run.first = {r["speaker"]: [Word.from_dict(w) for w in r["words"]] for r in results}
    run.turns = [Turn.from_dict(t) for t in done["turns"]]
    run.clips = done["clips"]
    return run


@dataclass
class Draw:
    """One run of the baseline, its sampler seeded."""

    words: list[Word]
    seconds: float
    cpu: float
    rss_mb: float


def run_baseline(mix: Path, threads: int, draws: int) -> list[Draw]:
    """The baseline on ``mix`` drawn with seeds 1 to ``draws``, one after another (so each is timed alone)."""
    runs = []
    for seed in range(1, draws + 1):
        t0 = time.perf_counter()
        (r,) = run_jobs([(job_baseline, (str(mix), threads, seed))], 1)
        runs.append(Draw([Word.from_dict(w) for w in r["words"]], time.perf_counter() - t0, r["cpu"], r["rss_mb"]))
    return runs


# --- scoring -----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def score(
    space: Space, run: Run, baseline: list[Word] | None, bleed: tuple[str, str, float] | None
) -> tuple[list[tuple[str, str, str, str]], dict[str, float]]:
    """Rows of (figure, ours, baseline, target), and the space's summary figures."""
    ours = [w for t in run.turns for w in t.words]
    truth = space.words()
    rows: list[tuple[str, str, str, str]] = []

    base_wer = word_error_rate(in_utterance_order(space), baseline) if baseline is not None else float("nan")
    pooled, wers = pooled_wer(space, ours)
    speakers = list(wers)
    ratios = {}
    for s in speakers:
        mine = [w for w in ours if w.speaker == s]
        lone = len(lone_utterances(space, s))
        ours_alone = wer_alone(space, s, mine)
        base_alone = wer_alone(space, s, baseline) if baseline is not None else float("nan")
        ratios[s] = ours_alone / base_alone if base_alone else float("nan")
        rows.append(
            (
                f"WER {s}: all / {lone} lone utterances",
                f"{wers[s]:.3f} / {ours_alone:.3f}",
                f"- / {base_alone:.3f}",
                "<= 1.1 x baseline",
            )
        )
    rows.append(("WER, all speakers pooled", f"{pooled:.3f}", f"{base_wer:.3f}", "<= 1.1 x baseline"))
    worst = max(ratios, key=lambda k: ratios[k])
    rows.append(
        (
            "WER / baseline's, worst speaker, lone utterances",
            f"{ratios[worst]:.2f} x ({worst})",
            "",
            "<= 1.1 x",
        )
    )
    rows.append(("WER worst speaker (all) / baseline's pooled", f"{max(wers.values()) / base_wer:.2f} x", "", ""))

    pairs = match_words(truth, ours)
    right = sum(1 for t, h in pairs if t.speaker == h.speaker)
    rows.append(
        (
            "words attributed to the right speaker",
            f"{100 * right / max(1, len(pairs)):.2f} %",
            "n/a",
            ">= 99 %",
        )
    )
    errors = [abs(h.start - t.start) for t, h in pairs if t.speaker == h.speaker]
    base_errors = [abs(h.start - t.start) for t, h in match_words(truth, baseline or [])]
    rows.append(
        (
            "word start error, median",
            f"{statistics.median(errors):.3f} s",
            f"{statistics.median(base_errors):.3f} s" if base_errors else "",
            "<= 0.15 s",
        )
    )
    rows.append(
        (
            "word start error, 95th percentile",
            f"{percentile(errors, 95):.3f} s",
            f"{percentile(base_errors, 95):.3f} s" if base_errors else "",
            "<= 0.5 s",
        )
    )

    summary = {
        "ours": pooled,
        "attribution": right / max(1, len(pairs)),
        "start_error": statistics.median(errors),
    }
    if bleed is not None:
        rows += _bleed_rows(run, truth, ours, bleed)
    rows += _answer_rows(space, run, truth, ours, baseline)
    stretches = silent_stretches(space)
    rows.append(
        (
            "words output during silence-only stretches",
            str(in_silence(ours, stretches)),
            str(in_silence(baseline, stretches)) if baseline is not None else "",
            "0",
        )
    )
    return rows, summary


def _bleed_rows(
    run: Run, truth: list[Word], ours: list[Word], bleed: tuple[str, str, float]
) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    victim, source, _ = bleed
    raw = run.first[victim]
    final = [w for w in ours if w.speaker == victim]
    both = [w for w in truth if w.speaker in (victim, source)]
    raw_pairs = match_words(both, raw)
    final_truth = {id(t) for t, _ in match_words(both, final)}
    picked = [t for t, _ in raw_pairs if t.speaker == source]
    own = [t for t, _ in raw_pairs if t.speaker == victim]
    removed = sum(1 for t in picked if id(t) not in final_truth)
    lost = sum(1 for t in own if id(t) not in final_truth)
    rows.append(
        (
            f"bleed words removed ({source} on {victim}'s track)",
            f"{100 * removed / max(1, len(picked)):.1f} % of {len(picked)}",
            "",
            ">= 95 %",
        )
    )
    rows.append(
        (
            f"own words lost on {victim}'s track",
            f"{100 * lost / max(1, len(own)):.1f} % of {len(own)}",
            "",
            "<= 1 %",
        )
    )

    return rows


def _answer_rows(
    space: Space, run: Run, truth: list[Word], ours: list[Word], baseline: list[Word] | None
) -> list[tuple[str, str, str, str]]:
    """Short answers after a silence of their speaker: where context across speakers matters."""
    rows: list[tuple[str, str, str, str]] = []
    spans = answer_spans(space)

    def said(words: Sequence[Word], *, by_speaker: bool = True) -> list[Word]:
        return in_spans(spans, words, by_speaker=by_speaker)

    if spans:
        ref = said(truth)
        first = said([w for words in run.first.values() for w in words])
        rows.append(
            (
                f"WER of the {len(spans)} short answers",
                f"{word_error_rate(ref, said(ours)):.3f} (first pass {word_error_rate(ref, first):.3f})",
                f"{word_error_rate(ref, said(baseline, by_speaker=False)):.3f}" if baseline is not None else "",
                "as good as the mix",
            )
        )

    return rows


# --- memory check on a long space ---------------------------------------------


def long_track(space: Space, speaker: str, hours: float, out: Path) -> Path:
    """The speaker's track repeated to ``hours`` (as one Opus file)."""

    one = decode(space[speaker])
    reps = int(np.ceil(hours * 3600 * 16000 / len(one)))
    path = out / f"{speaker}-{hours:g}h.ogg"
    if not path.exists():
        write_audio(path, np.tile(one, reps)[: int(hours * 3600 * 16000)])
    return path


def memory_check(space: Space, hours: float, threads: int, out: Path) -> tuple[float, float, int, float]:
    """Peak RSS of one transcribe job on a ``hours`` long track, and its time."""
    speaker = BLEED[0]  # the busiest track: her speech and the bleed of another
    path = long_track(space, speaker, hours, out)
    t0 = time.perf_counter()
    (r,) = run_jobs([(job_transcribe, (speaker, str(path), 0.0, threads, []))], 1)
    return r["rss_mb"], time.perf_counter() - t0, len(r["words"]), hours * 3600


# --- spaces, shifted --------------------------------------------------------------


def build_bench_space(
    name: str, duration: float, seed: int, out: Path, *, kbps: int, as_tests: bool = False
) -> tuple[Space, str, tuple[str, str, float] | None]:
    """One of the bench's spaces, a line saying what is in it, and its bleed (victim, source, dB) if any.

    Its tracks are Opus at ``kbps`` as a browser sends it (:func:`as_recorded`).
    ``as_tests``: the quality test's space of that name instead (its script,
    the import's encoding, the replay as the baseline's audio).
    """
    suffix = ".ogg" if as_tests else ".wav"
    if as_tests:
        if name not in DEFAULT_SPACES:
            raise SystemExit(f"--test-spaces: the quality test has no space {name!r} ({', '.join(DEFAULT_SPACES)})")
        duration, seed = TEST_SECONDS, TEST_SEED
    if name == "espeak":
        plan = plan_space(duration, seed)
        space = build(plan, out, suffix=suffix)
        about = (
            f"{duration:.0f} s, {len(plan.utterances)} utterances, {len(space.words())} words, "
            f"silence {plan.silence[0]:.0f}-{plan.silence[1]:.0f} s, overlaps "
            + ", ".join(f"{s:.0f}-{e:.0f} s" for s, e in plan.overlaps)
            + f", {LATE} joins at {plan.join:.0f} s, {BLEED[1]} bleeds into {BLEED[0]} at {BLEED[2]:.0f} dB"
        )
        bleed: tuple[str, str, float] | None = BLEED
    elif name in ("answers", "answers-engines"):
        voices = ENGINE_VOICES if name.endswith("engines") else VOICES
        space = (
            build_answers(out) if as_tests else build_answers(out, rounds=8, seed=seed, voices=voices, suffix=suffix)
        )
        about = (
            f"{space.duration:.0f} s, 3 speakers, long turns ending in questions, answers of 1-4 words,"
            f" bob on the phone (300-3400 Hz); voices {', '.join(voices[:3])}"
        )
        bleed = None
    elif name in ("many", "many-engines"):
        voices = MANY_ENGINE_VOICES if name.endswith("engines") else MANY_VOICES
        space = build_many(out) if as_tests else build_many(out, seed=seed + 8, voices=voices, suffix=suffix)
        about = (
            f"{space.duration:.0f} s, 7 speakers, short turns, one overlap, room noise at -55 dBFS on every microphone;"
            f" voices {', '.join(voices)}"
        )
        bleed = None
    else:
        raise SystemExit(f"unknown space {name!r} ({', '.join(SPACES)})")
    if as_tests:
        space = as_imported(space, out)
        about += "; as the quality test has it (imported, baseline on the replay)"
    else:
        space = as_recorded(space, out, kbps)
        about += f"; tracks Opus at {kbps} kb/s"
    return space, about, bleed


SPACES = ("espeak", "answers", "many", "answers-engines", "many-engines")
"""The bench's spaces; ``-engines``: spoken by Festival and Flite (and espeak-ng, in the seven-speaker one)."""
DEFAULT_SPACES = SPACES[:3]
"""What runs unless ``--spaces`` says (the quality test has these three)."""

TEST_SECONDS = 60.0
TEST_SEED = 7
"""The quality test's one-minute space (``tests/workers/test_quality.py``)."""


BROWSER_OPUS = ("-application", "voip", "-compression_level", "9", "-frame_duration", "20")
"""libwebrtc's Opus encoder for a microphone (mono): the VoIP application, complexity 9 (desktop), 20 ms frames."""


def as_recorded(space: Space, out: Path, kbps: int) -> Space:
    """The space with each track coded as a browser sends it, which the SFU records as it is: Opus
    at ``kbps`` from 48 kHz (a browser's capture rate), as libwebrtc encodes it. The mix stays as it is."""
    return _coded(space, out, f"recorded-{kbps}k", ("-b:a", f"{kbps}k", *BROWSER_OPUS))


def _coded(space: Space, out: Path, name: str, opus: Sequence[str]) -> Space:
    """Each track of ``space`` coded to Opus from 48 kHz with ``opus``'s ffmpeg options (files ``name-*``)."""
    tracks = {}
    for speaker, truth in space.tracks.items():
        target = out / f"{name}-{truth.path.stem}.ogg"
        if not target.exists():
            ffmpeg("-i", str(truth.path), "-ac", "1", "-ar", "48000", "-c:a", "libopus", *opus, str(target))
        tracks[speaker] = dataclasses.replace(truth, path=target)
    return Space(tracks, duration=space.duration, mix=space.mix)


def as_imported(space: Space, out: Path) -> Space:
    """The space as the pipeline stores it: each track encoded once more as the
    import does (48 kHz Opus at its bitrate, ffmpeg's defaults), the mix worker's replay as its mix."""
    tracks = _coded(space, out, "imported", ("-b:a", importer.BITRATE)).tracks
    mixed = [
        MixTrack(
            [(t.start, decode(t.path, rate=MIX_RATE, dtype=np.int16))], level_gain(levels(decode(t.path), offset=0))
        )
        for t in tracks.values()
    ]
    replay = out / "replay.ogg"
    render_mix(mixed, space.duration, {AudioFormat.OGG: replay}, lambda fraction: None)
    return Space(tracks, duration=space.duration, mix=replay)


def shifted(space: Space, shift: float, out: Path) -> Space:
    """The same space with ``shift`` seconds of silence before everything (tracks, truth and mix)."""
    if not shift:
        return space

    def later(w: Word) -> Word:
        return dataclasses.replace(w, start=w.start + shift, end=w.end + shift)

    tracks = {
        speaker: dataclasses.replace(
            t,
            start=t.start + shift,
            words=tuple(later(w) for w in t.words),
            utterances=tuple(dataclasses.replace(u, start=u.start + shift) for u in t.utterances),
            ends=tuple(e + shift for e in t.ends),
        )
        for speaker, t in space.tracks.items()
    }
    mix = out / f"mix-shifted-{shift:g}.wav"
    ffmpeg("-i", str(space.mix), "-af", f"adelay={round(shift * 1000)}:all=1", "-ar", "16000", "-ac", "1", str(mix))
    return Space(tracks, duration=space.duration + shift, mix=mix)


# --- main ------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """One run's summary: WERs, attribution, timing error, and costs against the baseline."""

    ours: float
    mix: float
    recorded: float
    """The baseline's WER on the mix of the recorded tracks."""
    attribution: float
    start_error: float
    wall: float
    base_wall: float
    cpu: float
    """CPU seconds of the transcription (model load, decoding, every pass)."""
    base_cpu: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of the space (default 600)")
    parser.add_argument("--workers", type=int, default=CPUS, help=f"worker processes (default {CPUS}, as `spaces up`)")
    parser.add_argument("--threads", type=int, default=0, help="threads per model (0: CPUs / workers, as workers do)")
    parser.add_argument("--repeat-hours", type=float, default=0.0, help="also check memory on a space this long")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--draws", type=int, default=3, help="the baseline's WER: the mean of this many seeded draws (default 3)"
    )
    parser.add_argument("--no-context", action="store_true", help="skip the cross-speaker context pass")
    parser.add_argument(
        "--seed",
        type=_seeds,
        default=[3],
        help="the spaces' draw, or several (e.g. 3,4,5): each a new script, voices' lines and placements",
    )
    parser.add_argument("--memory-only", action="store_true", help="only the long-track memory check")
    parser.add_argument("--beam", type=int, default=None, help="beam size of our path (default: ours)")
    parser.add_argument("--no-fallback", action="store_true", help="our path: temperature 0 only")
    parser.add_argument("--out", type=Path, default=None, help="keep the audio here")
    parser.add_argument("--model", default="", help="WHISPER_MODEL to measure (default: the embedded default)")
    parser.add_argument(
        "--language",
        choices=("en", AUTO),
        default="en",
        help="the spaces' language as their host set it (default en); auto, the product's default: the"
        " room job also detects each track's language, as transcribe_room does",
    )
    parser.add_argument("--languages", default="", help="instead: per-language spaces, e.g. en,fr,de,es")
    parser.add_argument("--models", default="tiny.en,base", help="with --languages: the models to compare")
    parser.add_argument(
        "--spaces",
        default=",".join(DEFAULT_SPACES),
        help=f"which spaces ({', '.join(SPACES)}; default: the first three)",
    )
    parser.add_argument(
        "--track-kbps",
        type=kbps_argument,
        default=speaker_kbps(),
        help="Opus kb/s the tracks are coded at as a browser sends them (default %(default)s: what the SFU asks"
        " browsers for, SPACES_SFU_OPUS_BITRATE); not with --test-spaces (the import's 64), --languages or"
        " --memory-only",
    )
    parser.add_argument("--shifts", default="0", help="seconds of silence before each run of a space, e.g. 0,0.25,0.5")
    parser.add_argument("--test-spaces", action="store_true", help="the quality test's spaces, as it has them")
    parser.add_argument(
        "--errors", action="store_true", help="print the utterances where ours and the mix differ (bench.room_errors)"
    )
    parser.add_argument(
        "--design",
        type=_designs,
        default=["room"],
        help="room: the room pass; mix: plain faster-whisper on the summed tracks, attributed; tracks: per track;"
        " several (room,mix) each run against the same baseline",
    )
    args = parser.parse_args()
    if args.languages:
        from bench.languages import main as per_language

        out = args.out or Path(tempfile.mkdtemp(prefix="bench-languages-"))
        per_language(args.languages.split(","), args.models.split(","), args.threads or CPUS, out)
        return

    global OPTIONS, MODEL
    MODEL = args.model
    if args.beam is not None:
        OPTIONS = dataclasses.replace(OPTIONS, beam_size=args.beam)
    if args.no_fallback:
        OPTIONS = dataclasses.replace(OPTIONS, temperatures=(0.0,))
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-transcripts-"))
    out.mkdir(parents=True, exist_ok=True)
    threads = args.threads or max(1, CPUS // args.workers)
    seeds: list[int] = args.seed
    if args.test_spaces and len(seeds) > 1:
        parser.error("--test-spaces has one draw of each space (the quality test's); give one --seed")
    if args.memory_only:
        space = build(plan_space(args.duration, seeds[0]), out / "espeak")
        rss, seconds, n_words, length = memory_check(space, args.repeat_hours or 3.0, threads, out)
        print(f"one {length / 3600:g} h track job: peak RSS {rss:.0f} MB, {seconds:.0f} s, {n_words} words")
        return
    shifts = [float(s) for s in args.shifts.split(",")]
    designs: list[str] = args.design
    summary: list[list[str]] = []
    for name in args.spaces.split(","):
        draws: dict[str, list[Figures]] = {d: [] for d in designs}
        for seed in seeds:
            label = f"{name}, seed {seed}" if len(seeds) > 1 else name
            space, about, bleed = build_bench_space(
                name,
                args.duration,
                seed,
                out / name / f"seed-{seed}",
                kbps=args.track_kbps,
                as_tests=args.test_spaces,
            )
            print(f"\n== space {label}: {about}", flush=True)
            runs: dict[str, list[Figures]] = {d: [] for d in designs}
            for i, shift in enumerate(shifts):
                where = out / name / f"seed-{seed}" / f"shift-{shift:g}"
                where.mkdir(parents=True, exist_ok=True)
                if len(shifts) > 1:
                    print(f"\n-- {label}, {shift:g} s of silence before it", flush=True)
                here = shifted(space, shift, where)
                base = baseline(here, args, where)
                if base.words is not None:
                    (where / "baseline.json").write_text(json.dumps([w.to_dict() for w in base.words]))
                for n, design in enumerate(designs):
                    first = i == 0 and seed == seeds[0] and n == 0
                    runs[design].append(
                        bench_space(here, bleed, args, threads, where, base, design=design, memory=first)
                    )
            for design in designs:
                summary += summary_rows(
                    _named(label, design, designs), [f"{shift:g} s" for shift in shifts], runs[design]
                )
                draws[design] += runs[design]
        if len(seeds) > 1:
            for design in designs:
                named = _named(f"{name}, {len(seeds)} seeds", design, designs)
                summary += summary_rows(named, ["all"] * len(draws[design]), draws[design])[len(draws[design]) :]
    print(
        f"\nwhole run: design {','.join(designs)}, model {model_label(MODEL)}, workers {args.workers}, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print_table(
        (
            "space",
            "shift",
            "ours WER",
            "mix WER",
            "ours / mix",
            "recorded mix WER",
            "ours / recorded",
            "attribution",
            "start error",
            "wall / mix",
            "CPU / mix",
        ),
        summary,
    )


def _named(label: str, design: str, designs: Sequence[str]) -> str:
    """A summary line's space label, the design after it where several run."""
    return f"{label} ({design})" if len(designs) > 1 else label


def _designs(text: str) -> list[str]:
    """``--design``: one design or several, comma-separated."""
    designs = text.split(",")
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown or len(set(designs)) < len(designs):
        raise argparse.ArgumentTypeError(f"designs are {', '.join(DESIGNS)}, each once, comma-separated: {text!r}")
    return designs


def _seeds(text: str) -> list[int]:
    """``--seed``: one seed or several, comma-separated."""
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers, comma-separated: {text!r}") from None


def summary_rows(name: str, labels: Sequence[str], runs: Sequence[Figures]) -> list[list[str]]:
    """One line per run (``labels``: each one's shift); over several, their mean and the mean paired difference too."""

    def line(label: str, f: Figures) -> list[str]:
        return [
            name,
            label,
            f"{f.ours:.3f}",
            f"{f.mix:.3f}",
            f"{f.ours / f.mix:.2f} x" if f.mix else "-",
            f"{f.recorded:.3f}",
            f"{f.ours / f.recorded:.2f} x" if f.recorded else "-",
            f"{100 * f.attribution:.1f} %",
            f"{f.start_error:.3f} s",
            f"{f.wall / f.base_wall:.2f} x ({f.wall:.0f} s / {f.base_wall:.0f} s)",
            f"{f.cpu / f.base_cpu:.2f} x ({f.cpu:.0f} s / {f.base_cpu:.0f} s)",
        ]

    rows = [line(label, f) for label, f in zip(labels, runs, strict=True)]
    if len(runs) > 1:
        mean = Figures(*(float(np.mean([getattr(f, k.name) for f in runs])) for k in dataclasses.fields(Figures)))
        diff = np.array([f.ours - f.mix for f in runs])
        rows.append(line("mean", mean))
        rows.append(
            [
                name,
                "ours - mix",
                f"{diff.mean():+.3f} mean",
                f"{diff.min():+.3f} to {diff.max():+.3f}",
                f"ours <= mix in {int((diff <= 0).sum())} of {len(diff)}",
                *[""] * 6,
            ]
        )
    return rows


@dataclass(frozen=True)
class Baseline:
    """The mix baseline's draws on a space: seed 1's words (the detailed rows'), the draws' mean
    wall time, CPU time and WER, their peak memory."""

    words: list[Word] | None
    seconds: float = float("nan")
    cpu: float = float("nan")
    rss_mb: float = float("nan")
    wer: float = float("nan")
    recorded_wer: float = float("nan")
    """The same draws' mean WER on the mix of the recorded tracks (:func:`recorded_mix`)."""


def baseline(space: Space, args: argparse.Namespace, out: Path) -> Baseline:
    """The baseline's ``--draws`` on the space's mix, and on the mix of its recorded tracks (none with
    ``--no-baseline``)."""
    if args.no_baseline:
        return Baseline(None)
    truth = in_utterance_order(space)
    draws = run_baseline(space.mix, args.threads, args.draws)
    wers = [word_error_rate(truth, d.words) for d in draws]
    on_recorded = run_baseline(recorded_mix(space, out), args.threads, args.draws)
    recorded = [word_error_rate(truth, d.words) for d in on_recorded]
    base = Baseline(
        draws[0].words,
        float(np.mean([d.seconds for d in draws])),
        float(np.mean([d.cpu for d in draws])),
        max(d.rss_mb for d in draws),
        float(np.mean(wers)),
        float(np.mean(recorded)),
    )
    print(
        f"baseline done in {base.seconds:.1f} s a draw; WER of its {len(draws)} draws "
        + ", ".join(f"{w:.3f}" for w in wers)
        + f", mean {base.wer:.3f}; on the recorded tracks' mix "
        + ", ".join(f"{w:.3f}" for w in recorded)
        + f", mean {base.recorded_wer:.3f}",
        flush=True,
    )
    return base


def bench_space(
    space: Space,
    bleed: tuple[str, str, float] | None,
    args: argparse.Namespace,
    threads: int,
    out: Path,
    base: Baseline,
    *,
    design: str,
    memory: bool = True,
) -> Figures:
    """Our ``design`` on one space against the baseline, its table printed; returns its summary figures."""
    speech = sum(w.end - w.start for w in space.words())
    run = run_ours(
        space, args.workers, threads, out, context=not args.no_context, design=design, language=args.language
    )
    print(
        f"ours ({design}) done: "
        + ", ".join(
            f"{k} {v:.1f} s" + (f" (CPU {run.cpu[k]:.1f} s)" if k in run.cpu else "") for k, v in run.seconds.items()
        )
        + f"; {run.clips} clips to redo with context"
        + (
            f"; languages detected: {', '.join(f'{s} {lang}' for s, lang in run.languages.items())}"
            if run.languages
            else ""
        ),
        flush=True,
    )

    (out / f"ours-{design}.json").write_text(json.dumps([t.to_dict() for t in run.turns]))
    rows, figures = score(space, run, base.words, bleed)
    if args.errors and base.words is not None:
        print(report(*utterance_errors(space, [w for t in run.turns for w in t.words], base.words, run.levels)))
    total = run.seconds["total"]
    rows.append(
        (
            "wall time, all stages (levels, transcribe, assemble, mix)",
            f"{total:.1f} s = {total / space.duration:.3f} x duration",
            f"{base.seconds:.1f} s = {base.seconds / space.duration:.3f} x",
            "<= 0.15 x duration",
        )
    )
    rows.append(("CPU time, all jobs", f"{run.cpu['total']:.1f} s", f"{base.cpu:.1f} s", ""))
    rows.append(("CPU time, transcription", f"{run.cpu['transcribe']:.1f} s", f"{base.cpu:.1f} s", "<= 1.5 x"))
    rows.append(("wall time vs baseline", f"{total / base.seconds:.2f} x", "", "<= 1.5 x"))
    rows.append(("peak memory of a worker (RSS)", f"{run.rss_mb:.0f} MB", f"{base.rss_mb:.0f} MB", "< 1.5 GB"))
    if memory and args.repeat_hours and bleed is not None:
        rss, seconds, n_words, length = memory_check(space, args.repeat_hours, threads, out)
        rows.append((f"peak memory, one {args.repeat_hours:g} h track job", f"{rss:.0f} MB", "", "< 1.5 GB, flat"))
        rows.append((f"time of that job ({n_words} words)", f"{seconds:.0f} s = {seconds / length:.3f} x", "", ""))

    cpu = platform.processor() or platform.machine()
    print(
        f"\nmachine: {os.cpu_count()} CPUs ({cpu}), load average {os.getloadavg()[0]:.1f}, Python "
        f"{platform.python_version()}, model: {model_label(MODEL)} int8, workers {args.workers}, "
        f"design {design}, speech in the space {speech:.0f} s\n"
    )
    print_table(("figure", "ours", "baseline (mix)", "target"), rows)
    return Figures(
        ours=figures["ours"],
        mix=base.wer,
        recorded=base.recorded_wer,
        attribution=figures["attribution"],
        start_error=figures["start_error"],
        wall=total,
        base_wall=base.seconds,
        cpu=run.cpu["transcribe"],
        base_cpu=base.cpu,
    )


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        print(" | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
