"""Track levels: per-frame loudness, stored compactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.speech import SAMPLE_RATE
from transcribe.levels import FLOOR_DB, Levels, levels


def tone(seconds: float, db: float) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    # A sine's RMS is its peak / sqrt(2).
    return (np.sqrt(2) * 10 ** (db / 20) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_levels_follow_the_signal_on_the_room_clock() -> None:
    audio = np.concatenate([tone(1.0, -20.0), np.zeros(SAMPLE_RATE, np.float32), tone(1.0, -38.0)])
    lv = levels(audio, offset=50.0)
    assert lv.start == 50.0 and lv.hop == pytest.approx(0.02)
    assert len(lv.db) == 150 and lv.end == pytest.approx(53.0)
    assert lv.loudness(50.1, 50.9) == pytest.approx(-20.0, abs=0.5)
    assert lv.loudness(51.1, 51.9) == FLOOR_DB
    assert lv.loudness(52.1, 52.9) == pytest.approx(-38.0, abs=0.5)
    assert lv.loudness(10.0, 20.0) == FLOOR_DB  # before the track


def test_json_round_trip_is_compact() -> None:
    rng = np.random.default_rng(3)
    audio = (rng.normal(0, 0.1, 60 * SAMPLE_RATE) * np.repeat(rng.random(60), SAMPLE_RATE)).astype(np.float32)
    lv = levels(audio, offset=12.25)
    data = json.loads(json.dumps(lv.to_dict()))
    back = Levels.from_dict(data)
    assert back.start == 12.25 and back.hop == lv.hop
    assert np.abs(back.db - lv.db).max() <= 0.5 + 1e-6
    # One byte a frame (base64): a minute is about 4 kB.
    assert len(json.dumps(data)) < 4200


def test_empty_audio() -> None:
    lv = levels(np.zeros(0, np.float32), offset=3.0)
    assert len(lv.db) == 0
    assert Levels.from_dict(lv.to_dict()).loudness(3.0, 4.0) == FLOOR_DB


def test_int16_audio_has_the_same_levels() -> None:
    audio = np.concatenate([tone(1.0, -20.0), np.zeros(SAMPLE_RATE, np.float32), tone(1.0, -50.0)])
    as_int16 = np.rint(audio * 32768).astype(np.int16)
    np.testing.assert_allclose(levels(as_int16, offset=0).db, levels(audio, offset=0).db, atol=0.05)
