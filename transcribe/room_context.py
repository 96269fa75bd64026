"""What the room said lately: the text (the prompt) and the audio (acoustic context) of recent finals.

The offline pipeline hears a speaker's speech in windows of up to 30 s,
several utterances at once, each window conditioned on the text before it.
A live final pass hears one utterance alone, and a lone short utterance is
where Whisper guesses ("I read *that* wonderful book"). So a final pass is
given the last few seconds of the room's finalized speech in front of its
utterance, inside the same encoder window, with the text said before that
as its prompt; of what it decodes, only the words of the utterance are kept
(:meth:`transcribe.streaming.StreamingTranscriber`).

Shared by every speaker's transcriber of a room (each on a thread of its
own in the agent), hence the lock.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from spaces.models import Word, join_words
from transcribe.audio import SAMPLE_RATE

PROMPT_CHARS = 200
"""Characters of the room's recent final text given to Whisper as its prompt."""
_KEPT = 12
"""Finals remembered: more than any context or prompt reaches back."""
_GAP = 0.1
"""Seconds between a context's last word and the utterance's start, at least."""


@dataclass(frozen=True, eq=False)
class Heard:
    """One finalized utterance: its audio as the agent heard it and its final words."""

    speaker: str
    start: float
    """Room time of ``audio[0]``."""
    audio: np.ndarray
    """Mono float32 at 16 kHz, the utterance with its padding."""
    words: tuple[Word, ...]

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclass(frozen=True)
class Context:
    """What a final pass hears before its utterance."""

    audio: tuple[Heard, ...]
    """Finals whose audio goes in front of the utterance, oldest first."""
    prompt: str | None
    """The room's text said before them."""


class RoomContext:
    """The room's recent finals (text and audio), in the order they were made."""

    def __init__(self, *, prompt_chars: int = PROMPT_CHARS) -> None:
        self.prompt_chars = prompt_chars
        self._finals: collections.deque[Heard] = collections.deque(maxlen=_KEPT)
        self._lock = threading.Lock()

    def add(self, heard: Heard) -> None:
        if not heard.words:
            return
        with self._lock:
            self._finals.append(heard)

    def prompt(self) -> str | None:
        """The room's recent final text, every speaker's (the interim passes' prompt)."""
        with self._lock:
            finals = list(self._finals)
        return _tail(finals, self.prompt_chars)

    def before(self, start: float, seconds: float) -> Context:
        """Up to ``seconds`` of the latest finals' audio before room time ``start``, and the text said before it.

        The newest finals first; the oldest one heard may be cut, at the
        start of a word, to fit. A final whose padding runs into the
        utterance (a quick reply) is cut at ``start``; one whose words do
        (someone talking over it) is left out: they would be heard twice.
        """
        with self._lock:
            finals = list(self._finals)
        chosen: list[Heard] = []
        left = seconds
        for heard in reversed(finals):
            if heard.words[-1].end > start - _GAP:
                continue
            heard = _cut(heard, heard.start, min(heard.end, start))
            if heard.seconds > left:
                first = next((w for w in heard.words if w.start - _GAP >= heard.end - left), None)
                if first is not None:
                    chosen.insert(0, _cut(heard, first.start - _GAP, heard.end))
                break
            chosen.insert(0, heard)
            left -= heard.seconds
        if not chosen:
            return Context((), _tail(finals, self.prompt_chars))
        return Context(tuple(chosen), _text(finals, chosen[0].start, self.prompt_chars))


def _cut(heard: Heard, start: float, end: float) -> Heard:
    """``heard`` between room times ``start`` and ``end``, with the words inside."""
    lo, hi = round((start - heard.start) * SAMPLE_RATE), round((end - heard.start) * SAMPLE_RATE)
    words = tuple(w for w in heard.words if w.start >= start and w.end <= end)
    return Heard(heard.speaker, heard.start + lo / SAMPLE_RATE, heard.audio[lo:hi], words)


def _text(finals: Sequence[Heard], before: float, chars: int) -> str | None:
    """The end of the finals' text said before room time ``before``."""
    return tail_text((w.text for h in finals for w in h.words if w.start < before), chars) or None


def tail_text(words: Iterable[str], chars: int) -> str:
    """The words joined, and only the last ``chars`` characters of them kept, in whole words: a prompt."""
    text = join_words(words)
    if len(text) > chars:
        text = text[-chars:].partition(" ")[2]  # whole words only
    return text


def _tail(finals: Sequence[Heard], chars: int) -> str | None:
    return _text(finals, float("inf"), chars)
