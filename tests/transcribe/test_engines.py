"""The bench's other speech engines (``tests.engines``): every word said, and said when the truth says."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.evalspace import ENGINE_VOICES, MANY_ENGINE_VOICES
from tests.speech import SAMPLE_RATE, match_words, synthesize, word_error_rate
from transcribe.transcribe import transcribe

pytestmark = pytest.mark.slow

# Every voice pauses after the quotation (Festival's after "chairs" too), says "10"
# as a word and the dashes as nothing.
SENTENCE = 'My cousin borrowed 10 chairs - "the old ones" - for the party.'
PAUSED_AFTER = 'ones"'
PAD = 0.5
VOICES = sorted({v for v in (*ENGINE_VOICES, *MANY_ENGINE_VOICES) if ":" in v})


@pytest.mark.parametrize("voice", VOICES)
def test_each_engine_says_every_word_when_the_truth_says(model: WhisperModel, voice: str) -> None:
    speech = synthesize(SENTENCE, voice)
    assert [t for _, _, t in speech.words] == [t for t in SENTENCE.split() if t != "-"]
    # A word's time is its own phones': the engine's pause falls between the words around it.
    gaps = [(b[0] - a[1], a[2]) for a, b in zip(speech.words, speech.words[1:], strict=False)]
    assert all(gap >= 0 for gap, _ in gaps)
    assert max(gaps)[1] == PAUSED_AFTER and max(gaps)[0] >= 0.05, gaps

    silence = np.zeros(round(PAD * SAMPLE_RATE), dtype=np.float32)
    heard = transcribe(model, np.concatenate([silence, speech.samples, silence]), speaker="x", offset=0.0)
    truth = [Word(s + PAD, e + PAD, t, "x") for s, e, t in speech.words]
    assert word_error_rate(truth, heard) <= 0.3, " ".join(w.text for w in heard)
    pairs = match_words(truth, heard, within=0.5)
    assert len(pairs) >= 0.6 * len(truth), " ".join(w.text for w in heard)
    assert statistics.median(abs(t.start - h.start) for t, h in pairs) <= 0.15


def test_flite_refuses_a_text_whose_words_it_says_in_another_order() -> None:
    # "$5 million" is said "five million dollars": the phones of "$5" alone and
    # "million" alone add up to the right count, in the wrong places.
    with pytest.raises(ValueError, match="its words alone"):
        synthesize("It cost $5 million.", "flite:awb")


@pytest.mark.parametrize(
    ("voice", "error"),
    [
        ("mbrola:us1", "unknown speech engine in 'mbrola:us1'"),
        ("festival:kal_diphon", "unbound variable : voice_kal_diphon"),
        ("flite:awbx", "unknown flite voice 'awbx'"),
    ],
)
def test_an_unknown_voice_is_refused_not_replaced(voice: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        synthesize("Hello there.", voice)
