"""Words of a whole room: the mix for *what* was said, the tracks for *who* said it.

Transcribed alone, a speaker's three-word answer has no context and is
misheard; in the room's mix Whisper hears the question first. And every
track transcribed on its own repeats fixed costs (a job, a VAD pass, short
windows that cost a whole 30 s encoder pass each). So the room is
transcribed once, from its mix, each run of it (below) in one Whisper call
as plain faster-whisper hears a file, and each word goes to the speaker
whose track is loudest while it is said: a speaker's own voice is always
louder on their microphone than anyone's bleed on it.

The mix cannot say who said what where two people talk at once (Whisper
hears one voice, or a blend of both). There, and only there, each of them
has their utterance transcribed from their own track, with the room's text
before it as the prompt, and these words replace the mix's. A region's
utterances are heard one after another in one Whisper call
(:class:`PackedClips`), not a call each: a clip of a few seconds costs a
whole 30 s encoder pass::

    regions = overlap_regions(levels_by_track)             # from levels alone
    clips = [track_clips(audio, offset, regions, i) ...]   # per track (:mod:`transcribe.room_audio`)
    words = transcribe_room(model, mix, offset=0.0, tracks=[RoomTrack(s, lv, c), ...])

A confidently heard word of the mix is kept even if the track passes did
not hear it, unless they heard something else there more surely, so that no
word is lost to the second look. Cost is one Whisper pass over the room's speech plus the overlaps,
whatever the number of speakers.

A model that runs several passes at once (``load_model(..., passes=N)``)
hears the room in runs side by side: the mix is cut into runs at pauses
(:func:`cuts`), each run long enough that a fresh start of Whisper's
context costs little, and the overlaps' regions are decoded side by side too
(:func:`side_by_side`). A cut falls where nobody speaks, and each run is
its own stretch of the mix, so no word is heard in two runs nor lost
between them.
"""

from __future__ import annotations

import queue
import statistics
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import TypeVar

import numpy as np
from faster_whisper import WhisperModel

from spaces.models import Word
from transcribe.audio import SAMPLE_RATE
from transcribe.context_pass import Clip, RoomPrompt, spelling
from transcribe.levels import FLOOR_DB, Levels
from transcribe.loops import NO_LOOPS, LoopRules, drop_loops
from transcribe.samples import Samples, part
from transcribe.transcribe import ProgressCallback, TranscribeOptions, transcribe

T = TypeVar("T")

Span = tuple[float, float]
"""Room-time seconds ``(start, end)``."""


@dataclass(frozen=True)
class RoomRules:
    hop: float = 0.02
    """Seconds per frame of the activity grid (the levels' hop)."""
    above_floor_db: float = 20.0
    """A track speaks where it is this much above its own noise floor..."""
    min_speech_db: float = -55.0
    """...and at least this loud (dBFS)..."""
    bleed_margin_db: float = 12.0
    """...and no other track is louder by this much (else it is that speaker's bleed)."""
    hold: float = 0.3
    """Pauses shorter than this inside a track's speech are speech (between syllables)."""
    min_overlap: float = 0.25
    """Two speakers at once for at least this long is an overlap transcribed per track."""
    utterance_gap: float = 0.8
    """An overlap's per-track clip covers the speaker's speech up to a pause this long..."""
    max_reach: float = 6.0
    """...but no further than this from the overlap (a clip is at most one Whisper window)."""
    pad: float = 0.3
    """Audio kept around a per-track clip."""
    clip_gap: float = 1.0
    """Seconds of silence between a region's clips heard in one call (:class:`PackedClips`).

    The VAD's shortest pause: two clips may be one speech span to it, so
    the bleed guard judges them together (it then skips less, and assembly
    removes what bleed gets through). Whisper hears the gap squeezed to the
    spans' padding where they are two. 1.5 and 2 s moved tiny.en's decode
    of the crosstalk test space ("The weather" heard "But when there")."""
    keep_probability: float = 0.6
    """A mix word this sure, unheard by the track passes and surer than their words at its time, stays;
    a track pass's word less sure is doubted (:func:`_replace_region`, :func:`without_copies`)."""
    slack: float = 0.3
    """Seconds a word may move between the mix and a track and still be the same word."""
    max_overlap_share: float = 0.3
    """A room whose speech is more overlap than this has no mix to hear it from: its tracks are transcribed."""
    min_run_speech: float = 120.0
    """Seconds of speech a run of the mix holds at least (a run starts Whisper's context afresh)."""
    cut_reach: float = 0.2
    """A cut goes in the longest pause within this share of a run's speech of an even split."""
    call_speech: float = 300.0
    """Seconds of a run's audio (its first speech to its last, pauses and all) one Whisper call hears at
    most: their audio and features are in memory at once
    (faster-whisper's features of 300 s take 0.23 GB, of 600 s 0.42 GB), so a worker's memory stays flat
    in the space's length."""


