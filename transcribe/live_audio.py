"""One live stream's RTP Opus packets as 16 kHz mono audio on the room clock.

The room agent receives each forwarding slot's packets as any listener
does and decodes them once here. Times come from the RTP timestamps,
anchored to the room clock by the arrival of the least delayed packet so
far: arrival times jitter by tens of milliseconds, timestamps do not. The
SFU forwards the agent nothing while a speaker is silent, so a stream is
bursts of speech with gaps; the timestamps count the gaps. A timestamp that has
drifted from arrival by more than ``max_drift`` (a sender's clock jump, a
long pause the sender did not count) anchors afresh.
"""

from __future__ import annotations

import logging

import av
import numpy as np

from transcribe.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

RTP_CLOCK = 48000
"""Opus in WebRTC always runs its RTP clock at 48 kHz."""


class OpusStream:
    """Decode one slot's Opus payloads in timestamp order into float32 chunks."""

    def __init__(self, *, max_drift: float = 1.0) -> None:
        self.max_drift = max_drift
        self._decoder = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate = RTP_CLOCK
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._anchor: tuple[int, float] | None = None
        """(extended RTP timestamp, room time) of the anchoring packet."""
        self._last_ts: int | None = None
        """Extended timestamp of the newest packet decoded."""
        self.decoded = 0
        self.dropped = 0

    def push(self, payload: bytes, timestamp: int, arrival: float) -> tuple[float, np.ndarray] | None:
        """Decode one packet that arrived at room time ``arrival``.

        Returns ``(room time of its first sample, samples)``, or None for a
        packet that came too late (older than one already decoded) or does
        not decode.
        """
        ts = self._extend(timestamp)
        if self._last_ts is not None and ts <= self._last_ts:
            self.dropped += 1
            return None
        at = self._room_time(ts, arrival)
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except (av.error.InvalidDataError, ValueError) as e:
            log.debug("undecodable Opus packet dropped: %s", e)
            self.dropped += 1
            return None
        self._last_ts = ts
        pieces = [r.to_ndarray().reshape(-1) for f in frames for r in self._resampler.resample(f)]
        if not pieces:
            return None
        self.decoded += 1
        return at, np.concatenate(pieces).astype(np.float32, copy=False)

    def _extend(self, timestamp: int) -> int:
        """The 32-bit RTP timestamp unwrapped near the previous one."""
        if self._last_ts is None:
            return timestamp
        delta = (timestamp - self._last_ts) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        return self._last_ts + delta

    def _room_time(self, ts: int, arrival: float) -> float:
        if self._anchor is not None:
            ts0, room0 = self._anchor
            at = room0 + (ts - ts0) / RTP_CLOCK
            if arrival - self.max_drift <= at <= arrival:
                return at
            # A packet earlier than its timestamp says: the anchoring one came late
            # (the SFU sends what came just before speech in a burst, after a silence
            # it did not forward). The least delayed packet anchors best.
        self._anchor = (ts, arrival)
        return arrival
