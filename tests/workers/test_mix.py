"""The replay mix: every track on the room clock, its speech at one loudness, both renditions.

On real encodes (PyAV, as the job writes them), decoded again and measured:
no worker process, no store.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from spaces import keys
from spaces.blobstore.local import LocalBlobStore
from spaces.formats import AudioFormat
from tests.media import duration
from transcribe.audio import SAMPLE_RATE, decode
from transcribe.levels import levels
from workers import mix
from workers.levels import await_levels
from workers.mix import RATE, TARGET_DBFS, MixTrack, level_gain, render_mix

LENGTH = 8.0


def tone(hz: float, dbfs: float, seconds: float, rate: int) -> np.ndarray:
    """A sine whose RMS is ``dbfs``, as int16."""
    t = np.arange(round(seconds * rate)) / rate
    amplitude = 10 ** (dbfs / 20) * np.sqrt(2) * 32768
    return np.rint(amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def rms_dbfs(audio: np.ndarray, start: float, end: float) -> float:
    part = audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
    return 10 * float(np.log10(np.mean(part.astype(np.float64) ** 2) + 1e-20))


def track(hz: float, dbfs: float, pieces: list[tuple[float, float]]) -> MixTrack:
    """A track speaking a tone at ``dbfs`` in each ``(start, seconds)`` piece; its gain from its levels."""
    measured = levels(np.concatenate([tone(hz, dbfs, s, SAMPLE_RATE) for _, s in pieces]), offset=0.0)
    return MixTrack([(start, tone(hz, dbfs, s, RATE)) for start, s in pieces], level_gain(measured))


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[AudioFormat, Path]:
    # Half-second windows: pieces straddle windows, as a 10 s segment straddles minutes.
    monkeypatch.setattr(mix, "WINDOW", RATE // 2)
    quiet = track(440, -34.0, [(1.0, 2.0)])
    loud = track(660, -12.0, [(4.0, 1.25), (5.25, 0.75)])  # two segments, back to back
    late = track(550, -20.0, [(7.5, 2.0)])  # runs past the end of the space
    out = {fmt: tmp_path / f"replay.{fmt}" for fmt in AudioFormat}
    seen: list[float] = []
    render_mix([quiet, loud, late], LENGTH, out, seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(0.99)
    return out


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_each_speaker_at_the_target_loudness_in_their_place(outputs: dict[AudioFormat, Path], fmt: AudioFormat) -> None:
    audio = decode(outputs[fmt])
    # Inside each tone (away from its edges), at the target; silence between.
    assert rms_dbfs(audio, 1.2, 2.8) == pytest.approx(TARGET_DBFS, abs=1.0)
    assert rms_dbfs(audio, 4.2, 5.8) == pytest.approx(TARGET_DBFS, abs=1.0)
    assert rms_dbfs(audio, 7.6, 7.9) == pytest.approx(TARGET_DBFS, abs=1.0)
    for start, end in ((0.0, 0.9), (3.2, 3.8), (6.2, 7.3)):
        assert rms_dbfs(audio, start, end) < -60, (start, end)


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_the_replay_lasts_the_space(outputs: dict[AudioFormat, Path], fmt: AudioFormat) -> None:
    assert duration(outputs[fmt]) == pytest.approx(LENGTH, abs=0.05)


def test_mp4_index_comes_first_so_a_player_starts_at_once(outputs: dict[AudioFormat, Path]) -> None:
    data = outputs[AudioFormat.M4A].read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_gain_is_capped_and_silence_gets_none() -> None:
    assert level_gain(levels(tone(440, -50.0, 2.0, SAMPLE_RATE), offset=0)) == mix.MAX_GAIN_DB
    assert level_gain(levels(np.zeros(SAMPLE_RATE, dtype=np.int16), offset=0)) == 0.0


def _priority_after_yielding(start: int) -> tuple[int, int]:
    os.setpriority(os.PRIO_PROCESS, 0, start)
    mix.yield_cpu()
    return os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0)


@pytest.mark.parametrize(("start", "after"), [(0, mix.NICENESS), (mix.NICENESS + 5, mix.NICENESS + 5)])
def test_the_mix_yields_the_cpu_to_idle_priority_its_niceness_or_stays_lower(start: int, after: int) -> None:
    # In a process of its own, as the job's work horse: priority cannot be raised back.
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_priority_after_yielding, (start,)) == (after, os.SCHED_IDLE)


def test_the_mix_waits_for_the_levels_the_transcription_is_storing(tmp_path: Path) -> None:
    # The mix starts beside the room's transcription, which stores each track's levels as it reads it.
    store = LocalBlobStore(tmp_path)
    tracks = ["t0", "t1"]
    assert not await_levels(store, "s", tracks, wait=0.0)
    store.put(keys.levels("s", "t0"), b"{}")
    assert not await_levels(store, "s", tracks, wait=0.0)  # all of them, not the first
    writer = threading.Thread(target=store.put, args=(keys.levels("s", "t1"), b"{}"))
    writer.start()
    assert await_levels(store, "s", tracks, wait=120.0, poll=0.01)
    writer.join()
