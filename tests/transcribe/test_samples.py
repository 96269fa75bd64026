"""Audio read from disk a stretch at a time: the same samples, the same words, a stretch's memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from tests.speech import Space
from tests.support.transcribe import OFFSET, Transcribed
from transcribe.audio import SAMPLE_RATE, decode
from transcribe.samples import SampleFile, part
from transcribe.transcribe import transcribe


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_a_files_slices_are_the_arrays(tmp_path: Path, dtype: type[np.int16] | type[np.float32]) -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(-32768, 32767, 5000).astype(dtype)
    values.tofile(tmp_path / "a")
    as_read = values.astype(np.float32) / (32768 if dtype is np.int16 else 1)
    audio = SampleFile(tmp_path / "a", dtype)
    assert len(audio) == 5000
    for key in (slice(None), slice(10, 20), slice(-30, None), slice(4990, 6000), slice(30, 10)):
        got = audio[key]
        assert got.dtype == np.float32 and np.array_equal(got, as_read[key]), key
    inner = part(audio, slice(100, 900))
    assert isinstance(inner, SampleFile) and len(inner) == 800
    assert np.array_equal(part(inner, slice(50, 60))[:], as_read[150:160])
    assert np.array_equal(inner[-5:], as_read[895:900])
    with pytest.raises(TypeError, match="stretches"):
        audio[::2]
    with pytest.raises(TypeError, match="stretches"):
        audio[3]  # type: ignore[call-overload]


def test_a_stretch_costs_its_own_memory_not_the_files(tmp_path: Path) -> None:
    minutes = 20
    np.zeros(minutes * 60 * SAMPLE_RATE, dtype=np.float32).tofile(tmp_path / "mix.f32")
    audio = SampleFile(tmp_path / "mix.f32", np.float32)
    tracemalloc.start()
    try:
        step = 30 * SAMPLE_RATE
        stretches = [float(np.abs(audio[a : a + step]).sum()) for a in range(0, len(audio), step)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(stretches) == minutes * 2 and not any(stretches)
    # One 30 s stretch (1.9 MB) and its absolute values, not the file's 77 MB.
    assert peak < 8 * 30 * SAMPLE_RATE * 4, peak


def test_a_track_on_disk_is_heard_as_the_array(
    tmp_path: Path, model: WhisperModel, dialogue: Space, dialogue_words: Transcribed
) -> None:
    samples = decode(dialogue["alice"])
    samples.tofile(tmp_path / "alice.f32")
    words = transcribe(model, SampleFile(tmp_path / "alice.f32", np.float32), speaker="alice", offset=OFFSET)
    assert words and words == dialogue_words.words["alice"]
