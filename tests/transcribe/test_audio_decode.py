"""Decoding any audio file, and placing a track's pieces on the room clock."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.speech import SAMPLE_RATE, VOICES, synthesize, write_audio
from transcribe.audio import Timeline, decode, timeline
from transcribe.exceptions import AudioError, TranscribeError


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 10 s of speech."""
    parts = [
        synthesize(text, VOICES[0]).samples
        for text in (
            "The weather was lovely this morning, so we walked down to the river.",
            "Our team finished the project two weeks ahead of schedule.",
            "I read a wonderful book about the history of the ocean.",
        )
    ]
    return np.concatenate(parts).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalized correlation of two signals over their common length, best lag within 5 ms."""
    n = min(len(a), len(b)) - 160
    best = 0.0
    for lag in range(-80, 81, 4):
        x = a[80 + lag : 80 + lag + n]
        y = b[80 : 80 + n]
        best = max(best, float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9)))
    return best


@pytest.mark.parametrize(
    ("suffix", "rate", "channels"),
    [
        (".wav", 16_000, 1),
        (".wav", 44_100, 2),
        (".ogg", 48_000, 2),
        (".flac", 48_000, 1),
        (".mp3", 44_100, 2),
    ],
)
def test_decodes_formats_rates_and_channels(
    tmp_path: Path, speech: np.ndarray, suffix: str, rate: int, channels: int
) -> None:
    path = write_audio(tmp_path / f"a{suffix}", speech, sample_rate=rate, channels=channels)
    audio = decode(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Codecs add a little priming/padding, never more than ~60 ms.
    assert abs(len(audio) - len(speech)) < 0.06 * SAMPLE_RATE
    assert similarity(audio, speech) > (0.99 if suffix in (".wav", ".flac") else 0.8)


def test_decodes_as_int16_and_at_another_rate(tmp_path: Path, speech: np.ndarray) -> None:
    """The replay mix's samples (48 kHz int16) are the same sound as Whisper's (16 kHz float32)."""
    path = write_audio(tmp_path / "a.ogg", speech, sample_rate=48_000)
    reference = decode(path)
    small = decode(path, dtype=np.int16)
    assert small.dtype == np.int16 and len(small) == len(reference)
    assert np.abs(small / 32768 - reference).max() < 2e-4  # one int16 step, and the rounding
    wide = decode(path, rate=48_000, dtype=np.int16)
    assert wide.dtype == np.int16 and abs(len(wide) - 3 * len(reference)) <= 3
    assert similarity(wide[::3] / 32768, reference) > 0.99


def test_empty_file_is_an_audio_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.ogg"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.ogg"):
        decode(path)


def test_text_file_is_an_audio_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are my meeting notes, not audio\n" * 50)
    with pytest.raises(AudioError, match="notes.wav"):
        decode(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TranscribeError, match="nothing.ogg"):
        decode(tmp_path / "nothing.ogg")


def test_video_without_audio_is_an_audio_error(tmp_path: Path) -> None:
    path = tmp_path / "silent-film.mkv"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=32x32:d=1",
            "-c:v",
            "ffv1",
            str(path),
        ],
        check=True,
    )
    with pytest.raises(AudioError, match="no audio stream"):
        decode(path)


def test_truncated_ogg_keeps_what_was_written(tmp_path: Path, speech: np.ndarray) -> None:
    path = write_audio(tmp_path / "a.ogg", speech)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    audio = decode(path)
    assert 0.35 * len(speech) < len(audio) < 0.65 * len(speech)


def test_ogg_corrupt_in_the_middle_decodes_the_rest(tmp_path: Path, speech: np.ndarray) -> None:
    path = write_audio(tmp_path / "a.ogg", speech)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    audio = decode(path)
    # The damaged Ogg pages (a second or two) become silence; the rest keeps its time.
    assert abs(len(audio) - len(speech)) < 0.06 * SAMPLE_RATE
    lost = np.abs(audio) < 1e-4
    assert 0.2 * SAMPLE_RATE < lost[2 * SAMPLE_RATE : -2 * SAMPLE_RATE].sum() < 3 * SAMPLE_RATE
    head, tail = slice(0, 3 * SAMPLE_RATE), slice(len(speech) - 3 * SAMPLE_RATE, len(speech) - 160)
    assert similarity(audio[head], speech[head]) > 0.8
    assert similarity(audio[tail], speech[tail]) > 0.8


def test_timeline_places_pieces_on_the_room_clock() -> None:
    a = np.ones(SAMPLE_RATE, dtype=np.float32)  # 1 s
    b = np.full(SAMPLE_RATE // 2, 0.5, dtype=np.float32)  # 0.5 s
    start, audio = timeline([(12.5, b), (10.0, a)])  # any order; a late start
    assert start == 10.0
    assert len(audio) == round(3.0 * SAMPLE_RATE)
    assert np.all(audio[:SAMPLE_RATE] == 1.0)
    assert np.all(audio[SAMPLE_RATE : round(2.5 * SAMPLE_RATE)] == 0.0)  # the gap is silence
    assert np.all(audio[round(2.5 * SAMPLE_RATE) :] == 0.5)


def test_timeline_of_nothing() -> None:
    start, audio = timeline([])
    assert start == 0.0 and audio.size == 0


def test_timeline_overlap_later_piece_wins() -> None:
    start, audio = timeline([(0.0, np.ones(16000, np.float32)), (0.5, np.full(16000, 2.0, np.float32))])
    assert start == 0.0 and len(audio) == 24000
    assert audio[7999] == 1.0 and audio[8000] == 2.0


def test_timeline_builder_releases_pieces() -> None:
    line = Timeline()
    line.add(5.0, np.ones(1000, np.float32))
    line.add(5.5, np.ones(1000, np.float32))
    start, audio = line.build()
    assert start == 5.0 and len(audio) == 9000
    assert line.build() == (0.0, pytest.approx(np.zeros(0)))  # emptied


def test_decoded_segments_line_up(tmp_path: Path, speech: np.ndarray) -> None:
    """A track recorded as two Opus segments with a gap decodes onto the right seconds."""
    first = write_audio(tmp_path / "000000.ogg", speech[: 3 * SAMPLE_RATE])
    second = write_audio(tmp_path / "000001.ogg", speech[3 * SAMPLE_RATE : 6 * SAMPLE_RATE])
    start, audio = timeline([(20.0, decode(first)), (30.0, decode(second))])
    assert start == 20.0
    assert abs(len(audio) - 13 * SAMPLE_RATE) < 0.06 * SAMPLE_RATE
    assert np.abs(audio[4 * SAMPLE_RATE : 9 * SAMPLE_RATE]).max() < 1e-3  # the gap
    assert similarity(audio[10 * SAMPLE_RATE : 13 * SAMPLE_RATE], speech[3 * SAMPLE_RATE : 6 * SAMPLE_RATE]) > 0.8


def test_buffer_grows_past_a_wrong_duration_estimate() -> None:
    from transcribe.audio import _Buffer

    buffer = _Buffer(expected_seconds=0.5)  # the container said half a second
    chunks = [np.full(SAMPLE_RATE, i, dtype=np.float32) for i in range(10)]
    for chunk in chunks:
        buffer.append(chunk)
    assert np.array_equal(buffer.result(), np.concatenate(chunks))
