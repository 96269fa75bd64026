"""Settled captions: the room's recent finals heard again together, as the offline pipeline hears them.

A live final pass hears one utterance alone (or with a few seconds of the
room before it), and however it is built it stays at 1.35-2.3x the
pipeline's word errors: what is left is acoustic, and the pipeline gets it
right by hearing up to 30 s of speech at once, each word with the words
around it, *after* it too. So the finals stay as they are (fast), and
every ``every`` seconds of newly finalized speech, or once the room falls
silent for ``pause``, a revision pass hears the room's new finalized
speech again: the mix of every speaker's utterances finalized since the
last pass (up to ``window`` seconds; ``context`` seconds of settled ones
before them if asked), transcribed as the offline room pass transcribes a
mix (:func:`transcribe.transcribe.transcribe`: VAD, one packed window, the
settled text before as the prompt; encoded over 20 s where it fits, at one
temperature), each word given to the
speaker whose track is loudest under it (:func:`transcribe.room.attribute`)
and then to that speaker's utterance holding its middle. The words replace
the finals of the utterances they cover: one *settled* caption per
utterance, with the final's speaker, utterance number and ``seq``::

    reviser = Reviser(load_model("base"))
    transcriber = StreamingTranscriber(..., on_final=reviser.add)
    ...
    if reviser.due(now, talking=transcriber.talking):
        settled = reviser.revise()

Pure and single-threaded, like :class:`~transcribe.streaming.StreamingTranscriber`:
the caller owns the clock and the thread a pass runs on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from faster_whisper import WhisperModel

from spaces.captions import on_screen
from spaces.models import Caption, Word, join_words
from transcribe.audio import SAMPLE_RATE
from transcribe.exceptions import DecodeFailed
from transcribe.levels import levels
from transcribe.room import RoomTrack, add_to_mix, attribute
from transcribe.room_context import PROMPT_CHARS, Heard, tail_text
from transcribe.transcribe import TranscribeOptions, transcribe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevisionOptions:
    """When a revision pass runs, and what it hears."""

    every: float = 15.0
    """Seconds of newly finalized speech (utterances, with their padding) that make a pass due."""
    pause: float = 3.0
    """Seconds after the newest final's end with nothing new that make a pass due for what is left."""
    window: float = 28.0
    """Seconds of utterances a pass hears at most: one Whisper window (30 s) once the VAD has trimmed them."""
    context: float = 0.0
    """Seconds of settled utterances a pass hears before the pending ones, at most (within ``window``).

    0: none, their text is the prompt. Hearing them again cost a half more
    CPU for no fewer errors (``bench.live_wer``: up to 28 s of them, 0.18
    CPU-s per second of speech against 0.12, 1.30x against 1.25x the
    pipeline's WER).
    """
    resettle: bool = False
    """Settle every utterance a pass hears again (later passes hear it with more after it), or only new ones."""
    whisper: TranscribeOptions = field(default_factory=lambda: TranscribeOptions(fit_encoder=True, fallback=False))
    """Decoded as the offline pipeline decodes, over a 20 s encoder window where the speech fits one, at
    one temperature: a text that fails Whisper's thresholds leaves the pass's finals as they are.

    Decoded again at every temperature, the live bench's warm-up speaker (one
    sentence six times: too repetitive at any temperature) took one pass
    26 CPU-s, and the passes behind it waited a minute.

    ``bench.live_wer``, seeds 1-4 of 16 turns: the 20 s window costs 0.08-0.09
    CPU-s per second of speech against 0.12 for Whisper's 30 s, 26 errors
    against 25. Beam 5: beam 2 or 1 made a quarter to half more errors and
    saved a tenth.
    Decoding once (``second_looks`` off) made 14 errors against 2 with the
    live bench's warm-up speaker in the room (its sentence repeated six
    times, in the prompt): a sentence heard twice.
    """
    kept: int = 64
    """Utterances remembered: more than any window or prompt reaches back."""


