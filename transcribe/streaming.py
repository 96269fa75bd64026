"""Live transcription of one speaker: tentative text while they talk, final text when they stop.

The shape is whisper_streaming's ``OnlineASRProcessor``: a small stateful
object fed audio chunks (:meth:`StreamingTranscriber.insert_audio_chunk`)
and asked for output (:meth:`~StreamingTranscriber.process_iter`,
:meth:`~StreamingTranscriber.finish`). No network, no threads: the room
agent owns the clock and decides when to call it.

- Voice activity cuts utterances: silero's probability per 32 ms frame
  (frames below the loudness gate cost nothing, so a silent speaker costs
  nothing), an utterance ends after ``end_silence`` of silence or at
  ``max_utterance``.
- While an utterance grows it is transcribed again every ``interval``
  seconds of new audio, once the speaker's passes (final ones too) are
  back under ``max_load`` of a core over the time they talked, in CPU time. :class:`HypothesisBuffer` commits
  the words two successive passes agree on (local agreement), so interim
  text only ever grows at its committed front and wobbles only in its
  tentative tail. Past ``window`` seconds a pass starts after the last
  committed sentence end (whisper_streaming's buffer trimming).
- When the utterance ends, one last pass over all of it, decoded as the
  offline pipeline decodes (with ``final_model`` if given: a slower, more
  accurate model than the interim passes'), gives the final words; they replace the
  interim text. With ``final_context`` it hears the room's latest
  finalized speech first, the text before that as its prompt, and keeps
  only the utterance's words (:mod:`transcribe.room_context`: a lone short
  utterance is where Whisper guesses); that pass decodes at one temperature,
  and if its text fails Whisper's thresholds the utterance is heard alone
  instead. Word times are on the room clock. That pass starts at the
  first ``closing_pad`` of silence, while the VAD still waits to be sure
  the speech ended: when it is, the final goes out at once.

faster-whisper pads what the encoder hears to 30 s, so a pass over one
second of speech would cost what one over twenty does; passes here encode
a 10 s (or 20 s) window instead (:func:`transcribe.model.encoder_window`),
a third of the cost at the same accuracy.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from faster_whisper import WhisperModel

from spaces.captions import on_screen
from spaces.models import Caption, Word, join_words
from transcribe.agreement import HypothesisBuffer
from transcribe.audio import SAMPLE_RATE
from transcribe.exceptions import DecodeFailed
from transcribe.model import ENCODER_MARGIN, encoder_seconds, encoder_window
from transcribe.pass_meter import PassMeter, process_meter
from transcribe.room_context import Heard, RoomContext
from transcribe.transcribe import TranscribeOptions, transcribe_clip
from transcribe.vad import FRAME, speech_probabilities

log = logging.getLogger(__name__)

#: Tokens a pass may decode: a few, and more than anyone says per second (a
#: fast talker's 4 words, with punctuation and timestamps). Whisper lost on a
#: clip much shorter than its window, prompt and all, otherwise decodes up to
#: 448 tokens of loops at each temperature: seconds of CPU for one second of speech.
_TOKENS = 16
_TOKENS_PER_SECOND = 10
_WARMUP_FRAMES = 16  # audio scored again before new frames, so silero's state settles (0.5 s)
_FRAME_SECONDS = FRAME / SAMPLE_RATE


@dataclass(frozen=True)
class StreamingOptions:
    """When to transcribe, and when an utterance is over."""

    interval: float = 0.4
    """Seconds of new speech between two passes over the growing utterance."""
    max_load: float = 0.35
    """Share of one core a speaker's passes may take over the time they talk (in utterances, not silence).

    Interim and final passes alike, and the passes made elsewhere for the
    speaker's speech (:meth:`StreamingTranscriber.charge`: the room agent's
    revision pass). A final pass is never held back; the interim passes get
    what the others leave of it (their CPU so far over the speaker's
    utterances so far): with 0.1 core left to them, an interim
    pass that took 0.2 s of CPU holds the next back until 2 s more of the
    speaker's utterances came. So interim passes come evenly through an
    utterance, rather than none until the last final's cost is paid and
    then every ``interval``: that held the first seconds of each utterance
    back. Below the issue's half core per speaker: the agent's share of
    receiving the room comes on top (at 0.4 a speaker read 0.54 core while
    talking, at 0.35 at most 0.44: README, "Quiet, and max_load 0.35").
    """
    window: float = 8.0
    """Seconds an interim pass hears at most: past that it starts after the last committed sentence end."""
    end_silence: float = 0.5
    """Silence after speech that ends an utterance (and makes its text final)."""
    max_utterance: float = 20.0
    """Longer speech is made final here and goes on as a new utterance."""
    min_speech: float = 0.2
    """Shorter bursts (a click, a cough) make no caption."""
    pad: float = 0.4
    """Audio kept before an utterance's first speech frame and after its last."""
    closing_pad: float = 0.2
    """Silence after speech at which the final pass starts, ahead of the utterance's end.

    If the speaker goes on it was a pause and the pass is dropped; if the
    silence lasts ``end_silence`` its words are the final, with no pass to
    wait for then. At or above ``end_silence``: no early pass.
    """
    threshold: float = 0.5
    """Silero probability at or above which a frame is speech."""
    agreement_slack: float = 0.1
    """Seconds a word may start before the last committed word ends and still be new."""
    whisper: TranscribeOptions = field(
        default_factory=lambda: TranscribeOptions(
            beam_size=1, temperatures=(0.0, 0.4), condition_on_previous_text=False
        )
    )
    """Interim passes decode greedily: tentative text trades a little accuracy for twice the pace."""
    final_whisper: TranscribeOptions = field(default_factory=TranscribeOptions)
    """The final pass decodes as the offline pipeline does (beam search): it is the text that stays."""
    final_context: float = 0.0
    """Seconds of the room's latest finalized speech the final pass hears before its utterance (0: none).

    Needs a :class:`~transcribe.room_context.RoomContext`. The newest finals
    first, the oldest cut at a word's start; the text said before them is the
    prompt, and only the words of the utterance itself are kept. No more than
    fits in the encoder window the utterance needs anyway (10 s for one of up
    to 9 s): the context costs decoding, never a longer encoder pass.
    """

    def in_language(self, language: str) -> StreamingOptions:
        """The same options for speech in ``language`` (a Whisper code)."""
        return replace(
            self,
            whisper=replace(self.whisper, language=language),
            final_whisper=replace(self.final_whisper, language=language),
        )


