"""A window the prompt sends round a loop is heard again without the prompt, before sampling."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.speech import SENTENCES, VOICES, Space, Utterance, build_space, word_error_rate
from transcribe.audio import decode
from transcribe.model import WindowedWhisper
from transcribe.transcribe import TranscribeOptions, transcribe

pytestmark = pytest.mark.slow

#: A prompt that sends tiny.en off at temperature 0 on the space below: it
#: samples at 0.6 without the retry, and lowercases and mishears the room.
LOOPING = "the the the the the the the the the the"


@pytest.fixture(scope="module")
def alike(tmp_path_factory: pytest.TempPathFactory) -> Space:
    """A room of alike sentences, the same one three times among others."""
    texts = (SENTENCES[0], SENTENCES[0], SENTENCES[1], SENTENCES[0], SENTENCES[2])
    return build_space(
        tuple(Utterance("alice", 0.5 + 4.5 * i, text) for i, text in enumerate(texts)),
        {"alice": VOICES[0]},
        duration=25.0,
        out_dir=tmp_path_factory.mktemp("alike"),
    )


def heard(model: WhisperModel, audio: Path, *, retry: bool) -> tuple[list[float], list[Word]]:
    """Each window's temperature, and the words, of faster-whisper prompted with :data:`LOOPING`."""
    assert isinstance(model, WindowedWhisper)
    with model.prompt_free_retry() if retry else contextlib.nullcontext():
        said = list(model.transcribe(decode(audio), language="en", initial_prompt=LOOPING)[0])
    return [s.temperature for s in said], [Word(0.0, 0.0, t, "alice") for s in said for t in s.text.split()]


def test_a_window_failing_with_its_prompt_is_heard_without_it_at_the_first_temperature(
    model: WhisperModel, alike: Space
) -> None:
    (audio,) = alike.values()
    truth = alike.words()
    sampled, _ = heard(model, audio, retry=False)
    # The case the retry is for: with the prompt, faster-whisper had to sample.
    assert max(sampled) > 0, sampled
    temperatures, words = heard(model, audio, retry=True)
    assert temperatures == [0.0] * len(temperatures)
    assert word_error_rate(truth, words) <= 0.1, [w.text for w in words]


def test_the_room_pass_s_option_turns_it_on(model: WhisperModel, alike: Space) -> None:
    (audio,) = alike.values()

    def text(options: TranscribeOptions) -> list[str]:
        return [w.text for w in transcribe(model, decode(audio), speaker="alice", offset=0.0, options=options)]

    prompted = TranscribeOptions(initial_prompt=LOOPING, keep_pauses=True)
    # One window: retried, it is heard exactly as with no prompt at all; not retried, sampled.
    unprompted = text(replace(prompted, initial_prompt=None))
    assert text(replace(prompted, prompt_free_retry=True)) == unprompted
    assert text(prompted) != unprompted
