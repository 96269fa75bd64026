"""Language detection: enough windows of a speaker's speech, and no more than it takes."""

from __future__ import annotations

import math

import numpy as np

from tests.speech import SENTENCES, VOICES, Utterance, render_track
from transcribe.language import DetectOptions, detect
from transcribe.model import load_model


def _track(sentences: int) -> np.ndarray:
    """One English voice saying ``sentences`` sentences, a second apart."""
    utterances = [Utterance("alice", 1.0 + 5.0 * i, SENTENCES[i % len(SENTENCES)]) for i in range(sentences)]
    return render_track(utterances, voice=VOICES[0], duration=5.0 * sentences + 2.0)[0]


def test_detection_stops_once_the_speech_says_the_language_surely() -> None:
    base = load_model("base")
    audio = _track(24)  # about 80 s of speech: three 30 s windows
    sure, seconds = detect(base, audio)
    every, all_seconds = detect(base, audio, DetectOptions(sure=1.01))  # never sure: every window
    assert next(iter(sure)) == next(iter(every)) == "en"
    assert sure["en"] >= DetectOptions().sure
    assert DetectOptions().sure_speech <= seconds <= DetectOptions().window < all_seconds


def test_detection_encodes_the_speech_and_a_second_not_ten_second_steps() -> None:
    base = load_model("base")
    windows: list[int | None] = []
    encode = base.encode

    def watched(features: np.ndarray) -> object:
        windows.append(getattr(base._window, "frames", None))  # the window the encoder hears, in frames
        return encode(features)

    base.encode = watched  # type: ignore[method-assign]
    probabilities, seconds = detect(base, _track(3))  # about 9 s of speech: one window
    assert next(iter(probabilities)) == "en"
    # 100 frames a second: the speech and a second more, in whole seconds, not the 20 s a 10 s step makes.
    assert windows == [math.ceil(seconds + 1) * 100], (windows, seconds)
    assert math.ceil(seconds + 1) < 20