@dataclass(frozen=True)
class RoomTrack:
    """One track as the room pass needs it: its speaker, levels and overlap audio."""

    speaker: str
    levels: Levels
    clips: Sequence[Clip] = ()
    """The track's audio over each overlap region it speaks in (:func:`track_clips`)."""


@dataclass(frozen=True)
class Region:
    """Where several speakers talk at once: the overlap itself and each one's utterance around it."""

    core: Span
    spans: dict[int, Span]
    """Track index -> the room time to transcribe from that track."""


def _grid(levels: Sequence[Levels], hop: float) -> tuple[float, np.ndarray]:
    """Start time and a (tracks x frames) dB matrix on one common clock."""
    start = min(lv.start for lv in levels)
    end = max(lv.end for lv in levels)
    times = start + hop * (np.arange(max(1, int(np.ceil((end - start) / hop)))) + 0.5)
    return start, np.stack([lv.at(times) for lv in levels])


def _floor(track: Levels) -> float:
    """A track's noise floor: its quiet frames' level, over the track itself (not the room before it
    joined or after it left).

    Digital silence counts: a microphone that adds no noise (a clean voice,
    a muted one's zeros) is silent between its speaker's words. Without it,
    the quiet frames of such a track were its softest speech (the answers
    bench space: alice's at -33.5 dBFS, her speech's median -24), and 20 dB
    above them was most of her speech not found (she spoke in 2 % of the
    room's frames, where her track sounds in 26 %)."""
    return float(np.quantile(track.db, 0.2)) if track.db.size else FLOOR_DB


def _close(active: np.ndarray, frames: int) -> np.ndarray:
    """Fill gaps of at most ``frames`` between active frames (per row)."""
    out = active.copy()
    for row in out:
        idx = np.flatnonzero(row)
        if idx.size < 2:
            continue
        gaps = np.flatnonzero((np.diff(idx) > 1) & (np.diff(idx) <= frames + 1))
        for g in gaps:
            row[idx[g] : idx[g + 1]] = True
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of the True runs."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _own(db: np.ndarray, rules: RoomRules) -> np.ndarray:
    """(tracks x frames): loud enough for speech, and not another track's bleed."""
    own = db >= rules.min_speech_db
    if db.shape[0] > 1:
        # The loudest of the *other* tracks at each frame.
        order = np.sort(db, axis=0)
        others = np.where(db == order[-1], order[-2], order[-1])
        own &= db >= others - rules.bleed_margin_db
    return own


def activity(levels: Sequence[Levels], rules: RoomRules = RoomRules()) -> tuple[float, np.ndarray]:
    """Start time and (tracks x frames) mask of where each track's own speaker speaks."""
    start, db = _grid(levels, rules.hop)
    floors = np.array([_floor(lv) for lv in levels])[:, None]
    loud = (db >= floors + rules.above_floor_db) & _own(db, rules)
    return start, _close(loud, round(rules.hold / rules.hop))


