"""Context across speakers: the room's preceding text as Whisper's prompt.

Transcribed alone, a speaker's utterance has no context: a short answer
between long silences ("ten of clubs") comes out "ten on clubs", and a hard
voice drifts. In the mixed audio Whisper would have heard the question
first. Each track is transcribed on its own (in parallel jobs), so the
room's text only exists once every track has had its first pass; a second
pass then redoes the utterances Whisper was unsure of, each with what the
room said just before it as the prompt.

The second pass needs only those utterances' audio: the first pass keeps it
(:func:`context_clips`, serialized with :func:`clips_to_bytes`), so the pass
runs in the assemble job without decoding any track again::

    # transcribe_track job, per track
    words = transcribe(model, audio, speaker=s, offset=start)
    clips = context_clips(audio, words, offset=start)        # store beside the words
    # assemble job, once
    tracks = refine_room(model, first_pass_tracks, clips_per_track)
    turns = assemble(tracks)

The redone words replace the first pass only when Whisper is at least as
sure of them and they keep every word the first pass was sure of
(:func:`accept_redo`), and only inside the first pass's utterances: with tiny.en a
prompt fixes some readings ("six layers" -> "six players") and spoils
others, typically by going on past the speech ("... thank you very much").
Only short utterances after a pause are redone: longer ones carry their own
context, and redoing every unsure utterance cost a quarter of the pipeline's
time on the bench for no fewer errors. With tiny.en the pass is about even
on the bench's short answers (a larger model follows a prompt better);
``ContextRules(max_confidence=0)`` turns it off.
"""

from __future__ import annotations

import bisect
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from faster_whisper import WhisperModel

from spaces.models import Word, join_words
from transcribe.assemble import AssembleOptions, TrackWords, assemble, clean_tracks
from transcribe.audio import SAMPLE_RATE
from transcribe.samples import Samples
from transcribe.transcribe import TranscribeOptions, transcribe_clip


@dataclass(frozen=True)
class ContextRules:
    max_confidence: float = 0.85
    """Utterances Whisper was sure of (mean word probability at least this) are left alone."""
    max_utterance: float = 4.0
    """Longer utterances are left alone (they carry their own context)."""
    min_pause: float = 2.0
    """Only utterances after at least this much silence of the speaker's are redone
    (a short answer, not the end of the speaker's own sentence)."""
    utterance_gap: float = 1.0
    """Words of one speaker closer than this are one utterance."""
    merge_gap: float = 3.0
    """Utterances to redo this close to each other go into one clip..."""
    max_clip: float = 25.0
    """...while it stays this short (seconds of words)."""
    prompt_chars: int = 300
    """Longest prompt (Whisper keeps at most 223 tokens of it)."""
    prompt_window: float = 60.0
    """Only what the room said in the last this many seconds is context."""
    pad: float = 0.4
    """Audio kept around an utterance's words."""
    slack: float = 0.25
    """Context-pass words further than this outside the first pass's utterances are dropped."""
    tolerance: float = 0.0
    """How much less sure (mean word probability) the context pass may be and still win."""
    keep_probability: float = 0.6
    """A redo that loses a word the first pass heard at least this surely is refused:
    a prompt can lead Whisper to drop a word that is in the audio (a short answer's
    leading number), and the mean probability of what is left may still rise."""


class RoomPrompt:
    """Room time -> the room's text just before it (every speaker, time order).

    Usable as ``transcribe(..., prompt=RoomPrompt(room))``, and by :func:`refine`.
    """

    def __init__(self, room: Sequence[Word], *, max_chars: int = 300, window: float = 60.0) -> None:
        self.words = sorted(room, key=lambda w: w.start)
        self.starts = [w.start for w in self.words]
        self.max_chars = max_chars
        self.window = window

    def __call__(self, at: float) -> str | None:
        lo = bisect.bisect_left(self.starts, at - self.window)
        hi = bisect.bisect_left(self.starts, at - 0.05)
        texts: list[str] = []
        size = 0
        for w in reversed(self.words[lo:hi]):
            if size + len(w.text) + 1 > self.max_chars:
                break
            texts.append(w.text)
            size += len(w.text) + 1
        return join_words(reversed(texts)) or None


def room_words(tracks: Sequence[TrackWords], *, options: AssembleOptions | None = None) -> list[Word]:
    """Every speaker's first-pass words, bleed and loops removed, in time order."""
    turns = assemble(tracks, options=options or AssembleOptions())
    return sorted((w for turn in turns for w in turn.words), key=lambda w: w.start)


def unsure_utterances(words: Sequence[Word], rules: ContextRules = ContextRules()) -> list[tuple[int, int]]:
    """Index ranges ``[i, j)`` of ``words`` worth redoing with the room as context.

    Utterances (words closer than ``utterance_gap``) that Whisper was not
    sure of, after a pause of the speaker's; neighbours are merged into one
    range while it stays short enough for one Whisper window.
    """
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        j = i + 1
        end = words[i].end
        while j < len(words) and words[j].start - end < rules.utterance_gap:
            end = max(end, words[j].end)
            j += 1
        pause = words[i].start - (max(w.end for w in words[:i]) if i else float("-inf"))
        if (
            end - words[i].start <= rules.max_utterance
            and pause >= rules.min_pause
            and _confidence(words[i:j]) < rules.max_confidence
        ):
            if ranges and _mergeable(words, ranges[-1], (i, j), rules):
                ranges[-1] = (ranges[-1][0], j)
            else:
                ranges.append((i, j))
        i = j
    return ranges


