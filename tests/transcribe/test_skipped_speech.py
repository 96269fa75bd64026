"""Speech Whisper or the VAD would skip is found (issue 16: a window begun 13 s in, a phone answer)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from transcribe.audio import SAMPLE_RATE
from transcribe.transcribe import TranscribeOptions, _gaps, _with_known_speech, transcribe_clip
from transcribe.vad import FRAME, VadOptions, speech_near


def segment(*words: tuple[float, float]) -> SimpleNamespace:
    return SimpleNamespace(words=[SimpleNamespace(start=s, end=e) for s, e in words])


def test_a_window_begun_late_has_a_gap_and_one_heard_throughout_none() -> None:
    # Two spans packed: 0-17.6 s and 17.6-29 s of the window.
    group = [(0, int(17.6 * SAMPLE_RATE)), (int(20 * SAMPLE_RATE), int(31.4 * SAMPLE_RATE))]
    starts = np.array([0.0, 17.6])
    late = [segment(*[(13.4 + 0.5 * i, 13.8 + 0.5 * i) for i in range(31)])]
    assert _gaps(late, starts, group) == [(0.0, 13.4)]
    # Pauses under two seconds between words are speech's own.
    throughout = [segment(*[(0.2 + 0.9 * i, 0.8 + 0.9 * i) for i in range(32)])]
    assert _gaps(throughout, starts, group) == []
    # A span's last seconds without a word count too (an answer after the last segment).
    early = [segment(*[(0.2 + 0.9 * i, 0.8 + 0.9 * i) for i in range(28)])]
    ((lo, hi),) = _gaps(early, starts, group)
    assert (lo, hi) == pytest.approx((25.1, 29.0))


def test_a_known_stretch_the_vad_leaves_out_becomes_speech() -> None:
    n = 20 * SAMPLE_RATE
    probs = np.zeros(n // FRAME, dtype=np.float32)
    probs[round(2 * SAMPLE_RATE / FRAME) : round(5 * SAMPLE_RATE / FRAME)] = 0.9  # heard by the VAD
    # A phone voice: one frame above the threshold, too short for a span of its own.
    probs[round(10 * SAMPLE_RATE / FRAME)] = 0.6
    vad = VadOptions()
    spans = _with_known_speech(probs.copy(), n, 100.0, [(102.1, 104.9), (109.8, 110.8)], vad)
    assert len(spans) == 2
    assert spans[1][0] <= 9.8 * SAMPLE_RATE and spans[1][1] >= 10.8 * SAMPLE_RATE
    # Stretches the VAD's spans already cover leave them as they were.
    assert _with_known_speech(probs.copy(), n, 100.0, [(102.1, 104.9)], vad) == _with_known_speech(
        probs.copy(), n, 100.0, [], vad
    )


def test_every_known_stretch_is_speech_to_the_word_guards() -> None:
    """A voice on the phone the VAD hears late: a word begun before its span is still near speech."""
    n = 20 * SAMPLE_RATE
    probs = np.zeros(n // FRAME, dtype=np.float32)
    probs[round(2.6 * SAMPLE_RATE / FRAME) : round(5 * SAMPLE_RATE / FRAME)] = 0.9
    vad = VadOptions()
    untouched = _with_known_speech(probs.copy(), n, 100.0, [], vad)
    known = probs.copy()
    # The VAD covers most of the stretch: its spans stay...
    assert _with_known_speech(known, n, 100.0, [(102.1, 104.9)], vad) == untouched
    # ...but a word at 2.0-2.2 s ("The", heard surely before the VAD's speech) is near speech.
    assert speech_near(probs, 1.9, 2.15, slack=0.0) < vad.low
    assert speech_near(known, 1.9, 2.15, slack=0.0) >= vad.threshold
    assert speech_near(known, 0.5, 1.5, slack=0.0) < vad.low  # before the stretch: silence still


class Heard:
    """A model that hears the window's first half second only, and counts its decodes."""

    def __init__(self) -> None:
        self.prompts: list[str | None] = []

    def transcribe(self, audio: np.ndarray, **kwargs: object) -> tuple[list[SimpleNamespace], None]:
        self.prompts.append(kwargs.get("initial_prompt"))  # type: ignore[arg-type]
        word = SimpleNamespace(start=0.0, end=0.5, word=" hello", probability=0.9)
        said = SimpleNamespace(start=0.0, end=0.5, text=" hello", words=[word], temperature=0.0)
        return [said], None


@pytest.mark.parametrize("second_looks", [True, False])
def test_second_looks_off_decodes_a_window_once(second_looks: bool) -> None:
    model = Heard()
    options = TranscribeOptions(second_looks=second_looks)
    # Five seconds, of which Whisper "hears" half a second: 4.5 s skipped, with a prompt.
    transcribe_clip(
        model,  # type: ignore[arg-type]
        np.zeros(5 * SAMPLE_RATE, np.float32),
        start=0.0,
        end=5.0,
        speaker="a",
        offset=0.0,
        options=options,
        prompt="before",
    )
    if second_looks:
        # Again without the prompt, then the skipped stretch on its own (the window's words as its prompt).
        assert model.prompts == ["before", None, "hello"]
    else:
        assert model.prompts == ["before"]
