"""The transcription tests' dialogue: what is said, when, and the model's words for it."""

from __future__ import annotations

from dataclasses import dataclass

from spaces.models import Word
from tests.speech import Utterance
from transcribe.levels import Levels

OFFSET = 100.0


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


@dataclass(frozen=True)
class Transcribed:
    words: dict[str, list[Word]]
    levels: dict[str, Levels]
    progress: dict[str, list[float]]