def speech_stretches(levels: Sequence[Levels], rules: RoomRules = RoomRules()) -> list[Span]:
    """Where anyone speaks on their own microphone, from the levels alone (room time)."""
    if not levels:
        return []
    start, active = activity(levels, rules)
    return [(start + lo * rules.hop, start + hi * rules.hop) for lo, hi in _runs(np.asarray(active.any(axis=0)))]


def overlap_share(levels: Sequence[Levels], rules: RoomRules = RoomRules()) -> float:
    """The share of the room's speech time in which two or more speakers talk at once."""
    if len(levels) < 2:
        return 0.0
    # Loud enough and not another's bleed, without the noise floor that
    # ``activity`` measures: a track that is speech throughout has no quiet
    # frames to measure it from.
    _, db = _grid(levels, rules.hop)
    active = _own(db, rules)
    speech = int(active.any(axis=0).sum())
    return float((active.sum(axis=0) >= 2).sum()) / speech if speech else 0.0


def overlap_regions(levels: Sequence[Levels], rules: RoomRules = RoomRules()) -> list[Region]:
    """Where two or more speakers talk at once, from the tracks' levels alone."""
    if len(levels) < 2:
        return []
    start, active = activity(levels, rules)
    hop = rules.hop
    together = active.sum(axis=0) >= 2
    speech = _close(active, round(rules.utterance_gap / hop))
    reach = round(rules.max_reach / hop)
    regions: list[Region] = []
    for lo, hi in _runs(together):
        if (hi - lo) * hop < rules.min_overlap:
            continue
        spans: dict[int, Span] = {}
        for i in np.flatnonzero(active[:, lo:hi].any(axis=1)).tolist():
            a, b = lo, hi
            while a > max(0, lo - reach) and speech[i, a - 1]:
                a -= 1
            while b < min(speech.shape[1], hi + reach) and speech[i, b]:
                b += 1
            spans[i] = (start + a * hop - rules.pad, start + b * hop + rules.pad)
        if len(spans) >= 2:
            regions.append(Region((start + lo * hop, start + hi * hop), spans))
    return _merged(regions)


def _merged(regions: list[Region]) -> list[Region]:
    """Regions whose clips touch become one (a track is transcribed once per stretch)."""
    out: list[Region] = []
    for r in regions:
        if out and any(i in out[-1].spans and s[0] <= out[-1].spans[i][1] for i, s in r.spans.items()):
            last = out[-1]
            spans = dict(last.spans)
            for i, s in r.spans.items():
                spans[i] = (min(s[0], spans[i][0]), max(s[1], spans[i][1])) if i in spans else s
            out[-1] = Region((last.core[0], r.core[1]), spans)
        else:
            out.append(r)
    return out


def track_clips(audio: Samples, *, offset: float, speaker: str, regions: Sequence[Region], index: int) -> list[Clip]:
    """The track's audio over each region it speaks in (so the track itself need not be kept)."""
    clips: list[Clip] = []
    for r in regions:
        if index not in r.spans:
            continue
        s, e = r.spans[index]
        lo, hi = max(0, round((s - offset) * SAMPLE_RATE)), min(len(audio), round((e - offset) * SAMPLE_RATE))
        if hi > lo:
            clips.append(Clip(speaker, offset + lo / SAMPLE_RATE, audio[lo:hi].copy()))
    return clips


def attribute(words: Sequence[Word], tracks: Sequence[RoomTrack], rules: RoomRules = RoomRules()) -> list[Word]:
    """Each word on the speaker whose track is loudest while it is said."""
    out: list[Word] = []
    for w in words:
        # The middle of the word: Whisper's word edges spill into the neighbours' speech.
        quarter = (w.end - w.start) / 4
        loudness = [t.levels.loudness(w.start + quarter, w.end - quarter + 0.02) for t in tracks]
        if max(loudness) < rules.min_speech_db:
            # Nobody speaks in its middle: Whisper stretched a turn's first
            # word back over the pause before it ("A" at 74.65-75.13 s, said
            # at 75.0 s, on the 10-minute bench space). The whole word holds
            # its speaker; every silent track alike would give the first.
            loudness = [t.levels.loudness(w.start, w.end + 0.02) for t in tracks]
        out.append(replace(w, speaker=tracks[int(np.argmax(loudness))].speaker))
    return out