@dataclass
class RevisionPass:
    """One pass: seconds of utterances it heard, and of them those it settled, by speaker."""

    heard: float = 0.0
    settled: dict[str, float] = field(default_factory=dict)

    def shares(self) -> dict[str, float]:
        """Each speaker's share of the settled speech: how a pass's cost is shared out among them."""
        total = sum(self.settled.values())
        return {sp: seconds / total for sp, seconds in self.settled.items()} if total else {}


@dataclass
class _Final:
    caption: Caption
    heard: Heard
    settled: tuple[Word, ...] | None = None

    @property
    def words(self) -> tuple[Word, ...]:
        """The utterance's words as they stand: settled, else final."""
        return self.settled if self.settled is not None else self.caption.words


class Reviser:
    """A room's finals heard again in long windows: :class:`~spaces.models.Caption` events that settle them."""

    def __init__(self, model: WhisperModel, *, options: RevisionOptions | None = None) -> None:
        self.model = model
        self.options = options or RevisionOptions()
        self._finals: list[_Final] = []
        """Sorted by start."""
        self._said: list[str] = []
        """The words of the finals forgotten, the newest last (the prompt's start): at most PROMPT_CHARS."""
        self.passes = 0
        self.last = RevisionPass()
        """What the last pass heard and settled."""

    def add(self, final: Caption, heard: Heard) -> None:
        """A final caption and the audio it was made from (``heard.audio``: the utterance with its padding)."""
        if not final.words or not len(heard.audio):
            return
        self._finals.append(_Final(final, heard))
        self._finals.sort(key=lambda f: f.heard.start)
        self._forget()

    def _forget(self) -> None:
        """Drop the settled finals no pass hears again; their text stays, for the prompt.

        A pass hears the pending finals that fit in ``window`` and then the
        settled ones just before them, up to ``context`` seconds of them and
        what the window has room for: a settled final with that much after it
        is out of reach, and its audio (about 1 MB a minute) is freed. At most
        ``kept`` are held.
        """
        heard = context = 0.0
        out = 0
        """Finals before this index are out of reach."""
        for i in range(len(self._finals) - 1, -1, -1):
            f = self._finals[i]
            heard += f.heard.seconds
            if f.settled is None:
                continue
            context += f.heard.seconds
            if context > self.options.context or heard > self.options.window:
                out = i + 1
                break
        drop = 0
        while drop < len(self._finals) and self._finals[drop].settled is not None:
            if drop < out or len(self._finals) - drop > self.options.kept:
                drop += 1
            else:
                break
        for f in self._finals[:drop]:
            self._said += [w.text for w in f.words]
        self._said = tail_text(self._said, PROMPT_CHARS).split() if self._said else []
        del self._finals[:drop]

    @property
    def held(self) -> float:
        """Seconds of utterance audio held: the pending finals' and at most ``window`` of settled ones'."""
        return sum(f.heard.seconds for f in self._finals)

    @property
    def pending(self) -> list[_Final]:
        return [f for f in self._finals if f.settled is None]

    def due(self, now: float, *, talking: bool = False) -> bool:
        """Whether a pass should run at room time ``now``.

        ``talking``: someone is speaking now (an utterance not yet final). Then
        there is no pause, however long ago the last final ended: a turn of more
        than ``pause`` seconds would otherwise settle the one before it alone,
        hearing nothing after it.
        """
        pending = self.pending
        if not pending:
            return False
        if sum(f.heard.seconds for f in pending) >= self.options.every:
            return True
        return not talking and now - max(f.heard.end for f in self._finals) >= self.options.pause

    def revise(self) -> list[Caption]:
        """One pass over the pending finals (and what fits of the settled ones before them): their settled captions."""
        heard, settle = self._window()
        if not settle:
            return []
        self.passes += 1
        self.last = RevisionPass(sum(f.heard.seconds for f in heard))
        for f in settle:
            self.last.settled[f.heard.speaker] = self.last.settled.get(f.heard.speaker, 0.0) + f.heard.seconds
        try:
            words = self._hear(heard)
        except DecodeFailed as e:
            log.info("revision pass %d failed (%s): its finals stay", self.passes, e)
            words = []
        return [self._settle(f, words) for f in settle]

    def finish(self) -> list[Caption]:
        """The room ended: every pending final settled."""
        out: list[Caption] = []
        while self.pending:
            out += self.revise()
        return out

    def _window(self) -> tuple[list[_Final], list[_Final]]:
        """The finals a pass hears (oldest first) and those it settles.

        The oldest pending finals that fit in ``window``, then as many of the
        settled ones before them as still fit, up to ``context`` seconds of them
        (their audio is the context of the new ones, as the offline windows hear
        the words around each word).
        """
        limit = self.options.window
        finals = self._finals
        pending = [i for i, f in enumerate(finals) if f.settled is None]
        if not pending:
            return [], []
        first = pending[0]
        last = first
        size = finals[first].heard.seconds
        while last + 1 < len(finals) and size + finals[last + 1].heard.seconds <= limit:
            last += 1
            size += finals[last].heard.seconds
        context = 0.0
        while first > 0 and size + finals[first - 1].heard.seconds <= limit:
            context += finals[first - 1].heard.seconds
            if context > self.options.context:
                break
            first -= 1
            size += finals[first].heard.seconds
        heard = finals[first : last + 1]
        settle = heard if self.options.resettle else [f for f in heard if f.settled is None]
        return heard, settle

    def _hear(self, heard: Sequence[_Final]) -> list[tuple[_Final, Word]]:
        """The mix of ``heard`` transcribed, each word with the final (utterance) it belongs to."""
        start = heard[0].heard.start
        end = max(f.heard.end for f in heard)
        length = round((end - start) * SAMPLE_RATE) + 1
        mix = np.zeros(length, dtype=np.float32)
        speakers: dict[str, np.ndarray] = {}
        for f in heard:
            add_to_mix(mix, f.heard.audio, offset=f.heard.start - start)
            if f.heard.speaker not in speakers:
                speakers[f.heard.speaker] = np.zeros(length, dtype=np.float32)
            add_to_mix(speakers[f.heard.speaker], f.heard.audio, offset=f.heard.start - start)
        tracks = [RoomTrack(sp, levels(audio, offset=start)) for sp, audio in speakers.items()]
        before = self._said + [w.text for f in self._finals if f.heard.start < start for w in f.words]
        prompt = tail_text(before, PROMPT_CHARS) or None
        words = transcribe(
            self.model,
            mix,
            speaker="",
            offset=start,
            options=replace(self.options.whisper, initial_prompt=prompt),
            speech=[(f.heard.start, f.heard.end) for f in heard],
        )
        said = attribute(words, tracks) if len(tracks) > 1 else [replace(w, speaker=tracks[0].speaker) for w in words]
        return [(_owner(w, heard), w) for w in said]

    def _settle(self, final: _Final, words: Sequence[tuple[_Final, Word]]) -> Caption:
        mine = tuple(w for f, w in words if f is final)
        if not mine:
            # Whisper skipped the utterance in the mix (or heard it as another's): its final stays.
            log.info(
                "%s: utterance %d not heard again; its final stays", final.caption.speaker, final.caption.utterance
            )
            mine = final.caption.words
        final.settled = mine
        return replace(
            final.caption,
            text=join_words(w.text for w in mine),
            start=mine[0].start,
            end=mine[-1].end,
            words=mine,
            lines=on_screen(mine),
            settled=True,
        )


def _owner(word: Word, heard: Sequence[_Final]) -> _Final:
    """The utterance holding the word's middle: the attributed speaker's, else anyone's, else the nearest."""
    middle = (word.start + word.end) / 2

    def distance(f: _Final) -> float:
        return max(0.0, f.heard.start - middle, middle - f.heard.end)

    return min(heard, key=lambda f: (distance(f) > 0, f.heard.speaker != word.speaker, distance(f)))
