"""Audio in: any file ffmpeg reads, as mono float32 at 16 kHz on the room clock.

(Or as int16, or at another rate, where Whisper is not the reader: a track's
levels need no float, the replay mix is at 48 kHz.)

Decoding goes through PyAV (FFmpeg's libraries), like faster-whisper's own
``decode_audio``, but is written for long tracks and damaged files:

- memory stays at one copy of the result: decoded samples go straight into
  an array sized from the container's duration (faster-whisper keeps an
  int16 buffer *and* a float copy, twice the memory of a three-hour track);
- a packet that does not decode is skipped (its time becomes silence, so
  what follows keeps its place on the clock), and a stream that breaks off
  keeps what decoded before: a file corrupt in the middle yields its good
  parts instead of an exception;
- a stream that changes sample rate or layout midway (chained Ogg) gets a
  new resampler instead of an error.
"""

from __future__ import annotations

import ctypes
import gc
import logging
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from transcribe.exceptions import AudioError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""Whisper's sample rate; every array in this package is at this rate."""

_BATCH = 1 << 18  # input samples resampled at once (5 s at 48 kHz)
_MAX_JITTER = 0.03  # seconds; a larger jump in timestamps is lost audio
_TRIM_EVERY = 64 << 20  # bytes of pieces released between two heap trims
_LIBC: ctypes.CDLL | bool | None = None

#: What samples are decoded as.
SampleType = type[np.float32] | type[np.int16]


