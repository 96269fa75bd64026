"""A window heard wrong with its prompt is heard again with a shorter one, before sampling.

Wrong: failing Whisper's thresholds (a loop), or a phrase heard twice in a row.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.speech import SENTENCES, VOICES, Space, Utterance, build_space, word_error_rate
from transcribe.audio import decode
from transcribe.loops import repeats_a_phrase
from transcribe.model import RETRY_PROMPT_TOKENS, WindowedWhisper, retry_prompt
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
    with model.short_prompt_retry() if retry else contextlib.nullcontext():
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
    assert text(replace(prompted, short_prompt_retry=True)) == unprompted
    assert text(prompted) != unprompted


def test_a_call_at_one_temperature_is_retried_too(model: WhisperModel, alike: Space) -> None:
    # An overlap's clips are heard at the first temperature alone (no
    # sampling to fall back on): the retry is their one second look.
    (audio,) = alike.values()
    assert isinstance(model, WindowedWhisper)

    def words(retry: bool) -> list[Word]:
        with model.short_prompt_retry() if retry else contextlib.nullcontext():
            said = model.transcribe(decode(audio), language="en", initial_prompt=LOOPING, temperature=[0.0])[0]
            return [Word(0.0, 0.0, t, "alice") for s in said for t in s.text.split()]

    truth = alike.words()
    looped = words(retry=False)
    assert word_error_rate(truth, looped) > 0.1, [w.text for w in looped]
    retried = words(retry=True)
    assert word_error_rate(truth, retried) <= 0.1, [w.text for w in retried]


SOT_PREV, SOT, EN, TRANSCRIBE = 50361, 50257, 50259, 50359


def test_a_retry_keeps_the_last_tokens_of_a_long_prompt() -> None:
    text = list(range(100, 100 + 3 * RETRY_PROMPT_TOKENS))
    start = [SOT, EN, TRANSCRIBE]
    kept = retry_prompt([SOT_PREV, *text, *start], SOT)
    assert kept == [SOT_PREV, *text[-RETRY_PROMPT_TOKENS:], *start]


def test_a_retry_of_a_short_prompt_has_none() -> None:
    # Short, the prompt may be all that is wrong (a loop of "the the the").
    text = list(range(100, 100 + RETRY_PROMPT_TOKENS))
    assert retry_prompt([SOT_PREV, *text, SOT, EN], SOT) == [SOT, EN]


@pytest.mark.parametrize(
    "text",
    [
        # Heard on the seven-speaker bench space, where "Good idea" was said after it.
        "The old farmer make fresh bread at the market last summer. The old farmer make fresh bread at the market"
        " last summer. My cousin wrote a long letter",
        "so we walked, so we walked down to the river, so we walked down to the river",
    ],
)
def test_a_phrase_of_four_words_twice_in_a_row_is_a_repeat(text: str) -> None:
    assert repeats_a_phrase(text)


@pytest.mark.parametrize(
    "text",
    [
        "Good idea. Good idea.",  # two speakers agreeing
        "No, no, no, not at all.",
        "I think so, I think so.",
        "The old farmer baked bread on the island. The old farmer baked bread at the market.",
    ],
)
def test_what_people_repeat_is_not(text: str) -> None:
    assert not repeats_a_phrase(text)