def cuts(speech: Sequence[Span], parts: int, rules: RoomRules = RoomRules()) -> list[float]:
    """Room times to cut the mix at so that ``parts`` runs (or fewer) hold even shares of its speech.

    Each cut is in the middle of the longest pause (between two of
    ``speech``'s stretches) within :attr:`RoomRules.cut_reach` of a run's
    speech of an even split; every run holds at least
    :attr:`RoomRules.min_run_speech` seconds of speech, so a short room is
    one run. Where no pause fits, two runs stay one.
    """
    total = sum(e - s for s, e in speech)
    n = min(parts, int(total // rules.min_run_speech))
    if n < 2:
        return []
    share = total / n
    # (pause start, pause end, seconds of speech before it)
    pauses: list[tuple[float, float, float]] = []
    before = 0.0
    for (s, e), (following, _) in pairwise(speech):
        before += e - s
        pauses.append((e, following, before))
    out: list[float] = []
    last = 0.0  # speech before the last cut
    for k in range(1, n):
        target = k * share
        fits = [
            p
            for p in pauses
            if abs(p[2] - target) <= rules.cut_reach * share
            and p[2] - last >= rules.min_run_speech
            and total - p[2] >= (n - k) * rules.min_run_speech
        ]
        if fits:
            a, b, last = max(fits, key=lambda p: (p[1] - p[0], -abs(p[2] - target)))
            out.append((a + b) / 2)
    return out


def runs(levels: Sequence[Levels], passes: int, rules: RoomRules = RoomRules()) -> int:
    """How many runs a model of ``passes`` passes hears the room's mix in (:func:`cuts`)."""
    return len(cuts(speech_stretches(levels, rules), passes, rules)) + 1


def passes(model: WhisperModel) -> int:
    """How many passes the model runs at once (its CTranslate2 workers: ``load_model(..., passes=N)``)."""
    return int(getattr(model.model, "num_workers", 1))


def side_by_side(
    model: WhisperModel,
    calls: Sequence[Callable[[ProgressCallback], T]],
    *,
    weights: Sequence[float],
    on_progress: ProgressCallback | None = None,
) -> list[T]:
    """Each call's result, in order, the calls run on as many threads as the model runs passes.

    Each call is given its own progress callback; ``on_progress`` gets the
    share of all calls done (each weighing ``weights[i]``) on the calling
    thread, so that what it writes to (a catalog's connection) need not
    be shared between threads. CTranslate2 releases the GIL while it
    decodes, so the passes do run at once. An error ``on_progress`` raises
    stops the calls where they next report progress, and is raised.
    """
    updates: queue.SimpleQueue[tuple[int, float | None]] = queue.SimpleQueue()
    stop = threading.Event()

    def report(i: int, fraction: float) -> None:
        if stop.is_set():
            raise _Stopped
        updates.put((i, fraction))

    def run(i: int, call: Callable[[ProgressCallback], T]) -> T:
        try:
            return call(lambda fraction: report(i, fraction))
        finally:
            updates.put((i, None))  # done, or failed: the result says which

    done = [0.0] * len(calls)
    total = sum(weights) or 1.0
    with ThreadPoolExecutor(max_workers=passes(model)) as pool:
        futures = [pool.submit(run, i, call) for i, call in enumerate(calls)]
        left = len(calls)
        try:
            while left:
                i, fraction = updates.get()
                if fraction is None:
                    left -= 1
                else:
                    done[i] = fraction
                    if on_progress is not None:
                        on_progress(sum(d * w for d, w in zip(done, weights, strict=True)) / total)
        except BaseException:
            stop.set()  # else leaving the pool waits for every call to end
            raise
        return [f.result() for f in futures]


class _Stopped(Exception):
    """A call of :func:`side_by_side` stopped because its progress reached a caller that had raised."""


def transcribe_room(
    model: WhisperModel,
    mix: Samples,
    *,
    offset: float,
    tracks: Sequence[RoomTrack],
    regions: Sequence[Region] = (),
    options: TranscribeOptions | None = None,
    rules: RoomRules = RoomRules(),
    on_progress: Callable[[float], None] | None = None,
) -> list[Word]:
    """The room's words, each on its speaker, sorted by start.

    Args:
        model: The Whisper model; one that runs passes side by side hears
            runs of the mix, and the overlaps' regions, at once.
        mix: Every track summed, mono float32 at 16 kHz (an array, or a file read a run's call at a time).
        offset: Room time of ``mix[0]``.
        tracks: Every track's speaker, levels and overlap clips.
        regions: :func:`overlap_regions` of the tracks' levels (the clips' regions).
        options: Whisper and guard parameters, for the mix and the clips.
        rules: Must be those the regions were found with.
        on_progress: Called with the share done, 0 to 1.
    """
    options = options or TranscribeOptions()
    speech = speech_stretches([t.levels for t in tracks], rules)
    edges = [offset, *cuts(speech, passes(model), rules), offset + len(mix) / SAMPLE_RATE]

    def run(lo: float, hi: float) -> Callable[[ProgressCallback], list[Word]]:
        a, b = round((lo - offset) * SAMPLE_RATE), round((hi - offset) * SAMPLE_RATE)
        # The run's speech in one Whisper call, as plain faster-whisper hears
        # the mix: each window starts where the last segment ended, with all
        # the text before it as the prompt, where windows of 30 s of speech
        # (each its own call, the last 200 characters as the prompt) made a
        # fifth more errors than the mix on the 10-minute bench space (README,
        # "room pass"). A long run is heard in several calls all the same (``call_speech``).
        # And heard as it is, pauses and all (``keep_pauses``), as faster-whisper
        # hears a file: packed end to end, a turn's first word stretched back
        # over its squeezed pause was lost at the seam (README, "room pass").
        # A window the prompt sends round a loop, or makes hear a sentence
        # twice, is heard again with a shorter prompt before sampling
        # (``short_prompt_retry``). Its windows decode up to Whisper's own
        # limit: a cap of 200 tokens, to cut a loop short before the retry,
        # moved CTranslate2's search (sized to it) in every window, the
        # answers space 0.066 -> 0.074 over nine runs; a loop costs its tokens again.
        whole = replace(
            options,
            window=max(options.window, min((b - a) / SAMPLE_RATE, rules.call_speech)),
            keep_pauses=True,
            short_prompt_retry=True,
        )
        return lambda progress: transcribe(
            model,
            part(mix, slice(a, b)),
            speaker="",
            offset=offset + a / SAMPLE_RATE,
            options=whole,
            speech=speech,
            on_progress=progress,
        )

    runs = side_by_side(
        model,
        [run(lo, hi) for lo, hi in pairwise(edges)],
        weights=[sum(max(0.0, min(hi, e) - max(lo, s)) for s, e in speech) for lo, hi in pairwise(edges)],
        on_progress=(lambda f: on_progress(0.8 * f)) if on_progress else None,
    )
    heard = attribute([w for words in runs for w in words], tracks, rules)
    if not regions:
        return heard
    return sorted(
        _redo_overlaps(model, heard, tracks, regions, options, rules, on_progress), key=lambda w: (w.start, w.end)
    )


def _redo_overlaps(
    model: WhisperModel,
    heard: list[Word],
    tracks: Sequence[RoomTrack],
    regions: Sequence[Region],
    options: TranscribeOptions,
    rules: RoomRules,
    on_progress: Callable[[float], None] | None,
) -> list[Word]:
    """``heard`` with each region's words redone from its speakers' own clips, a region a call, side by side."""
    before = RoomPrompt(heard)
    # No temperature fallback: two voices at once fail Whisper's thresholds
    # often, and sampling at five more temperatures would cost more than the
    # region is worth (where the clip stays unsure, the mix's sure words stay).
    # But a window heard wrong with the room's text as its prompt is heard
    # once more with a shorter one, as the mix's are: the seven-speaker bench
    # space of Festival's and Flite's voices, seed 4, heard "That sounds good."
    # and most of a sentence talked over as "tomatoes behind tomatoes", a
    # phrase of the room's from half a minute before.
    once = replace(options, temperatures=(0.0,), short_prompt_retry=True)
    levels = [t.levels for t in tracks]
    # Every region's clips, (track, clip), as the region needs them; a region
    # none of whose tracks has audio there keeps the mix's words.
    needed = [
        (region, pieces)
        for region in regions
        if (
            pieces := [
                (i, clip)
                for i in region.spans
                for clip in tracks[i].clips
                if clip.start < region.spans[i][1] and clip.end > region.spans[i][0]
            ]
        )
    ]

    def region_words(pieces: Sequence[tuple[int, Clip]]) -> Callable[[ProgressCallback], list[Word]]:
        def call(progress: ProgressCallback) -> list[Word]:
            # Packed as it is heard: a copy of the clips, one region at a time.
            clips = PackedClips.of(pieces, levels, gap=rules.clip_gap)
            heard = transcribe(
                model,
                clips.audio,
                speaker="",
                offset=0.0,
                options=replace(once, loops=NO_LOOPS),
                prompt=lambda at: before(clips.room_time(at)),
                others=clips.others,
                on_progress=progress,
            )
            # Each speaker's words looked at for loops alone (in the call their
            # utterances follow one another: "yeah yeah" said by two is no loop).
            return clips.placed(heard, options.loops, rules.keep_probability)

        return call

    redone = side_by_side(
        model,
        [region_words(pieces) for _, pieces in needed],
        weights=[sum(clip.seconds for _, clip in pieces) for _, pieces in needed],
        on_progress=(lambda f: on_progress(0.8 + 0.2 * f)) if on_progress else None,
    )
    words = heard
    for (region, _), ws in zip(needed, redone, strict=True):
        words = _replace_region(words, ws, region, rules)
    if on_progress is not None:
        on_progress(1.0)
    return words


@dataclass(frozen=True)
class PackedClips:
    """A region's clips one after another, ``gap`` seconds of silence apart, for one Whisper call.

    Each clip heard alone cost a whole 30 s encoder pass for the seconds of
    an utterance; the clips of a region mostly fit in one window together
    (a longer call is heard in several, as any audio). The call's time is
    the pieces' own (from 0); ``others`` are, over each piece, the levels of
    the tracks other than its own, in that time, so that the call skips a
    piece's bleed as a clip's own call did.
    """

    audio: np.ndarray
    pieces: Sequence[tuple[float, int, Clip]]
    """``(seconds into audio, track index, clip)``, in the order heard (the clips' starts)."""
    others: Sequence[Levels]

    @classmethod
    def of(cls, clips: Sequence[tuple[int, Clip]], levels: Sequence[Levels], *, gap: float) -> PackedClips:
        hop = levels[0].hop
        pieces: list[tuple[float, int, Clip]] = []
        frame = 0  # on the levels' grid, so that each piece's levels are whole frames
        for i, clip in sorted(clips, key=lambda c: c[1].start):
            if pieces:
                frame += int(np.ceil((pieces[-1][2].seconds + gap) / hop))
            pieces.append((frame * hop, i, clip))
        frames = frame + int(np.ceil(pieces[-1][2].seconds / hop))
        audio = np.zeros(round(frames * hop * SAMPLE_RATE), dtype=np.float32)
        others = [np.full(frames, FLOOR_DB, dtype=np.float32) for _ in levels[1:]]
        for at, i, clip in pieces:
            lo = round(at * SAMPLE_RATE)
            audio[lo : lo + len(clip.samples)] = clip.samples
            first, n = round(at / hop), int(np.ceil(clip.seconds / hop))
            times = clip.start + hop * (np.arange(n) + 0.5)
            for db, lv in zip(others, [lv for j, lv in enumerate(levels) if j != i], strict=True):
                db[first : first + n] = lv.at(times)
        return cls(audio, pieces, [Levels(0.0, hop, db) for db in others])

    def _piece(self, at: float) -> int:
        """The index of the piece holding the call's time ``at``, else of the nearest."""
        return min(
            range(len(self.pieces)),
            key=lambda k: max(0.0, self.pieces[k][0] - at, at - self.pieces[k][0] - self.pieces[k][2].seconds),
        )

    def room_time(self, at: float, piece: tuple[float, int, Clip] | None = None) -> float:
        """The call's time ``at`` in room time, kept inside the clip of ``piece`` (default: its own)."""
        start, _, clip = piece or self.pieces[self._piece(at)]
        return min(max(clip.start + at - start, clip.start), clip.end)

    def placed(self, words: Sequence[Word], loops: LoopRules, doubt: float) -> list[Word]:
        """The call's words back in room time, each on the speaker of the clip holding its middle (or
        nearest), each clip's words without their loops, and without the runs of words two clips heard
        at once, doubting them on one (:func:`without_copies`: off the one)."""
        said: list[list[Word]] = [[] for _ in self.pieces]
        for w in words:
            k = self._piece((w.start + w.end) / 2)
            piece = self.pieces[k]
            room = replace(w, start=self.room_time(w.start, piece), end=self.room_time(w.end, piece))
            said[k].append(replace(room, speaker=piece[2].speaker))
        return [w for ws in without_copies([drop_loops(ws, loops) for ws in said], doubt) for w in ws]


def without_copies(said: Sequence[Sequence[Word]], doubt: float, shortest: int = 2) -> list[list[Word]]:
    """Each piece's words (pieces in the order a call heard them) without the runs of ``shortest`` or
    more words that another speaker's piece heard too, spelled the same, word for word at the same
    room time, where Whisper doubted (below ``doubt``) one of them.

    Of two people talking at once, one rarely says the other's words at
    the same instants; such a run is mostly the other's: Whisper heard a
    piece after the same call's earlier piece and repeated its words
    (carol's "Yes, exactly." heard as "Yes, next week.", "next" doubted,
    after alice's "maybe next week" in the quality test's space), or a
    microphone's bleed was heard under its own speaker's voice. Of two
    pieces, the one whose shared words Whisper was less sure of loses them
    all, else the later heard (a repetition comes after what it repeats);
    only if it doubted one: two sure "Thank you."s said together both
    stay, as does a single word alike (two may both say "the" at once).
    """
    gone: set[tuple[int, int]] = set()
    for a in range(len(said)):
        for b in range(a + 1, len(said)):
            if not said[a] or not said[b] or said[a][0].speaker == said[b][0].speaker:
                continue
            runs = list(_shared_runs(said[a], said[b], shortest))
            if not runs:
                continue
            mine = {(a, i + k) for i, _, n in runs for k in range(n)}
            theirs = {(b, j + k) for _, j, n in runs for k in range(n)}
            loser = theirs if _sureness(said, theirs) <= _sureness(said, mine) else mine
            if any(said[p][k].probability < doubt for p, k in loser):
                gone |= loser
    return [[w for k, w in enumerate(ws) if (p, k) not in gone] for p, ws in enumerate(said)]


def _sureness(said: Sequence[Sequence[Word]], at: set[tuple[int, int]]) -> float:
    return statistics.fmean(said[p][k].probability for p, k in at)


def _shared_runs(a: Sequence[Word], b: Sequence[Word], shortest: int) -> Iterator[tuple[int, int, int]]:
    """``(i, j, n)``: ``a[i:i+n]`` and ``b[j:j+n]`` the same words at the same time (as many as can
    be), word for word spelled the same and overlapping, ``n >= shortest``."""
    theirs = [spelling(w.text) for w in b]
    same = [
        [bool(x) and x == y and w.start < v.end and v.start < w.end for y, v in zip(theirs, b, strict=True)]
        for x, w in ((spelling(w.text), w) for w in a)
    ]
    for i in range(len(a)):
        for j in range(len(b)):
            if not same[i][j] or (i and j and same[i - 1][j - 1]):
                continue
            n = 1
            while i + n < len(a) and j + n < len(b) and same[i + n][j + n]:
                n += 1
            if n >= shortest:
                yield i, j, n


def _replace_region(words: list[Word], redone: list[Word], region: Region, rules: RoomRules) -> list[Word]:
    """The mix's words in the region give way to the tracks', but for sure ones the tracks did not hear better.

    Where two speak at once the mix may blend them, so its words there give
    way to the tracks'. A word the mix heard surely stays, though, unless a
    track pass heard it too, or heard something at the same time
    (:func:`_together`) at least as surely: a second look must not drop what
    the first heard well (the espeak space lost a sure "next week" to a
    track's "Thank" of probability 0.00). A word of the track passes that
    they themselves doubt, said together with such a sure mix word, is the
    track's mishearing of that word: it goes.
    """
    lo = min(s for s, _ in region.spans.values())
    hi = max(e for _, e in region.spans.values())
    out: list[Word] = []
    kept: list[Word] = []
    for w in words:
        if not lo <= (w.start + w.end) / 2 <= hi:
            out.append(w)
        elif (
            w.probability >= rules.keep_probability
            and not any(_same(w, r, rules.slack) for r in redone)
            and all(r.probability < w.probability for r in redone if _together(w, r))
        ):
            kept.append(w)
    doubted = {id(r) for r in redone if r.probability < rules.keep_probability and any(_together(r, w) for w in kept)}
    return out + kept + [r for r in redone if id(r) not in doubted]


def _together(a: Word, b: Word) -> bool:
    """Whether two words are heard at the same time: overlapping by at least half the shorter (so
    whenever one spans the other's middle), not merely touching at their edges.

    Not "one spans the other's middle" alone: a track's clip heard grace's
    "across" as "the cross" 0.3 s after the mix's "across" began, beside its
    middle, not over it, and both stayed ("across the cross the street",
    twice in the seven-speaker bench space of Festival's and Flite's voices).
    """
    overlap = min(a.end, b.end) - max(a.start, b.start)
    return overlap >= max(0.0, 0.5 * min(a.end - a.start, b.end - b.start))


def _same(a: Word, b: Word, slack: float) -> bool:
    return spelling(a.text) == spelling(b.text) and b.start <= a.end + slack and b.end >= a.start - slack


def add_to_mix(mix: np.ndarray, samples: np.ndarray, *, offset: float, gain_db: float = 0.0) -> None:
    """Add a track into ``mix`` in place (``offset``: seconds of ``samples[0]`` in ``mix``), ``gain_db`` louder.

    ``samples``: float32, or int16 (full scale at 32768, as float32 decodes it).
    """
    lo = round(offset * SAMPLE_RATE)
    a, b = max(0, lo), min(len(mix), lo + len(samples))
    scale = 10 ** (gain_db / 20) / (32768 if samples.dtype == np.int16 else 1)
    if b > a:
        mix[a:b] += samples[a - lo : b - lo] * np.float32(scale)