class _Buffer:
    """A growable sample buffer that is, in the end, the result itself.

    Sized from the container's duration up front: numpy maps a large array
    lazily, so the memory becomes resident only as samples are written, and
    no second copy is ever made unless the duration was underestimated.
    (Collecting blocks and joining them would hold two copies at the end:
    glibc keeps freed blocks of this size in its heap.)
    """

    def __init__(self, expected_seconds: float | None, rate: int = SAMPLE_RATE, dtype: SampleType = np.float32) -> None:
        seconds = expected_seconds * 1.02 + 5 if expected_seconds else 600.0
        self.rate = rate
        self.data = np.empty(int(seconds * rate), dtype=dtype)
        self.size = 0

    def append(self, samples: np.ndarray) -> None:
        end = self.size + len(samples)
        if end > len(self.data):
            grown = np.empty(max(end, int(len(self.data) * 1.5)), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = samples
        self.size = end

    def result(self) -> np.ndarray:
        return self.data[: self.size]


def decode(path: str | Path, *, rate: int = SAMPLE_RATE, dtype: SampleType = np.float32) -> np.ndarray:
    """Decode an audio file to mono float32 samples at 16 kHz (or ``rate``, ``dtype``).

    Best effort on damaged files: packets that fail to decode are skipped,
    and if the container breaks off midway, what decoded before is returned.

    Args:
        path: Any file FFmpeg reads (Ogg/Opus, WAV, MP3, M4A, WebM...), any
            sample rate and channel count.
        rate: The samples' rate, Hz.
        dtype: ``np.float32`` (full scale 1.0) or ``np.int16``, half the memory.

    Returns:
        The samples, mono (channels averaged), at ``rate``.

    Raises:
        AudioError: The file is missing, empty, not audio, or nothing in it decodes.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is empty")
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError as e:
        raise AudioError(f"{path} is not an audio file ({e})") from e
    skipped = 0
    try:
        with container:
            if not container.streams.audio:
                raise AudioError(f"{path} has no audio stream")
            stream = container.streams.audio[0]
            blocks = _Buffer(_duration(container, stream), rate, dtype)
            skipped = _decode_stream(container, stream, blocks, path)
    finally:
        _collect_now_and_then()
    if blocks.size == 0:
        raise AudioError(f"{path} contains no decodable audio")
    if skipped:
        log.warning("%s: %d damaged packets skipped", path, skipped)
    return blocks.result()


def _duration(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The container's idea of the audio's length in seconds, if it has one."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _decode_stream(container: av.container.InputContainer, stream: av.AudioStream, blocks: _Buffer, path: Path) -> int:
    """Decode ``stream`` into ``blocks``; returns the number of packets skipped.

    Where packets were lost (a damaged Ogg page), the frame timestamps jump:
    the hole is filled with silence, so what follows stays at its time.
    """
    shape: tuple[str, str, int] | None = None
    fifo = av.AudioFifo()
    origin: float | None = None  # time of the first frame
    decoded = 0.0  # seconds of input decoded so far
    skipped = 0

    resampler: av.AudioResampler | None = None
    sample_format = "s16" if blocks.data.dtype == np.int16 else "flt"

    def resample(*, end: bool) -> None:
        # Frames go through the resampler in large batches: a filter-graph
        # call per 20 ms Opus frame costs more than the decoding itself.
        nonlocal resampler
        if resampler is None and not fifo.samples:
            return
        if resampler is None:
            resampler = av.AudioResampler(format=sample_format, layout="mono", rate=blocks.rate)
        outs = resampler.resample(fifo.read()) if fifo.samples else []
        if end:  # before a hole or a format change, and at the end of the stream
            outs = [*outs, *resampler.resample(None)]
            resampler = None
        for out in outs:
            blocks.append(out.to_ndarray().reshape(-1))

    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                skipped += 1
                continue
            for frame in frames:
                # PyAV's float time, not pts * time_base: that is Fraction
                # arithmetic, 6.2 us a 20 ms frame against 0.24 us (0.19 of
                # the 1.1 CPU-s that seven 90 s tracks take to decode).
                at = frame.time
                if at is not None:
                    origin = at if origin is None else origin
                    hole = at - origin - decoded
                    if hole > _MAX_JITTER:
                        resample(end=True)
                        blocks.append(np.zeros(round(hole * blocks.rate), dtype=blocks.data.dtype))
                        decoded += hole
                this = (frame.format.name, frame.layout.name, frame.sample_rate)
                if this != shape:
                    resample(end=True)
                    fifo = av.AudioFifo()
                    shape = this
                decoded += frame.samples / frame.sample_rate
                # The FIFO checks timestamps; ours are handled above.
                frame.pts = None
                fifo.write(frame)
                if fifo.samples >= _BATCH:
                    resample(end=False)
    except av.FFmpegError as e:
        log.warning("%s: decoding stopped at %.1f s (%s); keeping what decoded", path, blocks.size / blocks.rate, e)
    try:
        resample(end=True)
    except av.FFmpegError:
        pass
    return skipped


class Timeline:
    """Pieces of one track placed on the room clock, silence in between.

    Add pieces as they are decoded; :meth:`build` copies them into one array
    and drops its reference to each piece as it goes, so a caller that does
    not keep the pieces itself peaks at one copy of the track plus one piece::

        line = Timeline()
        for segment in track.segments:
            line.add(segment.offset, decode(path_of(segment)))
        start, audio = line.build()
    """

    def __init__(self) -> None:
        self._pieces: list[tuple[float, np.ndarray]] = []

    def add(self, offset: float, samples: np.ndarray) -> None:
        """Place ``samples`` (16 kHz, all pieces float32 or all int16) first at room time ``offset``."""
        self._pieces.append((float(offset), samples))

    def build(self) -> tuple[float, np.ndarray]:
        """Room time of the first sample, and the samples.

        Where pieces overlap (clock jitter between segments), the later
        piece wins. With no pieces: ``(0.0, empty array)``.
        """
        if not self._pieces:
            return 0.0, np.zeros(0, dtype=np.float32)
        pieces = sorted(self._pieces, key=lambda p: p[0])
        self._pieces = []
        start = pieces[0][0]
        length = max(sample_at(offset, start) + len(samples) for offset, samples in pieces)
        # np.zeros maps pages lazily: gaps (a speaker who left) cost no memory.
        out = np.zeros(length, dtype=pieces[0][1].dtype)
        freed = 0
        while pieces:
            offset, samples = pieces.pop(0)
            at = sample_at(offset, start)
            out[at : at + len(samples)] = samples
            freed += samples.nbytes
            del samples
            if freed > _TRIM_EVERY:
                _release_freed_memory()
                freed = 0
        return start, out


_DECODES_PER_COLLECT = 16
_decodes = 0


def _collect_now_and_then() -> None:
    """Run the cycle collector after every sixteenth decode.

    PyAV's resampler graphs were only freed by the cycle collector
    (faster-whisper issue 390; PyAV 18 leaves no cycle here): without a
    collection now and then, long workers grew. After every decode it cost
    more than the decoding: a full collection takes 10 to 200 ms with a
    model and a test run in the heap, and a room job decodes every segment
    of every track (70 for seven one-minute tracks: a third of its CPU).
    At most sixteen decodes' garbage waits.
    """
    global _decodes
    _decodes += 1
    if _decodes % _DECODES_PER_COLLECT == 0:
        gc.collect()


def _release_freed_memory() -> None:
    """Give freed heap memory back to the system now.

    glibc keeps freed chunks below its mmap threshold (which grows to 32 MB)
    in the heap; released in order, the segments' memory would stay resident
    while the joined track fills up.
    """
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc: nothing to do
            _LIBC = False
    if isinstance(_LIBC, ctypes.CDLL):
        _LIBC.malloc_trim(0)


def sample_at(offset: float, start: float) -> int:
    """Where a piece starting at room time ``offset`` goes in a track whose first sample is at ``start``."""
    return max(0, round((offset - start) * SAMPLE_RATE))


def timeline(pieces: Sequence[tuple[float, np.ndarray]]) -> tuple[float, np.ndarray]:
    """Place (room-clock offset, samples) pieces on one array, silence in gaps.

    Turns a track's segments (gaps, a late join, a leave and rejoin) into one
    signal. The caller's list keeps every piece alive until it is dropped:
    for multi-hour tracks prefer :class:`Timeline`, which releases them.

    Args:
        pieces: ``(offset, samples)`` with offsets in seconds on the room clock
            and samples at 16 kHz, in any order.

    Returns:
        ``(start, samples)``: the room time of the first sample (the earliest
        offset) and the joined samples.
    """
    line = Timeline()
    for offset, samples in pieces:
        line.add(offset, samples)
    return line.build()
