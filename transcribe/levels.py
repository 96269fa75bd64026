"""Loudness of a track over time, for telling a speaker's voice from bleed.

Speaker A's voice reaches B's microphone too, much quieter. Comparing the
two tracks' levels while a word is said tells whose microphone it was spoken
into. One byte per 20 ms frame is plenty (1 dB steps), so a three-hour
track's levels are half a megabyte, stored beside its words.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from transcribe.audio import SAMPLE_RATE

FLOOR_DB = -120.0
"""Digital silence; quieter frames are stored as this."""

_BLOCK_FRAMES = 1 << 12  # 82 s of 20 ms frames at a time


@dataclass(frozen=True, eq=False)
class Levels:
    """RMS level in dBFS of each ``hop``-second frame, the first at room time ``start``."""

    start: float
    hop: float
    db: np.ndarray

    @property
    def end(self) -> float:
        return self.start + self.hop * len(self.db)

    def loudness(self, start: float, end: float, *, quantile: float = 0.9) -> float:
        """How loud the track is between two room times.

        A high quantile of the frames rather than their mean, so that the
        pauses between syllables do not count; outside the track: the floor.
        """
        lo = max(0, int((start - self.start) / self.hop))
        hi = min(len(self.db), int(np.ceil((end - self.start) / self.hop)))
        if hi <= lo:
            return FLOOR_DB
        return float(np.quantile(self.db[lo:hi], quantile))

    def at(self, times: np.ndarray) -> np.ndarray:
        """Level (dBFS) at each room time; the floor outside the track."""
        index = np.floor((np.asarray(times, dtype=np.float64) - self.start) / self.hop).astype(np.int64)
        inside = (index >= 0) & (index < len(self.db))
        out = np.full(index.shape, FLOOR_DB, dtype=np.float32)
        out[inside] = self.db[index[inside]]
        return out

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON form: whole dB below full scale, one byte a frame, base64."""
        steps = np.clip(np.rint(-self.db), 0, -FLOOR_DB).astype(np.uint8)
        return {
            "start": round(self.start, 6),
            "hop": self.hop,
            "encoding": "u8-neg-db",
            "db": base64.b64encode(steps.tobytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Levels:
        if data.get("encoding", "u8-neg-db") != "u8-neg-db":
            raise ValueError(f"unknown levels encoding {data['encoding']!r}")
        steps = np.frombuffer(base64.b64decode(data["db"]), dtype=np.uint8)
        return cls(start=float(data["start"]), hop=float(data["hop"]), db=-steps.astype(np.float32))


def levels(audio: np.ndarray, *, offset: float, hop: float = 0.02) -> Levels:
    """Per-frame RMS level of a track.

    Args:
        audio: The track, mono float32 (or int16) at 16 kHz.
        offset: Room time of ``audio[0]``.
        hop: Frame length in seconds.
    """
    size = max(1, round(hop * SAMPLE_RATE))
    n_frames = -(-len(audio) // size)
    db = np.empty(n_frames, dtype=np.float32)
    # Block by block: squaring a three-hour track at once would copy it.
    for first in range(0, n_frames, _BLOCK_FRAMES):
        last = min(first + _BLOCK_FRAMES, n_frames)
        piece = audio[first * size : last * size]
        if len(piece) % size:  # only the last block is copied
            piece = np.pad(piece, (0, size - len(piece) % size))
        frames = piece.reshape(-1, size)
        if frames.dtype == np.int16:  # a block at a time in float: no float copy of the track
            frames = frames.astype(np.float32) / 32768.0
        power = np.einsum("ij,ij->i", frames, frames) / size
        # Clamped after the log too: float32 log10 of the floor's power is off by
        # an ulp on some CPUs, and silence must compare equal to FLOOR_DB.
        db[first:last] = np.maximum(10 * np.log10(np.maximum(power, 10 ** (FLOOR_DB / 10))), FLOOR_DB)
    return Levels(start=offset, hop=size / SAMPLE_RATE, db=db)
