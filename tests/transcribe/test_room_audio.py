"""A room's tracks read once: levels, mix and each track's audio from one decode."""

from __future__ import annotations

import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from tests.speech import SENTENCES, VOICES, Utterance, build_space
from transcribe.audio import SAMPLE_RATE, Timeline, decode
from transcribe.levels import levels
from transcribe.model import load_model
from transcribe.room_audio import Detection, RoomAudio
from workers.mix import yield_cpu


def tone(seconds: float, amplitude: float, frequency: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.rint(amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def test_each_track_is_read_once_into_its_levels_the_mix_and_a_file(tmp_path: Path) -> None:
    tracks = {"a": (1.0, tone(2.0, 0.5)), "b": (2.5, tone(1.0, 0.1, 330.0))}
    reads = dict.fromkeys(tracks, 0)

    def source(label: str) -> Iterator[tuple[float, np.ndarray]]:
        reads[label] += 1
        yield tracks[label]

    audio = RoomAudio(list(tracks), start=0.5, end=4.0, directory=tmp_path)
    # Each track's gain from its own levels: b's (it starts at 2.5 s) 6 dB.
    seen = list(audio.read([source(t) for t in tracks], gain=lambda lv: 6.0 if lv.start == 2.5 else 0.0))
    assert [i for i, _ in seen] == [0, 1]
    assert reads == {"a": 1, "b": 1}

    # The levels are the track's, on the room clock.
    for (offset, samples), lv in zip(tracks.values(), audio.levels, strict=True):
        assert lv.start == offset and np.array_equal(lv.db, levels(samples, offset=offset).db)
    # The mix: a from 1.0 s, b 6 dB louder from 2.5 s, nothing before or after.
    a, b = (s.astype(np.float32) / 32768 for _, s in tracks.values())
    expected = np.zeros(round(3.5 * SAMPLE_RATE), dtype=np.float32)
    expected[round(0.5 * SAMPLE_RATE) : round(2.5 * SAMPLE_RATE)] += a
    expected[round(2.0 * SAMPLE_RATE) : round(3.0 * SAMPLE_RATE)] += b * np.float32(10 ** (6 / 20))
    assert audio.mix[:] == pytest.approx(expected, abs=1e-6)
    # Each track as read, from its file: its start and samples, in float32.
    for i, (offset, samples) in enumerate(tracks.values()):
        start, back = audio.track(i)
        assert start == offset and back[:].dtype == np.float32
        assert np.array_equal(back[:], samples.astype(np.float32) / 32768)


def test_a_tracks_pieces_are_placed_as_the_timeline_joins_them(tmp_path: Path) -> None:
    # A gap (a dropped segment), then a piece over the last 0.1 s of the one before (clock jitter).
    pieces = [(1.0, tone(1.0, 0.5)), (2.5, tone(0.5, 0.3, 330.0)), (2.9, tone(0.5, 0.2, 440.0))]
    line = Timeline()
    for offset, samples in pieces:
        line.add(offset, samples)
    start, joined = line.build()
    audio = RoomAudio(["a", "b"], start=0.0, end=4.0, directory=tmp_path)
    empty = (3.0, np.zeros(0, dtype=np.int16))  # a track of no segment: an empty piece at its start
    list(audio.read([pieces, [empty]], gain=lambda lv: 0.0))

    offset, back = audio.track(0)
    assert offset == start == 1.0 and np.array_equal(back[:], joined.astype(np.float32) / 32768)
    assert np.array_equal(audio.levels[0].db, levels(joined, offset=start).db)
    expected = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    expected[SAMPLE_RATE : SAMPLE_RATE + len(joined)] = joined.astype(np.float32) / 32768
    assert audio.mix[:] == pytest.approx(expected, abs=1e-6)
    assert audio.track(1)[0] == 3.0 and not len(audio.track(1)[1]) and not audio.levels[1].db.size


def test_reading_holds_the_pieces_read_ahead_not_the_tracks_nor_the_mix(tmp_path: Path) -> None:
    minutes = 30
    track_bytes = minutes * 60 * SAMPLE_RATE * 2

    def pieces(frequency: float) -> Iterator[tuple[float, np.ndarray]]:
        for k in range(minutes * 6):  # ten-second segments, decoded one at a time
            yield 10.0 * k, tone(10.0, 0.3, frequency)

    tracemalloc.start()
    try:
        audio = RoomAudio(["a", "b"], start=0.0, end=minutes * 60.0, directory=tmp_path)
        list(audio.read([pieces(220.0), pieces(330.0)], gain=lambda lv: 0.0, ahead=4))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A block of a track being summed and its stretch of the mix, a few pieces: far from a
    # track (58 MB), let alone two, or the mix (float32, 115 MB).
    assert peak < track_bytes / 2, peak
    assert audio.mix[:SAMPLE_RATE] == pytest.approx(
        (tone(1.0, 0.3, 220.0).astype(np.float32) + tone(1.0, 0.3, 330.0)) / 32768, abs=1e-6
    )


def test_a_source_without_a_piece_is_refused(tmp_path: Path) -> None:
    audio = RoomAudio(["a", "b"], start=0.0, end=1.0, directory=tmp_path)
    with pytest.raises(ValueError, match="gave no piece"):
        list(audio.read([[], [(0.0, tone(1.0, 0.5))]], gain=lambda lv: 0.0))


def test_a_room_is_transcribed_only_once_every_track_is_read(tmp_path: Path) -> None:
    audio = RoomAudio(["a", "b"], start=0.0, end=1.0, directory=tmp_path)
    list(audio.read([[(0.0, tone(1.0, 0.5))], [(0.0, tone(1.0, 0.5))]], gain=lambda lv: 0.0))
    short = RoomAudio(["a", "b"], start=0.0, end=1.0, directory=tmp_path / "short")
    with pytest.raises(ValueError, match="1 tracks for 2 labels"):
        list(short.read([[(0.0, tone(1.0, 0.5))]], gain=lambda lv: 0.0))
    with pytest.raises(ValueError, match="0 of 2 tracks read"):
        short.transcribe(model=None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def multilingual() -> WhisperModel:
    """The multilingual default model, on one thread as the room job's detection loads it."""
    return load_model("base", cpu_threads=1)


def test_detection_runs_on_its_own_thread_at_idle_priority_and_finds_what_the_reader_would(
    tmp_path: Path, multilingual: WhisperModel
) -> None:
    space = build_space(
        (Utterance("alice", 0.5, SENTENCES[0]), Utterance("bob", 4.0, SENTENCES[2])),
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=8.0,
        out_dir=tmp_path / "space",
        suffix=".ogg",
    )
    audio = RoomAudio(list(space), start=0.0, end=space.duration, directory=tmp_path)
    list(audio.read([[(0.0, decode(p, dtype=np.int16))] for p in space.values()], gain=lambda lv: 0.0))
    seen: list[tuple[int, int]] = []

    def model() -> WhisperModel:
        seen.append((threading.get_ident(), os.sched_getscheduler(0)))
        return multilingual

    detection = Detection(audio, model, before=yield_cpu)
    evidence = detection.evidence()
    assert detection.done()
    # Loaded (and so run) on a thread of its own, at idle priority; this thread untouched.
    assert seen == [(seen[0][0], os.SCHED_IDLE)] and seen[0][0] != threading.get_ident()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert evidence == audio.languages(multilingual)
    assert {label: next(iter(p)) for label, (p, _) in evidence.items()} == {"alice": "en", "bob": "en"}


def test_detection_raises_what_it_met_when_its_evidence_is_asked_for(tmp_path: Path) -> None:
    audio = RoomAudio(["a"], start=0.0, end=1.0, directory=tmp_path)
    list(audio.read([[(0.0, tone(1.0, 0.5))]], gain=lambda lv: 0.0))

    def broken() -> WhisperModel:
        raise RuntimeError("no model here")

    with pytest.raises(RuntimeError, match="no model here"):
        Detection(audio, broken).evidence()