def _mergeable(words: Sequence[Word], a: tuple[int, int], b: tuple[int, int], rules: ContextRules) -> bool:
    a_end = max(w.end for w in words[a[0] : a[1]])
    b_end = max(w.end for w in words[b[0] : b[1]])
    return words[b[0]].start - a_end <= rules.merge_gap and b_end - words[a[0]].start <= rules.max_clip


@dataclass(frozen=True, eq=False)
class Clip:
    """The audio of an utterance to redo, kept by the first pass for the context pass."""

    speaker: str
    start: float
    """Room time of ``samples[0]``."""
    samples: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.seconds


def context_clips(
    audio: Samples, words: Sequence[Word], *, offset: float, rules: ContextRules | None = None
) -> list[Clip]:
    """Audio of the track's utterances to redo with context (see :func:`unsure_utterances`).

    Args:
        audio: The track, as given to :func:`transcribe.transcribe.transcribe`.
        words: Its first-pass words, sorted by start.
        offset: Room time of ``audio[0]``.
        rules: Which utterances (default: ``ContextRules()``).
    """
    rules = rules or ContextRules()
    clips: list[Clip] = []
    for i, j in unsure_utterances(words, rules):
        before = max((w.end for w in words[:i]), default=float("-inf"))
        after = words[j].start if j < len(words) else float("inf")
        start = max(words[i].start - rules.pad, before, offset)
        end = min(max(w.end for w in words[i:j]) + rules.pad, after)
        lo, hi = max(0, round((start - offset) * SAMPLE_RATE)), round((end - offset) * SAMPLE_RATE)
        if hi > lo:
            clips.append(Clip(words[i].speaker, offset + lo / SAMPLE_RATE, audio[lo:hi].copy()))
    return clips


def clips_to_bytes(clips: Sequence[Clip]) -> bytes:
    """Clips as one compressed blob (16-bit samples): a few kB per second of speech."""
    buffer = io.BytesIO()
    meta = [{"speaker": c.speaker, "start": c.start, "length": len(c.samples)} for c in clips]
    # Clip by clip: a three-hour track can have half an hour of clips, and
    # whole-array temporaries would cost several copies of them.
    pcm = np.empty(sum(len(c.samples) for c in clips), dtype=np.int16)
    at = 0
    for c in clips:
        pcm[at : at + len(c.samples)] = np.clip(np.rint(c.samples * 32767), -32768, 32767)
        at += len(c.samples)
    np.savez_compressed(buffer, meta=np.array(json.dumps(meta)), pcm=pcm)
    return buffer.getvalue()


def clips_from_bytes(data: bytes) -> list[Clip]:
    with np.load(io.BytesIO(data)) as stored:
        meta = json.loads(str(stored["meta"]))
        pcm = stored["pcm"]
    clips: list[Clip] = []
    at = 0
    for m in meta:
        samples = pcm[at : at + int(m["length"])].astype(np.float32) / 32767
        clips.append(Clip(str(m["speaker"]), float(m["start"]), samples))
        at += int(m["length"])
    return clips


def refine(
    model: WhisperModel,
    words: Sequence[Word],
    clips: Sequence[Clip],
    *,
    room: Sequence[Word],
    options: TranscribeOptions | None = None,
    rules: ContextRules | None = None,
    on_clip: Callable[[], None] | None = None,
) -> list[Word]:
    """Re-transcribe a track's clips with the room's preceding text as prompt.

    Args:
        model: The Whisper model.
        words: The track's words, sorted by start; best after bleed removal
            (:func:`transcribe.assemble.clean_tracks`), so that a clip of another
            speaker's bleed has no words left to redo.
        clips: The track's :func:`context_clips`.
        room: The whole room's first-pass words (:func:`room_words`).
        options: As for the first pass (default: ``TranscribeOptions()``).
        rules: How much context (default: ``ContextRules()``).
        on_clip: Called after each clip, redone or not (progress).

    Returns:
        The track's words, each clip's words replaced by the context pass's
        when Whisper is at least as sure of them.
    """
    # No temperature fallback: when the prompt does not give a confident
    # reading at once, the first pass stays, and sampling five times at each
    # of five temperatures would cost more than the whole first pass.
    options = replace(options or TranscribeOptions(), temperatures=(0.0,))
    rules = rules or ContextRules()
    prompt_of = RoomPrompt(room, max_chars=rules.prompt_chars, window=rules.prompt_window)
    out = list(words)
    for clip in clips:
        out = _redo(model, out, clip, prompt_of, options, rules)
        if on_clip is not None:
            on_clip()
    return out


