"""Voice activity: where someone speaks, computed memory-flat."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.vad import VadOptions as WhisperVadOptions
from faster_whisper.vad import get_speech_timestamps, get_vad_model

from tests.speech import SAMPLE_RATE, VOICES, Utterance, render_track
from transcribe.vad import VadOptions, speech_probabilities, speech_spans


@pytest.fixture(scope="module")
def track() -> tuple[np.ndarray, list[tuple[float, float]]]:
    utterances = [
        Utterance("a", 1.0, "The weather was lovely this morning."),
        Utterance("a", 9.0, "Please remember to bring your notebook."),
        Utterance("a", 150.0, "We should probably order more coffee."),  # after a long silence
    ]
    samples, _, ends = render_track(utterances, voice=VOICES[0], duration=160.0)
    return samples, [(u.start, end) for u, end in zip(utterances, ends, strict=True)]


def test_spans_cover_each_utterance(track: tuple[np.ndarray, list[tuple[float, float]]]) -> None:
    audio, truth = track
    spans = speech_spans(speech_probabilities(audio), len(audio))
    assert len(spans) == len(truth)
    for (s, e), (ts, te) in zip(spans, truth, strict=True):
        assert s / SAMPLE_RATE <= ts and e / SAMPLE_RATE >= te  # covered
        assert ts - s / SAMPLE_RATE < 0.6 and e / SAMPLE_RATE - te < 0.6  # not much more than the padding


def test_same_spans_as_faster_whisper(track: tuple[np.ndarray, list[tuple[float, float]]]) -> None:
    """Blockwise probabilities and the ported decision give faster-whisper's spans."""
    audio = track[0][: 20 * SAMPLE_RATE]
    ours = VadOptions()
    theirs = WhisperVadOptions(
        threshold=ours.threshold,
        min_speech_duration_ms=ours.min_speech_duration_ms,
        max_speech_duration_s=ours.max_speech_duration_s,
        min_silence_duration_ms=ours.min_silence_duration_ms,
        speech_pad_ms=ours.speech_pad_ms,
    )
    expected = [(d["start"], d["end"]) for d in get_speech_timestamps(audio, theirs)]
    assert speech_spans(speech_probabilities(audio), len(audio), ours) == expected


def test_long_speech_is_split_below_a_window(track: tuple[np.ndarray, list[tuple[float, float]]]) -> None:
    audio = np.tile(track[0][: 12 * SAMPLE_RATE], 6)  # 72 s with only short pauses
    spans = speech_spans(speech_probabilities(audio), len(audio), VadOptions(min_silence_duration_ms=5000))
    assert len(spans) >= 3
    assert all(e - s <= 28 * SAMPLE_RATE for s, e in spans)


def test_silence_and_noise_have_no_speech() -> None:
    rng = np.random.default_rng(1)
    for audio in (
        np.zeros(30 * SAMPLE_RATE, np.float32),
        rng.normal(0, 0.03, 30 * SAMPLE_RATE).astype(np.float32),
    ):
        assert speech_spans(speech_probabilities(audio), len(audio)) == []


def test_probabilities_are_blockwise_continuous(track: tuple[np.ndarray, list[tuple[float, float]]]) -> None:
    """Blocks (every ~2 min, and around sound only) decide like one pass over the whole track.

    Not identically: after minutes of silence, one long pass has the network
    slow to react (its state remembers the silence), while a block starts
    fresh; so spans may start a little earlier here, never later.
    """
    audio = track[0]
    probs = speech_probabilities(audio)
    assert len(probs) == -(-len(audio) // 512)
    at_once = get_vad_model()(np.pad(audio, (0, -len(audio) % 512)))  # faster-whisper's way
    assert np.mean((probs >= 0.5) == (at_once >= 0.5)) > 0.995
    ours = speech_spans(probs, len(audio))
    theirs = speech_spans(at_once, len(audio))
    assert len(ours) == len(theirs)
    for (s1, e1), (s2, e2) in zip(ours, theirs, strict=True):
        assert s2 - 16 * 512 <= s1 <= s2 + 512 and abs(e1 - e2) <= 2 * 512


def test_scoring_leaves_the_audio_untouched(track: tuple[np.ndarray, list[tuple[float, float]]]) -> None:
    """faster-whisper's silero wrapper zeroes the tail of its input in place; ours must not pass that on.

    A live agent scores the audio it then transcribes: 4 ms zeroed at every
    call turned "about the history" into "I'm out of history".
    """
    audio, _ = track
    # A whole number of frames, all audible (room noise): no padded copy, no skipped frame hides the bug.
    noise = np.random.default_rng(3).standard_normal(20 * SAMPLE_RATE).astype(np.float32) * 0.01
    piece = audio[: 20 * SAMPLE_RATE] + noise
    before = piece.copy()
    speech_probabilities(piece)
    assert np.array_equal(piece, before)


def test_near_loudest_skips_room_noise_not_speech(track: tuple[np.ndarray, list[tuple[float, float]]]) -> None:
    """Room noise above the -60 dBFS gate is left unscored when only the track's loud frames are asked
    for; the speech decides the same."""
    audio = track[0][: 20 * SAMPLE_RATE]
    # Noise at -55 dBFS on the whole track, as on every microphone of the bench's seven-speaker space.
    noise = np.random.default_rng(5).standard_normal(len(audio)).astype(np.float32) * 10 ** (-55 / 20)
    noisy = audio + noise
    everywhere = speech_probabilities(noisy)
    near = speech_probabilities(noisy, near_loudest=35.0)
    assert np.count_nonzero(everywhere) == len(everywhere)  # the noise alone sends every frame through
    assert np.count_nonzero(near) < 0.8 * len(near)
    assert speech_spans(near, len(noisy)) == speech_spans(everywhere, len(noisy))
