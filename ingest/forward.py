"""Pass-through forwarding: one speaker's packets to every listener, built once.

A room has *slots*: one outbound RTP stream each, with an SSRC fixed for the
room's lifetime, negotiated once with every participant as a ``sendonly``
m-line. A speaker occupies a slot while publishing; when they leave, the
slot is free for the next speaker, so a speaker change needs no
renegotiation unless every slot is taken.

Per incoming packet the slot rewrites sequence number and timestamp (so a
slot's stream stays continuous across speakers, as receivers' jitter
buffers and SRTP replay windows require), builds the RTP packet once, and
hands the same bytes to each listener's ``Sink`` (protect + send).
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable

from aiortc.rtp import RtpPacket

from ingest.fastpath import AUDIO_LEVEL_EXT_ID, OPUS_PAYLOAD_TYPE, Sink
from ingest.opus import CLOCK_RATE

_HEADER = struct.Struct("!BBHII")
#: RFC 8285 one-byte header extension block carrying one 1-byte element.
_EXT_PREFIX = b"\xbe\xde\x00\x01"
_EXT_ID_BYTE = (AUDIO_LEVEL_EXT_ID << 4) | 0  # length field is (bytes - 1) = 0


def _seq_newer(a: int, b: int) -> bool:
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class Slot:
    def __init__(self, index: int, *, ssrc: int | None = None) -> None:
        self.index = index
        self.ssrc = ssrc if ssrc is not None else random.getrandbits(32)
        self.publisher: str | None = None
        self._sinks: dict[str, Sink] = {}
        self._targets: tuple[Callable[[bytes], None], ...] = ()
        # Output stream state, continuous across publishers.
        self._out_seq = random.getrandbits(15)
        self._out_ts = random.getrandbits(32)
        self._out_time: float | None = None
        self._in_ssrc: int | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self.forwarded = 0
        self.sent = 0

    # --- who listens -------------------------------------------------------------

    def add_sink(self, identity: str, sink: Sink) -> None:
        self._sinks[identity] = sink
        self._rebuild()

    def remove_sink(self, identity: str) -> None:
        if self._sinks.pop(identity, None) is not None:
            self._rebuild()

    def has_sink(self, identity: str) -> bool:
        return identity in self._sinks

    def _rebuild(self) -> None:
        # The publisher never hears themselves.
        self._targets = tuple(s.send for who, s in self._sinks.items() if who != self.publisher)

    @property
    def listeners(self) -> int:
        return len(self._targets)

    # --- who speaks --------------------------------------------------------------

    def occupy(self, identity: str) -> None:
        self.publisher = identity
        self._in_ssrc = None
        self._rebuild()

    def vacate(self) -> None:
        self.publisher = None
        self._in_ssrc = None
        self._rebuild()

    # --- the hot path ------------------------------------------------------------

    def forward_packet(self, packet: RtpPacket) -> int | None:
        """Forward a parsed packet; returns its audio level (0 loudest, 127 silence), if it has one."""
        level = packet.extensions.audio_level
        self.forward(
            ssrc=packet.ssrc,
            seq=packet.sequence_number,
            ts=packet.timestamp,
            marker=packet.marker,
            payload=packet.payload,
            # RFC 6464's byte as received: the voice-activity bit and the level.
            level=None if level is None else ((0x80 if level[0] else 0) | (level[1] & 0x7F)),
        )
        return None if level is None else level[1] & 0x7F

    def forward(self, *, ssrc: int, seq: int, ts: int, marker: int, payload: bytes, level: int | None) -> None:
        now = time.monotonic()
        if ssrc != self._in_ssrc:
            # A new input stream: continue our output where it stopped, with
            # the timestamp advanced by the wall time in between.
            self._in_ssrc = ssrc
            next_seq = (self._out_seq + 1) & 0xFFFF
            advance = 0 if self._out_time is None else int((now - self._out_time) * CLOCK_RATE)
            next_ts = (self._out_ts + max(advance, 960)) & 0xFFFFFFFF
            self._seq_offset = (next_seq - seq) & 0xFFFF
            self._ts_offset = (next_ts - ts) & 0xFFFFFFFF
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        if _seq_newer(out_seq, self._out_seq):
            self._out_seq = out_seq
            self._out_ts = out_ts
            self._out_time = now
        if level is None:
            packet = _HEADER.pack(0x80, (marker << 7) | OPUS_PAYLOAD_TYPE, out_seq, out_ts, self.ssrc) + payload
        else:
            packet = b"".join(
                (
                    _HEADER.pack(0x90, (marker << 7) | OPUS_PAYLOAD_TYPE, out_seq, out_ts, self.ssrc),
                    _EXT_PREFIX,
                    bytes((_EXT_ID_BYTE, level & 0xFF, 0, 0)),
                    payload,
                )
            )
        targets = self._targets
        for send in targets:
            send(packet)
        self.forwarded += 1
        self.sent += len(targets)