def _redo(
    model: WhisperModel,
    out: list[Word],
    clip: Clip,
    prompt_of: RoomPrompt,
    options: TranscribeOptions,
    rules: ContextRules,
) -> list[Word]:
    """The track's words with ``clip``'s redone, if the redo is accepted."""
    old = [w for w in out if clip.start <= w.start < clip.end]
    # The clip was cut before bleed was known: what it held of another
    # speaker is gone from the words, and may leave nothing unsure.
    if not old or _confidence(old) >= rules.max_confidence:
        return out
    prompt = prompt_of(old[0].start)
    if not prompt:
        return out
    new = transcribe_clip(
        model,
        clip.samples,
        start=max(0.0, old[0].start - rules.pad - clip.start),
        end=max(w.end for w in old) + rules.pad - clip.start,
        speaker=old[0].speaker,
        offset=clip.start,
        options=options,
        prompt=prompt,
    )
    new = _not_before(_within(new, old, rules), old[0].start)
    if not accept_redo(old, new, rules):
        return out
    gone = {id(w) for w in old}
    return sorted([w for w in out if id(w) not in gone] + new, key=lambda w: (w.start, w.end))


def accept_redo(old: Sequence[Word], new: Sequence[Word], rules: ContextRules | None = None) -> bool:
    """Whether the context pass's words ``new`` replace the first pass's ``old`` (one clip).

    Only if Whisper is at least as sure of them (mean word probability, less
    ``rules.tolerance``) and every word the first pass heard surely
    (``rules.keep_probability``) is still there: the same word, said at the
    same time (within ``rules.slack``). A redo may change or drop only the
    words the first pass was unsure of.
    """
    rules = rules or ContextRules()
    if not new or _confidence(new) < _confidence(old) - rules.tolerance:
        return False
    return all(_kept(w, new, rules.slack) for w in old if w.probability >= rules.keep_probability)


def _kept(word: Word, new: Sequence[Word], slack: float) -> bool:
    text = spelling(word.text)
    return any(spelling(n.text) == text and n.start <= word.end + slack and n.end >= word.start - slack for n in new)


def spelling(text: str) -> str:
    """A word as said: case and punctuation around it do not make it another word."""
    return "".join(c for c in text.lower() if c.isalnum() or c == "'").strip("'")


def refine_room(
    model: WhisperModel,
    tracks: Sequence[TrackWords],
    clips: Sequence[Sequence[Clip]],
    *,
    options: TranscribeOptions | None = None,
    rules: ContextRules | None = None,
    assemble_options: AssembleOptions | None = None,
    languages: Mapping[str, str] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> list[TrackWords]:
    """The context pass over a whole room, ready for :func:`transcribe.assemble.assemble`.

    Args:
        model: The Whisper model (not used when there are no clips).
        tracks: Every track's first pass, with levels.
        clips: Each track's :func:`context_clips`, in the same order.
        options: As for the first pass.
        rules: How much context.
        assemble_options: For removing bleed before the room's text is taken as context.
        languages: Speaker -> the language their first pass was in (each clip is redone in it).
        on_progress: Called with the share of the room's clips done, 0 to 1.

    Returns:
        The tracks with bleed removed and their clips redone.
    """
    assemble_options = assemble_options or AssembleOptions()
    base = options or TranscribeOptions()

    def own(speaker: str) -> TranscribeOptions:
        told = (languages or {}).get(speaker)
        return replace(base, language=told) if told else base

    room = room_words(tracks, options=assemble_options)
    cleaned = clean_tracks(tracks, options=assemble_options)
    total = sum(len(c) for c in clips)
    done = 0

    def clip_done() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done / total)

    return [
        TrackWords(
            t.speaker,
            refine(model, words, c, room=room, options=own(t.speaker), rules=rules, on_clip=clip_done) if c else words,
            t.levels,
        )
        for t, words, c in zip(tracks, cleaned, clips, strict=True)
    ]


def _within(new: Sequence[Word], old: Sequence[Word], rules: ContextRules) -> list[Word]:
    """The new words said where the old ones were.

    A prompt invites Whisper to go on talking past the speech ("thank you
    very much"), and a clip may hold another speaker's bleed that the first
    pass's words no longer have: only words inside the old utterances stay.
    """
    spans: list[list[float]] = []
    for w in sorted(old, key=lambda w: w.start):
        if spans and w.start - spans[-1][1] < rules.utterance_gap:
            spans[-1][1] = max(spans[-1][1], w.end)
        else:
            spans.append([w.start, w.end])
    return [w for w in new if any(s - rules.slack <= (w.start + w.end) / 2 <= e + rules.slack for s, e in spans)]


def _not_before(words: Sequence[Word], start: float) -> list[Word]:
    """Words starting no earlier than ``start``.

    Whisper tends to start a clip's first word at the clip's first sample,
    which is the padding before the speech: the first pass, cut at speech
    by VAD, knows better when the utterance began.
    """
    return [replace(w, start=min(max(w.start, start), w.end)) for w in words]


def _confidence(words: Sequence[Word]) -> float:
    return float(np.mean([w.probability for w in words]))
