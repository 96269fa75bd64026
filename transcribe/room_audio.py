"""A room's tracks read once: their levels, their mix, and their audio kept for the overlaps.

The room pass needs every track three ways: its levels (who speaks when),
its share of the mix (what is said), and its audio where two people speak at
once (the overlap clips, :func:`transcribe.room.track_clips`). Which
stretches those are is known only once every track's levels are, after the
last track is read; so each track is written to disk as it is summed (int16,
32 KB a second of audio), and the clips are read back from there::

    room = RoomAudio(labels, start=0.0, end=90.0, directory=tmp)
    for i, levels in room.read(sources, gain=level_gain):
        ...  # store each track's levels as they come
    words = room.transcribe(model)

Each track is decoded once, where the levels and the room pass each decoded
it (the seven-speaker bench space: the room job's decode of its seven tracks
was 0.7-1.1 s of its time). The mix is on disk too (float32, 64 KB a second):
the room pass, language detection and a track's own pass read each a
stretch at a time (:mod:`transcribe.samples`), so memory is the pieces being
read and the stretches being heard, whatever the room's length.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from spaces.models import Word
from transcribe.audio import SAMPLE_RATE, sample_at
from transcribe.context_pass import Clip
from transcribe.language import Probabilities, detect, speaks_language
from transcribe.levels import Levels, levels
from transcribe.read_ahead import read_ahead
from transcribe.room import (
    Region,
    RoomRules,
    RoomTrack,
    add_to_mix,
    overlap_regions,
    track_clips,
    transcribe_room,
)
from transcribe.samples import SampleFile
from transcribe.transcribe import TranscribeOptions


class RoomAudio:
    """The room's mix (float32 at 16 kHz from ``start`` to ``end``), summed track by track, each
    track's levels, and each track's int16 samples; the mix and the tracks in files of ``directory``,
    read a stretch at a time (:class:`~transcribe.samples.SampleFile`)."""

    def __init__(self, labels: Sequence[str], *, start: float, end: float, directory: Path) -> None:
        self.labels = list(labels)
        self.start = start
        self.levels: list[Levels] = []
        self._directory = directory
        self._offsets: list[float] = []
        directory.mkdir(parents=True, exist_ok=True)
        with self._mix_path.open("wb") as mix:
            mix.truncate(4 * max(0, round((end - start) * SAMPLE_RATE)))  # silence, sparse on most file systems
        self.mix = SampleFile(self._mix_path, np.float32)

    def read(
        self,
        sources: Sequence[Iterable[tuple[float, np.ndarray]]],
        *,
        gain: Callable[[Levels], float],
        readers: int = 2,
        ahead: int = 32,
    ) -> Generator[tuple[int, Levels], None, None]:
        """Read the tracks, ``(index, levels)`` as each is summed: ``sources[i]`` is track ``labels[i]``
        as its pieces, ``(room time of the first sample, int16 samples)`` in time order (where two
        overlap, the later wins, as :class:`~transcribe.audio.Timeline` joins them; a track without
        any: an empty piece at its start); ``gain``: the dB it is mixed at.

        ``readers`` tracks are read (downloaded, decoded) at once, each at
        most ``ahead`` pieces ahead, and summed one after another, in order:
        float32 sums in another order differ in their last bits, and
        Whisper's words may differ with them. Memory is the pieces read
        ahead: each track goes to its file as its pieces come, and its levels
        and share of the mix's file are taken from there a block at a time
        (``bench.track_memory``, two tracks read whole, two at a time, into a
        mix in memory: 773 MB for one hour each, 2094 MB for three).
        """
        if len(sources) != len(self.labels):
            raise ValueError(f"{len(sources)} tracks for {len(self.labels)} labels")
        with closing(read_ahead(sources, readers=readers, ahead=ahead)) as read:
            file: _TrackFile | None = None
            for i, (offset, samples) in read:
                if file is None or file.index != i:
                    if file is not None:
                        yield file.index, self._sum(file, gain)
                    file = _TrackFile(i, self._path(i), offset)
                file.write(offset, samples)
                # Before the next piece is taken: else the reader's next is held beside it.
                del samples
            if file is not None:
                yield file.index, self._sum(file, gain)
        if len(self.levels) != len(self.labels):
            raise ValueError(f"a track gave no piece: {len(self.levels)} of {len(self.labels)} tracks read")

    def _sum(self, file: _TrackFile, gain: Callable[[Levels], float]) -> Levels:
        """The track's levels and its share of the mix, from its file, a block at a time."""
        file.close()
        if file.index != len(self.levels):
            raise ValueError(f"track {len(self.levels)} gave no piece")
        parts = [levels(block, offset=file.start) for block in self._blocks(file.index)]
        parts = parts or [levels(np.zeros(0, dtype=np.int16), offset=file.start)]
        track_levels = Levels(file.start, parts[0].hop, np.concatenate([part.db for part in parts]))
        self._add_to_mix(file, gain(track_levels))
        self.levels.append(track_levels)
        self._offsets.append(file.start)
        return track_levels

    def _add_to_mix(self, file: _TrackFile, db_gain: float) -> None:
        """The track's share of the mix, added to the mix's file where it speaks, a block at a time."""
        lo = round((file.start - self.start) * SAMPLE_RATE)
        with self._mix_path.open("r+b") as mix:
            for k, block in enumerate(self._blocks(file.index)):
                at = 4 * (lo + k * _BLOCK)  # bytes: float32
                mix.seek(at)
                stretch = np.fromfile(mix, dtype=np.float32, count=len(block))
                add_to_mix(stretch, block, offset=0.0, gain_db=db_gain)
                mix.seek(at)
                stretch.tofile(mix)

    def _blocks(self, index: int) -> Iterator[np.ndarray]:
        """Track ``index``'s int16 samples from its file, :data:`_BLOCK` at a time (whole level frames)."""
        with self._path(index).open("rb") as f:
            while (block := np.fromfile(f, dtype=np.int16, count=_BLOCK)).size:
                yield block

    def track(self, index: int) -> tuple[float, SampleFile]:
        """Track ``index`` as read: room time of its first sample, its samples (read from disk as sliced)."""
        return self._offsets[index], SampleFile(self._path(index), np.int16)

    def languages(self, model: WhisperModel) -> dict[str, tuple[Probabilities, float]]:
        """Each track's language evidence (:func:`transcribe.language.detect`) by label; none for a
        track without audio, nor from an English-only model."""
        if not speaks_language(model):
            return {}
        evidence = {}
        for i, label in enumerate(self.labels):
            _, samples = self.track(i)
            if len(samples):
                evidence[label] = detect(model, samples)
        return evidence

    def transcribe(
        self,
        model: WhisperModel,
        *,
        options: TranscribeOptions | None = None,
        rules: RoomRules | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> list[Word]:
        """:func:`~transcribe.room.transcribe_room` of the room: each word's ``speaker`` is its track's label."""
        if len(self.levels) != len(self.labels):
            raise ValueError(f"{len(self.levels)} of {len(self.labels)} tracks read")
        rules = rules or RoomRules()
        regions = overlap_regions(self.levels, rules)
        tracks = [
            RoomTrack(label, lv, self._clips(i, regions))
            for i, (label, lv) in enumerate(zip(self.labels, self.levels, strict=True))
        ]
        return transcribe_room(
            model,
            self.mix,
            offset=self.start,
            tracks=tracks,
            regions=regions,
            options=options,
            rules=rules,
            on_progress=on_progress,
        )

    def _clips(self, index: int, regions: Sequence[Region]) -> list[Clip]:
        """The track's audio over each region it speaks in, read from disk (only those stretches)."""
        offset, audio = self.track(index)
        if not any(index in r.spans for r in regions) or not len(audio):
            return []
        return track_clips(audio, offset=offset, speaker=self.labels[index], regions=regions, index=index)

    def _path(self, index: int) -> Path:
        return self._directory / f"track-{index}.s16"

    @property
    def _mix_path(self) -> Path:
        return self._directory / "mix.f32"


_BLOCK = 60 * SAMPLE_RATE
"""Samples of a track measured and summed at once: a minute, whole 20 ms level frames, so that the
blocks' levels joined are the track's."""


class _TrackFile:
    """A track's int16 samples on disk from room time ``start`` (its first piece's), placed as its pieces
    come as :class:`~transcribe.audio.Timeline` places them: silence (a hole) in gaps, a later piece
    over an earlier one where they overlap."""

    def __init__(self, index: int, path: Path, start: float) -> None:
        self.index = index
        self.start = start
        self._file = path.open("wb")
        self._end = 0  # samples written

    def write(self, offset: float, samples: np.ndarray) -> None:
        at = sample_at(offset, self.start)
        self._file.seek(2 * at)
        samples.astype(np.int16, copy=False).tofile(self._file)
        self._end = max(self._end, at + len(samples))

    def close(self) -> None:
        self._file.truncate(2 * self._end)  # a gap at the end is no sample
        self._file.close()


class Detection:
    """Every track's language evidence (:meth:`RoomAudio.languages`), detected on a thread of its own
    while the room pass runs.

    Whisper's beam search keeps 1.1-1.4 of two cores busy: detection on a
    model instance of its own (``model``, called on the thread), on a thread
    that first calls ``before`` (:func:`workers.mix.yield_cpu`: on Linux
    the priority is the thread's, and so that of the threads CTranslate2
    starts for the model it loads), takes the cycles the room pass leaves.
    The seven-speaker bench space's room pass with detection beside it at
    idle priority, in English: 10.3-10.9 s, against 12.9-13.4 s for
    detection (2.2-2.3 s) then the room pass; the room pass as fast beside it.
    """

    def __init__(
        self, audio: RoomAudio, model: Callable[[], WhisperModel], *, before: Callable[[], None] = lambda: None
    ) -> None:
        self._evidence: dict[str, tuple[Probabilities, float]] = {}
        self._error: BaseException | None = None
        # A daemon: a job that fails meanwhile must not wait on it to end.
        self._thread = threading.Thread(target=self._detect, args=(audio, model, before), daemon=True)
        self._thread.start()

    def _detect(self, audio: RoomAudio, model: Callable[[], WhisperModel], before: Callable[[], None]) -> None:
        try:
            before()
            self._evidence = audio.languages(model())
        except BaseException as e:  # raised to whoever asks for the evidence
            self._error = e

    def done(self) -> bool:
        return not self._thread.is_alive()

    def evidence(self) -> dict[str, tuple[Probabilities, float]]:
        """The evidence, once detection is done (waits for it); raises what detection raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._evidence
