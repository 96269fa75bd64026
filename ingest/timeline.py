"""Placing a speaker's RTP timestamps on the room clock.

RTP timestamps are sample-accurate but start at a random value, wrap at
2**32 and tick on the sender's clock. Arrival times are on our clock but
carry network jitter. We take the sample positions from RTP and the anchor
from arrivals: for each stretch of audio, the anchor is fixed by the
*least delayed* packet (a minimum filter), which jitter can only make
later, never earlier. Re-anchoring at every segment boundary keeps a
sender whose clock runs fast or slow from drifting over an hour.
"""

from __future__ import annotations

from ingest.opus import CLOCK_RATE


class TimestampUnwrapper:
    """Maps 32-bit RTP timestamps onto a monotonic 64-bit sample counter."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._cycles = 0

    def unwrap(self, ts: int) -> int:
        if self._last is not None:
            delta = (ts - self._last) & 0xFFFFFFFF
            if delta >= 0x80000000:
                # Older than the last packet (reordered): same or previous cycle.
                if ts > self._last:
                    return ts + self._cycles - (1 << 32)
                return ts + self._cycles
            if ts < self._last:
                self._cycles += 1 << 32
        self._last = ts
        return ts + self._cycles


class RoomAnchor:
    """Maps unwrapped sample positions of one RTP stream to room-clock seconds.

    ``observe`` feeds (sample position, arrival time); ``to_room`` converts a
    sample position with the current anchor; ``rebase`` adopts the minimum
    filter of the packets seen since the last rebase if it differs by more
    than ``dead_band`` seconds, and returns how far the anchor moved.
    """

    def __init__(self, sample: int, arrival: float, *, dead_band: float = 0.005) -> None:
        self._sample0 = sample
        self._time0 = arrival
        self._min_skew: float | None = None
        self.dead_band = dead_band

    def to_room(self, sample: int) -> float:
        return self._time0 + (sample - self._sample0) / CLOCK_RATE

    def observe(self, sample: int, arrival: float) -> None:
        skew = arrival - self.to_room(sample)
        if self._min_skew is None or skew < self._min_skew:
            self._min_skew = skew

    @property
    def pending_correction(self) -> float:
        return self._min_skew or 0.0

    def rebase(self) -> float:
        shift = self.pending_correction
        self._min_skew = None
        if abs(shift) <= self.dead_band:
            return 0.0
        self._time0 += shift
        return shift
