"""Audio that Whisper's callers read a stretch at a time: an array, or a file on disk.

The transcription path (:func:`transcribe.transcribe.transcribe`, the VAD,
language detection) only ever takes ``len(audio)`` and slices
``audio[a:b]`` of a few minutes at most (a Whisper call hears at most
:attr:`transcribe.room.RoomRules.call_speech` seconds). So a room's mix and
its tracks can stay on the worker's disk, each slice read when asked for:
a three-hour room's mix is 0.69 GB as float32, a track as much again where
it is read whole.

Read with ``np.fromfile`` at the slice's place, not a memory map: a map's
pages, once touched, count in the process's resident memory until it is
unmapped, so a pass over a three-hour mix would show all of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Samples(Protocol):
    """Mono float32 audio at 16 kHz: its length, and any stretch of it as an array."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice, /) -> np.ndarray: ...


class SampleFile:
    """Samples in a file (``dtype``: int16, read as float32 at full scale 1, or float32), from sample
    ``start`` to ``stop``; each slice is read from disk when asked for."""

    def __init__(self, path: Path, dtype: type[np.int16] | type[np.float32], start: int = 0, stop: int | None = None):
        self.path = path
        self.dtype = dtype
        self._itemsize = np.dtype(dtype).itemsize
        size = path.stat().st_size // self._itemsize
        self._start = min(start, size)
        self._stop = size if stop is None else max(self._start, min(stop, size))

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, key: slice, /) -> np.ndarray:
        a, b = self._bounds(key)
        with self.path.open("rb") as f:
            f.seek((self._start + a) * self._itemsize)
            samples = np.fromfile(f, dtype=self.dtype, count=b - a)
        if self.dtype is np.int16:
            scaled: np.ndarray = np.multiply(samples, 1 / 32768, dtype=np.float32)
            return scaled
        return samples

    def part(self, key: slice) -> SampleFile:
        """``self[key]`` still on disk."""
        a, b = self._bounds(key)
        return SampleFile(self.path, self.dtype, self._start + a, self._start + b)

    def _bounds(self, key: slice) -> tuple[int, int]:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"a SampleFile reads stretches (a slice with no step), not {key!r}")
        a, b, _ = key.indices(len(self))
        return a, max(a, b)


def part(audio: Samples, key: slice) -> Samples:
    """``audio[key]`` without reading it: an array's view, a file's part."""
    return audio.part(key) if isinstance(audio, SampleFile) else audio[key]
