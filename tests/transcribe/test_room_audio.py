"""A room's tracks read once: levels, mix and each track's audio from one decode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from transcribe.audio import SAMPLE_RATE
from transcribe.levels import levels
from transcribe.room_audio import RoomAudio


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
    assert audio.mix == pytest.approx(expected, abs=1e-6)
    # Each track as read, from its file: its start and samples, in float32.
    for i, (offset, samples) in enumerate(tracks.values()):
        start, back = audio.track(i)
        assert start == offset and back.dtype == np.float32
        assert np.array_equal(back, samples.astype(np.float32) / 32768)


def test_a_room_is_transcribed_only_once_every_track_is_read(tmp_path: Path) -> None:
    audio = RoomAudio(["a", "b"], start=0.0, end=1.0, directory=tmp_path)
    list(audio.read([[(0.0, tone(1.0, 0.5))], [(0.0, tone(1.0, 0.5))]], gain=lambda lv: 0.0))
    short = RoomAudio(["a", "b"], start=0.0, end=1.0, directory=tmp_path / "short")
    with pytest.raises(ValueError, match="1 tracks for 2 labels"):
        list(short.read([[(0.0, tone(1.0, 0.5))]], gain=lambda lv: 0.0))
    with pytest.raises(ValueError, match="0 of 2 tracks read"):
        short.transcribe(model=None)  # type: ignore[arg-type]
