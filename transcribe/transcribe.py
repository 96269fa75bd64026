"""Words of one speaker's track, on the room clock.

The track goes through voice activity detection first, so silence costs
nothing; the speech spans are packed into windows of up to 30 s (Whisper's
encoder always sees 30 s, so a lone two-second answer costs as much as
thirty seconds of speech) and each window is one faster-whisper call. Only a
window's samples are ever copied, so memory does not grow with the track.

Each window's prompt is the track's text so far, as Whisper conditions on
previous text over long audio (without it the tiny model makes a fifth more
errors here). A prompt now and then throws Whisper's timestamps off, or
makes it skip seconds of speech (a window begun ten seconds in); such a
window is done again without one, and speech that both passes skip is
heard on its own (a short piece: a short encoder pass).

Guards against Whisper's hallucinations, on top of its own (no-speech
probability, compression ratio, temperature fallback):

- a word with no speech near it, according to the VAD, is dropped: Whisper
  loves to fill the padding around speech with "Thank you.";
- a word Whisper itself doubts (low probability) is dropped unless the VAD
  heard speech under most of it;
- repeated-phrase loops are cut (:mod:`transcribe.loops`).

Given the other tracks' levels, speech this track only hears as bleed from
another speaker's microphone is skipped before Whisper sees it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper import WhisperModel

from spaces.models import Word
from transcribe.audio import SAMPLE_RATE
from transcribe.exceptions import DecodeFailed
from transcribe.levels import Levels, levels
from transcribe.loops import MAX_CHARS_PER_SECOND, LoopRules, drop_loops
from transcribe.model import encoder_window, fails_thresholds, short_prompt_retry
from transcribe.samples import Samples
from transcribe.vad import (
    FRAME,
    VadOptions,
    speech_near,
    speech_onset,
    speech_probabilities,
    speech_share,
    speech_spans,
)

log = logging.getLogger(__name__)

_TAIL_SLACK = 0.3  # seconds the VAD may add to a span beyond its padding
_LONG_SPAN = 2.0  # seconds: a span this long always holds some words
_STRETCHED = 0.25  # seconds of silence at a word's start that Whisper stretched it back over
_WORD_END = 0.1  # seconds at a word's end where its sound surely is (a short "A" is 0.07 s long)
_GAP_CONTEXT = 0.5  # seconds of audio either side of a skipped stretch heard again

Span = tuple[int, int]
"""Samples ``[start, end)`` of a track."""


@dataclass(frozen=True)
class TranscribeOptions:
    """How a track is transcribed (faster-whisper's parameters, plus our guards)."""

    language: str = "en"
    beam_size: int = 5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    """Tried in turn while a window's text fails the thresholds below."""
    fallback: bool = True
    """Off: only the first temperature, and a text failing the thresholds raises :class:`DecodeFailed`.

    For a caller with a cheaper way to the words than decoding again and
    again (a live final that hears the room first hears its utterance
    alone instead).
    """
    second_looks: bool = True
    """A window the prompt threw off is decoded again without it, and speech it skipped heard again alone.

    Off: each window is decoded once (at each temperature it needs). Tried
    for the live revision pass and dropped (``bench.live_wer``'s ``once``
    revision: with a repetitive room in the prompt, a sentence heard twice).
    """
    fit_encoder: bool = False
    """Encode a window over the shortest multiple of 10 s holding it, not Whisper's 30 s (see :func:`_whisper`)."""
    initial_prompt: str | None = None
    """Text Whisper takes as what was said before (vocabulary, names, the space's title)."""
    condition_on_previous_text: bool = True
    """Each window's prompt ends with the track's text so far, as Whisper does over long audio.

    Windows are separate faster-whisper calls here, so without this each
    would start from nothing: on the bench that costs a fifth more errors.
    """
    prompt_chars: int = 200
    """How much of the text so far goes into the prompt."""
    vad: VadOptions = VadOptions()
    window: float = 30.0
    """Seconds of speech packed into one Whisper call (with ``keep_pauses``: of audio, pauses and all)."""
    keep_pauses: bool = False
    """Each call hears its audio as it is, from its first speech to its last, pauses and all,
    instead of its speech spans packed end to end.

    The room's mix (:mod:`transcribe.room`), as plain faster-whisper hears a
    file: packed, every pause longer than the VAD's second is squeezed to
    its padding, and a turn's first word, which Whisper stretches back over
    the pause before it, was clipped into the seam or lost (README, "room
    pass"). A track's windows stay packed: there most of the audio is the
    other speakers' turns, silence that would cost encoder passes.
    """
    short_prompt_retry: bool = False
    """A window heard wrong with a prompt (failing the thresholds, or a phrase twice) is decoded once
    more with a shorter one before the other temperatures (:func:`transcribe.model.short_prompt_retry`):
    the room pass's."""
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    word_slack: float = 0.3
    """A word with no VAD speech within this many seconds of it is dropped."""
    min_probability: float = 0.15
    """A word less probable than this is dropped unless speech fills most of it."""
    loops: LoopRules = LoopRules()
    max_new_tokens: int | None = None
    """Tokens one window may decode at most (None: Whisper's own limit, 448 with the prompt)."""
    bleed_margin_db: float = 12.0
    """With other tracks' levels: how much louder another track must be for speech to be its bleed."""
    bleed_share: float = 0.9
    """...during at least this share of a span's voiced frames, for the span to be skipped."""


ProgressCallback = Callable[[float], None]
PromptSource = Callable[[float], "str | None"]
"""Room time -> prompt text for the speech starting then (see :mod:`transcribe.context_pass`)."""


def transcribe(
    model: WhisperModel,
    audio: Samples,
    *,
    speaker: str,
    offset: float,
    options: TranscribeOptions = TranscribeOptions(),
    on_progress: ProgressCallback | None = None,
    prompt: PromptSource | None = None,
    others: Sequence[Levels] = (),
    speech: Sequence[tuple[float, float]] = (),
) -> list[Word]:
    """Transcribe one speaker's track into words on the room clock.

    Args:
        model: A ``faster_whisper.WhisperModel`` (see :func:`transcribe.model.load_model`).
        audio: The track, mono float32 at 16 kHz.
        speaker: Put on every word.
        offset: Room time of ``audio[0]``; every word time is ``offset`` plus
            its time in ``audio``.
        options: Whisper and guard parameters.
        on_progress: Called with the share of the track's speech done, 0 to 1.
        prompt: Gives the prompt for the speech starting at a room time, e.g.
            the room's preceding text; overrides ``options.initial_prompt``.
        others: Levels of the room's other tracks, if known. Speech this
            track only hears because another speaker is much louder on their
            own microphone (bleed) is then not transcribed at all, which saves
            its time; assembly removes whatever bleed gets through.
        speech: Room-time stretches known to hold speech (from the tracks'
            levels): a stretch the VAD hears nothing in is transcribed, and its
            words kept, all the same. Silero misses some voices (one on a
            telephone line).

    Returns:
        The words, sorted by start, stripped of Whisper's leading space.
    """
    probs = speech_probabilities(audio)
    spans = _with_known_speech(probs, len(audio), offset, speech, options.vad)
    if others:
        spans = [s for s in spans if not _is_bleed(audio, probs, s, offset, others, options)]
    total = sum(e - s for s, e in spans)
    done = 0
    words: list[Word] = []
    for group in pack(spans, options.window, extent=options.keep_pauses):
        context = prompt(offset + group[0][0] / SAMPLE_RATE) if prompt else options.initial_prompt
        if options.condition_on_previous_text and words and not prompt:
            context = _join_prompt(options.initial_prompt, words, options.prompt_chars)
        size = sum(e - s for s, e in group)
        heard = _progress(on_progress, done, size, total)
        for start, end, text, probability in _transcribe_group(model, audio, group, options, context, heard):
            if _plausible(probs, start, end, probability, options):
                start = _speech_start(probs, start, end, options.vad.low)
                words.append(Word(offset + start, offset + end, text, speaker, probability))
        done += size
        if on_progress is not None:
            on_progress(done / total)
    log.debug("%s: %d words in %.1f s of speech", speaker, len(words), total / SAMPLE_RATE)
    if on_progress is not None and not spans:
        on_progress(1.0)
    return drop_loops(words, options.loops)


def _progress(on_progress: ProgressCallback | None, done: int, size: int, total: int) -> Callable[[float], None] | None:
    """Progress inside a group, from the share of it Whisper has decoded (segment by segment).

    A run of the room's mix is one group of minutes: reported only when
    done, its progress would stand still for most of the job.
    """
    if on_progress is None:
        return None
    return lambda share: on_progress((done + share * size) / total)


def _with_known_speech(
    probs: np.ndarray, n_samples: int, offset: float, speech: Sequence[tuple[float, float]], vad: VadOptions
) -> list[Span]:
    """The VAD's spans, plus every known speech stretch they leave mostly uncovered.

    Silero misses some voices (one on a telephone line): in a room's mix, an
    answer of three words on the phone right after someone else's question
    can have a frame or two above the threshold and still form no span, and
    was lost before Whisper heard it. Such a stretch's frames count as speech;
    elsewhere the VAD's spans (and so Whisper's windows) stay as they were.

    To the word guards every known stretch is speech (``probs`` is changed in
    place): the VAD, late on a voice on the phone, dropped the first word of
    its turn ("The young doctor...", heard surely, 0.1 s before the VAD's
    speech) and a doubted "At" the mix kept (the answers bench space).
    """
    stretches = [
        (max(0, int((start - offset) * SAMPLE_RATE)), min(n_samples, int((end - offset) * SAMPLE_RATE)))
        for start, end in speech
    ]
    spans = speech_spans(probs, n_samples, vad)
    missed = False
    for lo, hi in stretches:
        covered = sum(max(0, min(hi, e) - max(lo, s)) for s, e in spans)
        if hi > lo and covered < 0.5 * (hi - lo):
            probs[lo // FRAME : hi // FRAME + 1] = 1.0
            missed = True
    if missed:
        spans = speech_spans(probs, n_samples, vad)
    for lo, hi in stretches:
        if hi > lo:
            probs[lo // FRAME : hi // FRAME + 1] = 1.0
    return spans


def transcribe_clip(
    model: WhisperModel,
    audio: Samples,
    *,
    start: float,
    end: float,
    speaker: str,
    offset: float,
    options: TranscribeOptions = TranscribeOptions(),
    prompt: str | None = None,
) -> list[Word]:
    """Transcribe ``audio`` between ``start`` and ``end`` (seconds in ``audio``) as one piece.

    No VAD split: the clip is one Whisper call (for re-transcribing one
    utterance with a prompt). The same word guards apply.
    """
    lo = max(0, int(start * SAMPLE_RATE))
    hi = min(len(audio), int(end * SAMPLE_RATE))
    if hi <= lo:
        return []
    probs = speech_probabilities(audio[lo:hi])
    words = [
        Word(offset + lo / SAMPLE_RATE + s, offset + lo / SAMPLE_RATE + e, text, speaker, p)
        for s, e, text, p in _transcribe_group(model, audio[lo:hi], [(0, hi - lo)], options, prompt)
        if _plausible(probs, s, e, p, options)
    ]
    return drop_loops(words, options.loops)


def _join_prompt(initial: str | None, words: Sequence[Word], chars: int) -> str:
    """The initial prompt, then the last ``chars`` characters (whole words) of ``words``."""
    recent: list[str] = []
    size = 0
    for w in reversed(words):
        if size + len(w.text) + 1 > chars:
            break
        recent.append(w.text)
        size += len(w.text) + 1
    return " ".join([*([initial] if initial else []), *reversed(recent)])


def pack(spans: Sequence[Span], window: float, *, extent: bool = False) -> Iterator[list[Span]]:
    """Consecutive spans grouped so each group holds at most ``window`` s of audio.

    ``extent``: of audio from the group's first span's start to its last's
    end, pauses included (a group heard as it is, ``keep_pauses``).
    """
    limit = window * SAMPLE_RATE
    group: list[Span] = []
    size = 0
    for span in spans:
        length = span[1] - (group[-1][1] if extent and group else span[0])
        if group and size + length > limit:
            yield group
            group, size = [], 0
            length = span[1] - span[0]
        group.append(span)
        size += length
    if group:
        yield group


def _transcribe_group(
    model: WhisperModel,
    audio: Samples,
    group: Sequence[Span],
    options: TranscribeOptions,
    prompt: str | None,
    heard: Callable[[float], None] | None = None,
) -> list[tuple[float, float, str, float]]:
    """Words of the spans in ``group``, packed into one Whisper call; times in ``audio``.

    ``heard`` is told the share of the window decoded so far, segment by segment.

    A prompt sometimes throws Whisper's timestamps off (every word of the
    window squeezed into its last seconds); such a window is done again
    without the prompt, and so is one that skipped seconds of speech.
    Seconds of speech left without a word even so are heard on their own.
    """
    packed, starts = _heard_audio(audio, group, options.keep_pauses)
    segments = _whisper(model, packed, options, prompt, short=options.fit_encoder, heard=heard)
    if not options.second_looks:
        return _placed(_words(segments), group, starts, keep_pauses=options.keep_pauses)
    if prompt and (_fast(segments) or _gaps(segments, starts, group)):
        # The prompt threw the window off (timestamps squeezed, or seconds
        # of it skipped): done again without it. Hearing only the skipped
        # stretches again is cheaper, but lost whole sentences: on the
        # seven-speaker test space begun 0.5 s later, 0.308 WER against 0.167.
        log.info("timestamps implausible with a prompt; window done again without it")
        again = _whisper(model, packed, options, None, short=options.fit_encoder)
        if not _fast(again) or _skipped(again, starts, group) <= _skipped(segments, starts, group):
            segments = again
    said = _words(segments)
    for lo, hi in _gaps(segments, starts, group):
        # Speech Whisper skipped in the window even so (a short answer on the
        # phone after a long turn): that stretch is heard again, with the
        # window's words before it as the prompt (none at the window's start:
        # a prompt is what made Whisper skip it), over a short encoder pass.
        before = " ".join(t for ws, _, t, _ in said if ws < lo)[-options.prompt_chars :] or None
        log.info("%.1f-%.1f s of the window skipped; heard again on its own", lo, hi)
        # With half a second either side, so that the words at its edges are
        # heard whole; only those whose middle is inside the stretch are new.
        a = max(0.0, lo - _GAP_CONTEXT)
        piece = packed[round(a * SAMPLE_RATE) : round((hi + _GAP_CONTEXT) * SAMPLE_RATE)]
        said += [
            (a + w.start, a + w.end, w.word.strip(), float(w.probability))
            for segment in _whisper(model, piece, options, before, short=True)
            for w in segment.words or ()
            if lo <= a + (w.start + w.end) / 2 <= hi
        ]
    return _placed(said, group, starts, keep_pauses=options.keep_pauses)


def _words(segments: Sequence[Any]) -> list[tuple[float, float, str, float]]:
    """(start, end, text, probability) of every word of ``segments``, in heard-audio seconds."""
    return [(w.start, w.end, w.word.strip(), float(w.probability)) for s in segments for w in s.words or ()]


def _placed(
    said: Sequence[tuple[float, float, str, float]], group: Sequence[Span], starts: np.ndarray, *, keep_pauses: bool
) -> list[tuple[float, float, str, float]]:
    """Words in heard-audio seconds (:func:`_heard_audio`) as words in the track, sorted; empty ones dropped.

    Sorted by start alone: words Whisper put at one instant stay in the
    order it heard them, not in the alphabet's (which hid a sentence heard
    twice from the loop guard).
    """
    said = sorted(said, key=lambda word: word[0])
    if keep_pauses:
        # Heard as it is: a word in a pause keeps its time (the pause is audio the call heard).
        base = group[0][0] / SAMPLE_RATE
        return [(base + start, base + end, text, p) for start, end, text, p in said if text]
    return [(*_unpack(start, end, group, starts), text, p) for start, end, text, p in said if text]


def _heard_audio(audio: Samples, group: Sequence[Span], keep_pauses: bool) -> tuple[np.ndarray, np.ndarray]:
    """The audio one call hears, and where each span of ``group`` starts in it (seconds).

    Packed: the spans end to end. ``keep_pauses``: the audio as it is from
    the first span's start to the last's end.
    """
    if keep_pauses:
        base = group[0][0]
        heard = audio[base : group[-1][1]]
        starts = np.array([s - base for s, _ in group]) / SAMPLE_RATE
    else:
        heard = np.concatenate([audio[s:e] for s, e in group]) if len(group) > 1 else audio[group[0][0] : group[0][1]]
        starts = np.cumsum([0] + [e - s for s, e in group[:-1]]) / SAMPLE_RATE
    return np.ascontiguousarray(heard, dtype=np.float32), starts


def _whisper(
    model: WhisperModel,
    packed: np.ndarray,
    options: TranscribeOptions,
    prompt: str | None,
    *,
    short: bool = False,
    heard: Callable[[float], None] | None = None,
) -> list[Any]:
    """faster-whisper's segments (with words) for one packed window.

    ``short``: the window is encoded over the shortest multiple of 10 s
    holding it (:func:`transcribe.model.encoder_window`), a third of a full
    pass for a piece of three seconds. Only for a skipped stretch heard
    again: on an overlap's clip it cost words with base (the paired-shift
    bench on the one-minute space: 0.182 against the mix's 0.134, and 0.146
    against 0.137 with the full window), and a window of the room's
    speech is nearly always 30 s anyway.
    """
    # Past the last speech there is only the span's padding. Whisper would
    # still run its encoder once more over that tail (when its last segment
    # is not closed by a timestamp): stopping here saves a whole window,
    # which for a short utterance is half the cost.
    seconds = len(packed) / SAMPLE_RATE
    tail = seconds - options.vad.speech_pad_ms / 1000 - _TAIL_SLACK
    out = []
    with (
        encoder_window(model, seconds) if short else contextlib.nullcontext(),
        short_prompt_retry(model) if options.short_prompt_retry else contextlib.nullcontext(),
    ):
        segments = model.transcribe(
            packed,
            language=options.language,
            beam_size=options.beam_size,
            temperature=list(options.temperatures if options.fallback else options.temperatures[:1]),
            compression_ratio_threshold=options.compression_ratio_threshold,
            log_prob_threshold=options.log_prob_threshold,
            no_speech_threshold=options.no_speech_threshold,
            initial_prompt=prompt or None,
            max_new_tokens=options.max_new_tokens,
            word_timestamps=True,
            vad_filter=False,
        )[0]
        for segment in segments:  # a generator: decoded inside the window
            if not options.fallback and fails_thresholds(
                segment.avg_logprob, segment.compression_ratio, segment.no_speech_prob, options
            ):
                raise DecodeFailed(
                    f"decode failed at temperature {segment.temperature}: compression ratio"
                    f" {segment.compression_ratio:.2f}, log-prob {segment.avg_logprob:.2f}"
                )
            out.append(segment)
            if heard is not None:
                heard(min(1.0, segment.end / seconds))
            if segment.end >= tail:
                break
    return out


def _fast(segments: Sequence[Any]) -> bool:
    """Whether a segment's text is spoken impossibly fast (its timestamps went wrong)."""
    return any(len(s.text.strip()) > MAX_CHARS_PER_SECOND * max(s.end - s.start, 0.5) for s in segments)


def _skipped(segments: Sequence[Any], starts: np.ndarray, group: Sequence[Span]) -> float:
    return sum(hi - lo for lo, hi in _gaps(segments, starts, group))


def _gaps(segments: Sequence[Any], starts: np.ndarray, group: Sequence[Span]) -> list[tuple[float, float]]:
    """Stretches of the spans (packed-audio seconds) at least ``_LONG_SPAN`` long without a word.

    A span holds no pause longer than the VAD's minimum silence (plus its
    padding), so seconds of it without a word are words Whisper skipped: with
    a prompt it sometimes starts a window's first segment ten seconds in, and
    a short answer after a long turn can vanish between two segments.
    """
    said = sorted((w.start, w.end) for segment in segments for w in segment.words or ())
    gaps: list[tuple[float, float]] = []
    for at, (s, e) in zip(starts.tolist(), group, strict=True):
        end = at + (e - s) / SAMPLE_RATE
        heard = at
        for ws, we in said:
            if we <= at or ws >= end:
                continue
            if ws - heard >= _LONG_SPAN:
                gaps.append((heard, ws))
            heard = max(heard, we)
        if end - heard >= _LONG_SPAN:
            gaps.append((heard, end))
    return gaps


def _unpack(start: float, end: float, group: Sequence[Span], starts: np.ndarray) -> tuple[float, float]:
    """A word's packed-audio times as times in the track.

    The word belongs to the span holding its middle; a word Whisper stretched
    over the seam between two spans is clipped to its own span.
    """
    middle = (start + end) / 2
    i = max(0, int(np.searchsorted(starts, middle, side="right")) - 1)
    span_start = group[i][0] / SAMPLE_RATE
    span_end = group[i][1] / SAMPLE_RATE
    first = min(max(span_start + start - starts[i], span_start), span_end)
    last = min(max(span_start + end - starts[i], first), span_end)
    return float(first), float(last)


def _is_bleed(
    audio: Samples,
    probs: np.ndarray,
    span: Span,
    offset: float,
    others: Sequence[Levels],
    options: TranscribeOptions,
) -> bool:
    """Whether another track is much louder during nearly all of the span's speech."""
    own = levels(audio[span[0] : span[1]], offset=offset + span[0] / SAMPLE_RATE)
    times = own.start + own.hop * (np.arange(len(own.db)) + 0.5)
    frame = ((times - offset) * SAMPLE_RATE).astype(np.int64) // FRAME
    voiced = probs[np.minimum(frame, len(probs) - 1)] >= options.vad.threshold
    if not voiced.any():
        return False
    loudest = np.max([other.at(times[voiced]) for other in others], axis=0)
    dominated = loudest - own.db[voiced] >= options.bleed_margin_db
    return float(dominated.mean()) >= options.bleed_share


def _speech_start(probs: np.ndarray, start: float, end: float, low: float) -> float:
    """A word's start, moved to the first speech under it where Whisper stretched it back over silence.

    Heard from before a turn, Whisper starts the turn's first word where the
    silence starts ("A" said at 0.80 s heard from 0.00 s, where the audio
    starts; "Our" at 119.95 s of a turn begun at 120.3 s). A start less
    than ``_STRETCHED`` before the VAD's speech is left alone: the VAD hears
    a soft onset late.
    """
    onset = speech_onset(probs, start, end, low)
    return onset if onset is not None and onset - start >= _STRETCHED else start


def _plausible(probs: np.ndarray, start: float, end: float, probability: float, options: TranscribeOptions) -> bool:
    if speech_near(probs, start, end, slack=options.word_slack) < options.vad.low:
        return False
    if probability < options.min_probability:
        # Under its end: Whisper stretches a turn's first word back over the
        # pause before it (and doubts it), and the pause is no speech.
        return speech_share(probs, max(start, end - _WORD_END), end, options.vad.threshold) >= 0.5
    return True