@dataclass
class _Utterance:
    start: int
    """Sample index (in the stream) of the utterance's first kept sample."""
    last_speech: int
    """Sample index just past its last speech frame."""
    speech_frames: int = 0
    passes: HypothesisBuffer = field(default_factory=HypothesisBuffer)
    transcribed_to: int = 0
    """Stream sample index the last pass ended at."""
    shown: str = ""
    closing: tuple[int, list[Word]] | None = None
    """(``last_speech`` it heard to, words) of the final pass run in the silence after speech."""


PromptSource = Callable[[], "str | None"]
"""The room's recent final text (cross-speaker context), asked for before each pass."""
FinalSink = Callable[[Caption, Heard], None]
"""Told of every final caption and the utterance's audio (room time of its first sample, padding and all)."""


@dataclass
class PassCost:
    """Passes of one kind and their CPU seconds (as :class:`~transcribe.pass_meter.PassMeter` charges them)."""

    passes: int = 0
    cpu: float = 0.0

    def add(self, cpu: float) -> None:
        self.passes += 1
        self.cpu += cpu

    def __str__(self) -> str:
        return f"{self.passes} passes, {self.cpu:.1f} CPU-s"


class StreamingTranscriber:
    """One speaker's live captions: feed audio, collect :class:`~spaces.models.Caption` events."""

    def __init__(
        self,
        model: WhisperModel,
        *,
        speaker: str,
        final_model: WhisperModel | None = None,
        options: StreamingOptions | None = None,
        prompt: PromptSource | None = None,
        room: RoomContext | None = None,
        clock: Callable[[], float] = time.perf_counter,
        meter: PassMeter | None = None,
        on_final: FinalSink | None = None,
    ) -> None:
        self.model = model
        self.final_model = model if final_model is None else final_model
        """The final pass's model: its text stays, so it may be worth a slower pass than the interim ones'."""
        self.speaker = speaker
        self.options = options or StreamingOptions()
        self.room = room
        """The room's recent finals: the prompt (unless ``prompt`` is given) and the final pass's context."""
        self.prompt = prompt if prompt is not None or room is None else room.prompt
        self._clock = clock
        self.on_final = on_final
        """Given every final and the audio it was made from (a :class:`~transcribe.revision.Reviser` hears it again)."""
        self._meter = meter if meter is not None else process_meter()
        """A pass's cost for ``max_load``: its thread's CPU and its share of the model's threads' CPU.

        Not the calling thread's CPU alone: the model computes on threads of its
        own, and that saw a few per cent of a pass. Not wall time: on a loaded machine that
        says more about the others. Not the process's CPU time either: it counted
        every other speaker's passes and the agent's WebRTC receive path against
        this speaker, whose interims then never came (the live page test, with
        the SFU in the same process, got none)."""
        self._origin: float | None = None
        """Room time of stream sample 0."""
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_start = 0
        """Stream sample index of ``_audio[0]``: only the open utterance and a little before are kept."""
        self._scored = 0
        """Stream frames scored by the VAD so far."""
        self._utterance: _Utterance | None = None
        self._closed_at = 0
        """Stream sample index where the last utterance was cut: the next one's padding starts no earlier."""
        self._debt = 0.0
        """CPU seconds interim passes took beyond their share of the utterances' time: they wait until it is 0."""
        self.interims = PassCost()
        self.finals = PassCost()
        self._charged = 0.0
        """CPU seconds of passes made elsewhere for this speaker's speech (:meth:`charge`)."""
        self._talked = 0.0
        """Seconds of the speaker's utterances so far."""
        self._utterances = 0
        self._seqs = itertools.count(1)
        """Event numbers; ``next`` on it is atomic, so :meth:`next_seq` may be called from another thread."""
        self.busy_seconds = 0.0
        """Seconds spent in Whisper passes (the agent reports it as CPU)."""

    # --- feeding ----------------------------------------------------------------------

    @property
    def end_time(self) -> float | None:
        """Room time just past the last sample fed."""
        if self._origin is None:
            return None
        return self._origin + self._stream_len / SAMPLE_RATE

    @property
    def talking(self) -> bool:
        """Whether an utterance is open (speech heard, not yet final)."""
        return self._utterance is not None

    @property
    def _stream_len(self) -> int:
        return self._audio_start + len(self._audio)

    def insert_audio_chunk(self, samples: np.ndarray, at: float) -> None:
        """Append mono float32 16 kHz audio whose first sample is at room time ``at``.

        A chunk later than the stream's end (packets lost, a muted
        microphone) is preceded by silence, so every sample stays on the
        room clock; an earlier one is taken as contiguous.
        """
        if self._origin is None:
            self._origin = at
        gap = int(round((at - self._origin) * SAMPLE_RATE)) - self._stream_len
        if gap > FRAME:
            samples = np.concatenate([np.zeros(gap, dtype=np.float32), samples])
        self._audio = np.concatenate([self._audio, np.asarray(samples, dtype=np.float32)])

    # --- output -----------------------------------------------------------------------

    def process_iter(self) -> list[Caption]:
        """Score the new audio, cut utterances, run a pass when one is due: the events that gives."""
        events: list[Caption] = []
        for index, p in self._score_new_frames():
            events.extend(self._step(index, p))
        utt = self._utterance
        if utt is not None and self._closing_due(utt):
            self._closing(utt)
        elif utt is not None and self._pass_due(utt):
            event = self._interim(utt)
            if event is not None:
                events.append(event)
        self._forget_old_audio()
        return events

    def finish(self) -> list[Caption]:
        """The speaker left or the room ended: the open utterance's final text, if any."""
        events = self.process_iter()
        if self._utterance is not None:
            final = self._final(self._utterance, self._stream_len)
            self._utterance = None
            if final is not None:
                events.append(final)
        return events

    # --- voice activity ---------------------------------------------------------------

    def _score_new_frames(self) -> list[tuple[int, float]]:
        complete = self._stream_len // FRAME
        if complete <= self._scored:
            return []
        warm = min(_WARMUP_FRAMES, self._scored, (self._scored * FRAME - self._audio_start) // FRAME)
        lo = (self._scored - warm) * FRAME - self._audio_start
        hi = complete * FRAME - self._audio_start
        probs = speech_probabilities(self._audio[lo:hi])[warm:]
        first = self._scored
        self._scored = complete
        return [(first + i, float(p)) for i, p in enumerate(probs.tolist())]

    def _step(self, frame: int, p: float) -> list[Caption]:
        o = self.options
        pos = frame * FRAME
        utt = self._utterance
        if utt is not None or p >= o.threshold:  # paid off while the speaker talks
            self._talked += _FRAME_SECONDS
            self._debt = max(0.0, self._debt - self._interim_load * _FRAME_SECONDS)
        if p >= o.threshold:
            if utt is None:
                start = max(self._audio_start, self._closed_at, pos - int(o.pad * SAMPLE_RATE))
                utt = self._utterance = _Utterance(start=start, last_speech=pos + FRAME)
                utt.passes.slack = o.agreement_slack
            utt.last_speech = pos + FRAME
            utt.speech_frames += 1
            if (pos + FRAME - utt.start) / SAMPLE_RATE >= o.max_utterance:
                return self._close(pos + FRAME)
            return []
        if utt is not None and (pos + FRAME - utt.last_speech) / SAMPLE_RATE >= o.end_silence:
            return self._close(utt.last_speech + int(o.pad * SAMPLE_RATE))
        return []

    def _close(self, end: int) -> list[Caption]:
        utt = self._utterance
        assert utt is not None
        self._utterance = None
        self._closed_at = min(end, self._stream_len)
        final = self._final(utt, self._closed_at)
        return [final] if final is not None else []

    # --- passes -----------------------------------------------------------------------

    @property
    def _interim_load(self) -> float:
        """The share of a core the interim passes may take while the speaker talks: what the other passes leave.

        The finals, and what was charged for the speaker's speech elsewhere
        (the revision pass's share): ``max_load`` bounds every pass made for it.
        """
        other = self.finals.cpu + self._charged
        return max(0.0, self.options.max_load - (other / self._talked if self._talked else 0.0))

    @property
    def charged(self) -> float:
        """CPU seconds charged for the speaker's speech by passes made elsewhere."""
        return self._charged

    def charge(self, cpu: float) -> None:
        """CPU seconds a pass made elsewhere for the speaker's speech took: paid from ``max_load`` like a final.

        From another thread (the agent's revision thread): one writer, and the
        speaker's thread only reads it.
        """
        self._charged += cpu

    def _pass_due(self, utt: _Utterance) -> bool:
        o = self.options
        if utt.speech_frames * _FRAME_SECONDS < o.min_speech:
            return False
        return self._debt <= 0 and (self._stream_len - utt.transcribed_to) / SAMPLE_RATE >= o.interval

    def _closing_due(self, utt: _Utterance) -> bool:
        o = self.options
        if utt.speech_frames * _FRAME_SECONDS < o.min_speech or o.closing_pad >= o.end_silence:
            return False
        if utt.closing is not None and utt.closing[0] == utt.last_speech:
            return False
        # Not held back by ``max_load``: when the speech did end this pass is the final's, due anyway;
        # a pause costs one pass (and the interim passes after it wait their turn as after any).
        return self._stream_len - utt.last_speech >= int(o.closing_pad * SAMPLE_RATE)

    def _closing(self, utt: _Utterance) -> None:
        """The final pass, run as soon as the speech may have ended: the final needs no pass of its own then."""
        end = utt.last_speech + int(self.options.closing_pad * SAMPLE_RATE)
        utt.closing = (utt.last_speech, self._final_words(utt.start, end))
        utt.transcribed_to = max(utt.transcribed_to, end)

    def _interim(self, utt: _Utterance) -> Caption | None:
        start, context = self._interim_start(utt)
        words = self._transcribe(start, self._stream_len, self.options.whisper, context=context)
        utt.transcribed_to = self._stream_len
        utt.passes.insert(words)
        shown = [*utt.passes.committed, *utt.passes.tentative]
        text = join_words(w.text for w in shown)
        if not text or text == utt.shown:
            return None
        utt.shown = text
        return self._event(shown, final=False)

    def _interim_start(self, utt: _Utterance) -> tuple[int, str]:
        """Where an interim pass starts, and the utterance's committed text before it (as a prompt).

        whisper_streaming's buffer trimming: once the utterance is longer
        than ``window``, a pass starts after the last committed word that
        ends a sentence, or failing one, the last committed word at least
        half a window back; the committed words stay. A pass's cost grows
        with what it hears, so a long utterance's passes cost no more than
        a short one's.
        """
        limit = self._stream_len - int(self.options.window * SAMPLE_RATE)
        committed = utt.passes.committed
        if utt.start >= limit or not committed:
            return utt.start, ""
        half = self._stream_len - int(self.options.window * SAMPLE_RATE / 2)
        ends = [(i, self._sample_at(w.end)) for i, w in enumerate(committed)]
        cut = next((c for c in reversed(ends) if committed[c[0]].text.endswith((".", "?", "!")) and c[1] <= half), None)
        if cut is None:
            cut = next((c for c in reversed(ends) if c[1] <= half), None)
        if cut is None:
            return utt.start, ""
        return max(utt.start, cut[1]), join_words(w.text for w in committed[: cut[0] + 1])

    def _sample_at(self, t: float) -> int:
        assert self._origin is not None
        return int(round((t - self._origin) * SAMPLE_RATE))

    def _final(self, utt: _Utterance, end: int) -> Caption | None:
        if utt.speech_frames * _FRAME_SECONDS < self.options.min_speech:
            return None
        # The final pass hears the whole utterance at once and decodes as well
        # as the pipeline does; it replaces the interim text, committed or not.
        if utt.closing is not None and utt.closing[0] == utt.last_speech:
            words = utt.closing[1]  # run in the silence, and nothing was said since
        else:
            words = self._final_words(utt.start, end)
        event = self._event(words, final=True) if words else None
        self._utterances += 1
        if event is not None and (self.room is not None or self.on_final is not None):
            # The audio only if someone hears it again: a room's finals are otherwise its prompt alone.
            lo, hi = utt.start - self._audio_start, end - self._audio_start
            keep = self.options.final_context > 0 or self.on_final is not None
            audio = self._audio[lo:hi].copy() if keep else np.zeros(0, dtype=np.float32)
            heard = Heard(self.speaker, self._time_of(utt.start), audio, tuple(words))
            if self.room is not None:
                self.room.add(heard)
            if self.on_final is not None:
                self.on_final(event, heard)
        return event

    def _final_words(self, start: int, end: int) -> list[Word]:
        """The final pass over stream samples ``[start, end)``, with the room's latest finals heard before it."""
        o = self.options
        if self.room is None or o.final_context <= 0:
            return self._transcribe(start, end, o.final_whisper, final=True)
        at = self._time_of(start)
        # Only what fits in the window the utterance is encoded in anyway: the encoder costs no more.
        seconds = (end - start) / SAMPLE_RATE
        room = min(o.final_context, encoder_seconds(seconds) - ENCODER_MARGIN - seconds)
        context = self.room.before(at, room)
        if not context.audio:
            return self._transcribe(start, end, o.final_whisper, final=True)
        lead = np.concatenate([h.audio for h in context.audio])
        audio = np.concatenate([lead, self._audio[start - self._audio_start : end - self._audio_start]])
        # A decode that fails Whisper's thresholds here is not decoded again at five more temperatures
        # (seconds of CPU over the room and the utterance): the utterance heard alone costs less.
        try:
            words = self._pass(
                audio,
                at - len(lead) / SAMPLE_RATE,
                replace(o.final_whisper, fallback=False),
                context.prompt,
                final=True,
            )
        except DecodeFailed as e:
            log.info("%s: the final with the room is heard alone (%s)", self.speaker, e)
            return self._transcribe(start, end, o.final_whisper, final=True)
        # The context's own words are heard again, not said again: only the utterance's stay.
        mine = [w for w in words if (w.start + w.end) / 2 >= at]
        return mine or self._transcribe(start, end, o.final_whisper, final=True)

    def _time_of(self, sample: int) -> float:
        assert self._origin is not None
        return self._origin + sample / SAMPLE_RATE

    def _transcribe(
        self, start: int, end: int, options: TranscribeOptions, *, context: str = "", final: bool = False
    ) -> list[Word]:
        lo, hi = start - self._audio_start, end - self._audio_start
        room = self.prompt() if self.prompt is not None else None
        prompt = " ".join(p for p in (room, context) if p) or None
        return self._pass(self._audio[lo:hi], self._time_of(start), options, prompt, final=final)

    def _pass(
        self, audio: np.ndarray, offset: float, options: TranscribeOptions, prompt: str | None, *, final: bool
    ) -> list[Word]:
        """One Whisper pass over ``audio`` (whose first sample is at room time ``offset``), timed for ``max_load``."""
        seconds = len(audio) / SAMPLE_RATE
        # At most 200: with the longest prompt faster-whisper keeps (223 tokens) within Whisper's 448.
        options = replace(options, max_new_tokens=min(200, _TOKENS + int(_TOKENS_PER_SECOND * seconds)))
        model = self.final_model if final else self.model
        began, ticket = self._clock(), self._meter.begin()
        try:
            with encoder_window(model, seconds):
                words = transcribe_clip(
                    model,
                    audio,
                    start=0.0,
                    end=seconds,
                    speaker=self.speaker,
                    offset=offset,
                    options=options,
                    prompt=prompt,
                )
        finally:
            cost = self._meter.end(ticket)
            (self.finals if final else self.interims).add(cost)
            if not final:
                self._debt += cost
            self.busy_seconds += self._clock() - began
        return words

    def next_seq(self) -> int:
        """A ``seq`` above every event's so far: for an event made elsewhere (a settled caption)."""
        return next(self._seqs)

    def _event(self, words: Sequence[Word], *, final: bool) -> Caption:
        return Caption(
            speaker=self.speaker,
            text=join_words(w.text for w in words),
            start=words[0].start,
            end=words[-1].end,
            final=final,
            seq=self.next_seq(),
            utterance=self._utterances,
            words=tuple(words),
            lines=on_screen(words),
        )

    # --- memory -----------------------------------------------------------------------

    def _forget_old_audio(self) -> None:
        """Keep the open utterance and the VAD's warm-up; memory stays flat over hours."""
        keep_from = self._utterance.start if self._utterance is not None else self._stream_len
        warmup = (self._scored - _WARMUP_FRAMES) * FRAME
        keep_from = min(keep_from, warmup, self._stream_len - int(self.options.pad * SAMPLE_RATE))
        drop = keep_from - self._audio_start
        if drop > SAMPLE_RATE:  # copy in chunks of at least a second, not every call
            self._audio = self._audio[drop:].copy()
            self._audio_start = keep_from
