"""The bench's other speech engines (``tests.engines``): every word said, and said when the truth says."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.speech import SAMPLE_RATE, match_words, synthesize, word_error_rate
from transcribe.transcribe import transcribe

SENTENCE = 'My cousin borrowed 10 chairs - "the old ones" - for the party.'
PAD = 0.5


@pytest.mark.parametrize("voice", ["festival:kal_diphone", "festival:cmu_us_slt_arctic_hts", "flite:awb"])
def test_each_engine_says_every_word_when_the_truth_says(model: WhisperModel, voice: str) -> None:
    speech = synthesize(SENTENCE, voice)
    # Every token but the dashes (said as nothing), in order, none overlapping the next, inside the audio.
    assert [t for _, _, t in speech.words] == [t for t in SENTENCE.split() if t != "-"]
    ends = [0.0] + [e for _, e, _ in speech.words]
    assert all(lo <= s < e for (s, e, _), lo in zip(speech.words, ends, strict=False))
    assert speech.words[0][0] == 0.0 and speech.words[-1][1] == pytest.approx(speech.duration, abs=0.001)

    silence = np.zeros(round(PAD * SAMPLE_RATE), dtype=np.float32)
    heard = transcribe(model, np.concatenate([silence, speech.samples, silence]), speaker="x", offset=0.0)
    truth = [Word(s + PAD, e + PAD, t, "x") for s, e, t in speech.words]
    assert word_error_rate(truth, heard) <= 0.3, " ".join(w.text for w in heard)
    pairs = match_words(truth, heard, within=0.5)
    assert len(pairs) >= 0.6 * len(truth), " ".join(w.text for w in heard)
    assert statistics.median(abs(t.start - h.start) for t, h in pairs) <= 0.15


def test_an_unknown_engine_is_named() -> None:
    with pytest.raises(ValueError, match="unknown speech engine in 'mbrola:us1'"):
        synthesize("Hello there.", "mbrola:us1")
