"""Fixtures for the transcription tests: the real model, real synthesized speech."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.conftest import TEST_MODEL
from tests.speech import VOICES, Space, Utterance, build_space
from transcribe.audio import decode
from transcribe.levels import Levels, levels
from transcribe.model import load_model
from transcribe.transcribe import transcribe

#: Where the dialogue's tracks start on the room clock (not zero, on purpose).
OFFSET = 100.0

#: Room time (relative to OFFSET) where nobody speaks for a long time.
SILENCE = (14.0, 21.5)

DIALOGUE = (
    Utterance("alice", 0.5, "Good evening everyone, and welcome to our weekly book club."),
    Utterance("bob", 5.0, "Thanks, it is great to be here again."),
    Utterance("alice", 8.2, "I read a wonderful book about the history of the ocean."),
    # bob speaks over the end of alice's sentence
    Utterance("bob", 11.0, "The train to the city leaves every hour."),
    Utterance("bob", 22.0, "Our team finished the project two weeks ahead of schedule."),
    Utterance("alice", 26.5, "My sister is learning to play the piano."),
)


@pytest.fixture(scope="session")
def model() -> WhisperModel:
    return load_model(TEST_MODEL)


@pytest.fixture(scope="session")
def dialogue(tmp_path_factory: pytest.TempPathFactory) -> Space:
    """Two speakers, 30 s, Opus tracks like the SFU's, a stretch of overlap and a long silence."""
    return build_space(
        DIALOGUE,
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=30.0,
        out_dir=tmp_path_factory.mktemp("dialogue"),
        suffix=".ogg",
    )


@dataclass(frozen=True)
class Transcribed:
    words: dict[str, list[Word]]
    levels: dict[str, Levels]
    progress: dict[str, list[float]]


@pytest.fixture(scope="session")
def dialogue_words(model: WhisperModel, dialogue: Space) -> Transcribed:
    """The dialogue's tracks transcribed as the pipeline does, on a room clock starting at OFFSET."""
    out = Transcribed({}, {}, {})
    for speaker, path in dialogue.items():
        audio = decode(path)
        out.progress[speaker] = []
        out.words[speaker] = transcribe(
            model, audio, speaker=speaker, offset=OFFSET, on_progress=out.progress[speaker].append
        )
        out.levels[speaker] = levels(audio, offset=OFFSET)
    return out


@pytest.fixture(scope="session")
def bleeding(tmp_path_factory: pytest.TempPathFactory) -> Space:
    """alice's voice bleeds into bob's microphone at -18 dB; bob has words of his own too."""
    return build_space(
        (
            Utterance("alice", 0.5, "The weather was lovely this morning, so we walked down to the river."),
            Utterance("bob", 5.5, "Please remember to bring your notebook to the meeting tomorrow."),
            Utterance("alice", 10.5, "We should probably order more coffee for the office kitchen."),
        ),
        {"alice": VOICES[0], "bob": VOICES[2]},
        duration=15.0,
        out_dir=tmp_path_factory.mktemp("bleeding"),
        bleed={"bob": ("alice", -18.0)},
    )
