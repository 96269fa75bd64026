"""Fixtures for the transcription tests: the real model, real synthesized speech."""

from __future__ import annotations

import pytest
from faster_whisper import WhisperModel

from tests.speech import VOICES, Space, Utterance, build_space
from tests.support.services import TEST_MODEL
from tests.support.transcribe import DIALOGUE, OFFSET, Transcribed
from transcribe.audio import decode
from transcribe.levels import levels
from transcribe.model import load_model
from transcribe.transcribe import transcribe


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
