"""The room's speakers summed on the room clock as they arrive: the live mix behind the HLS.

Each speaker's decoded chunks (16 kHz float, room-clock times from
``transcribe.live_audio``) are added into one buffer at their place; the
writer takes the mix up to a horizon a little behind now, so packets that
arrive late by less than the jitter margin still land where they belong,
and what nobody said is silence. Levels follow the replay mix's rule
(``workers.mix.speech_gain``) measured over the speech heard so far, moved
in small steps so a speaker's level never jumps audibly.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np

from workers.mix import speech_gain

RATE = 16_000
_FRAME = RATE // 50
"""20 ms, the replay mix's level frame."""
#: Frames of each speaker's levels the gain is measured over (5 minutes).
HISTORY_FRAMES = 50 * 300
#: The gain is re-measured after this many new frames (half a second) ...
REMEASURE_FRAMES = 25
#: ... and moves towards it by at most this much per chunk.
MAX_STEP_DB = 1.0
#: Audio further ahead of the mix than this is a clock error, not jitter: dropped.
MAX_AHEAD = 30.0


@dataclass
class _Level:
    powers: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=HISTORY_FRAMES))
    remainder: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    since_measure: int = 0
    target_db: float | None = None
    gain_db: float = 0.0

    def gain_for(self, samples: np.ndarray) -> float:
        """The linear gain for this chunk, after taking its levels into account."""
        pending = np.concatenate([self.remainder, samples])
        n = len(pending) // _FRAME
        if n:
            self.powers.extend((pending[: n * _FRAME].reshape(n, _FRAME) ** 2).mean(axis=1).tolist())
            self.since_measure += n
        self.remainder = pending[n * _FRAME :]
        # Not before a first half second is heard: the quiet onset of a first word
        # alone would ask for the largest gain.
        if self.since_measure >= REMEASURE_FRAMES:
            self.target_db = speech_gain(np.fromiter(self.powers, dtype=np.float64))
            self.since_measure = 0
        if self.target_db is not None:
            step = max(-MAX_STEP_DB, min(MAX_STEP_DB, self.target_db - self.gain_db))
            self.gain_db += step
        return float(10 ** (self.gain_db / 20))


class LiveMix:
    """Speakers' chunks in, the room's mix out, from room time ``start`` on."""

    def __init__(self, *, start: float) -> None:
        self.start = start
        self._taken = 0
        """Samples taken so far: counted, not summed in seconds, so times never drift."""
        self._buffer = np.zeros(0, dtype=np.float32)
        self._levels: dict[str, _Level] = {}
        self.late_samples = 0
        """Samples that arrived after their place had been taken (heard by nobody)."""

    def add(self, speaker: str, at: float, samples: np.ndarray) -> None:
        level = self._levels.setdefault(speaker, _Level())
        gain = level.gain_for(samples)
        offset = round((at - self.mixed_until) * RATE)
        if offset < 0:
            self.late_samples += min(len(samples), -offset)
            samples = samples[-offset:]
            offset = 0
        if not len(samples) or offset > MAX_AHEAD * RATE:
            return
        end = offset + len(samples)
        if end > len(self._buffer):
            self._buffer = np.concatenate([self._buffer, np.zeros(end - len(self._buffer), dtype=np.float32)])
        self._buffer[offset:end] += samples * gain

    @property
    def mixed_until(self) -> float:
        """Room time of the first sample not taken yet."""
        return self.start + self._taken / RATE

    def gain_db(self, speaker: str) -> float:
        level = self._levels.get(speaker)
        return level.gain_db if level else 0.0

    def take(self, until: float) -> np.ndarray:
        """The mix from ``mixed_until`` to room time ``until`` (silence where nobody spoke)."""
        n = round((until - self.mixed_until) * RATE)
        if n <= 0:
            return np.zeros(0, dtype=np.float32)
        out = np.zeros(n, dtype=np.float32)
        have = min(n, len(self._buffer))
        out[:have] = self._buffer[:have]
        self._buffer = self._buffer[have:]
        self._taken += n
        # Two loud speakers at once may sum past full scale.
        np.clip(out, -1.0, 1.0, out=out)
        return out
