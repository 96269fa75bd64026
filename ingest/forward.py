"""Pass-through forwarding: one speaker's packets to every listener, built once.

A room has *slots*: one outbound RTP stream each, with an SSRC fixed for the
room's lifetime, negotiated once with every participant as a ``sendonly``
m-line. A speaker occupies a slot while publishing; when they leave, the
slot is free for the next speaker, so a speaker change needs no
renegotiation unless every slot is taken.

Per incoming packet the slot rewrites sequence number and timestamp (so a
slot's stream stays continuous across speakers, as receivers' jitter
buffers and SRTP replay windows require), builds the RTP packet once, and
hands the same bytes to its listeners' ``Sink``s (protect + send) through a
``Fanout``: one call into C for all of them (``ingest/fanout.py``).

A sink added ``speech_only`` (the room agent's) gets a slot's packets only
while its speaker makes a sound: it has nothing to do with silence, and
receiving it (SRTP, parsing, Opus decoding: 50 packets a second per
speaker) was most of the agent's CPU in a quiet room. The gate opens at the
first packet whose RFC 6464 level is at or above ``AUDIBLE_DBOV``, sends
the ``PREROLL`` packets before it first (a soft onset is not lost), and
closes ``HANGOVER`` seconds after the last audible packet (the pause that
ends an utterance is heard). Packets without a level always pass.
"""

from __future__ import annotations

import collections
import random
import struct
import time
from collections.abc import Callable

from aiortc.rtp import RtpPacket

from ingest.fanout import Fanout
from ingest.fastpath import AUDIO_LEVEL_EXT_ID, OPUS_PAYLOAD_TYPE, Sink
from ingest.opus import CLOCK_RATE

_HEADER = struct.Struct("!BBHII")
#: RFC 8285 one-byte header extension block carrying one 1-byte element.
_EXT_PREFIX = b"\xbe\xde\x00\x01"
_EXT_ID_BYTE = (AUDIO_LEVEL_EXT_ID << 4) | 0  # length field is (bytes - 1) = 0


#: Levels (RFC 6464: -dBov, 0 loudest, 127 silence) up to this are sound for
#: speech-only sinks: quieter than the room's "speaking" level (50), so a
#: soft start opens the gate.
AUDIBLE_DBOV = 60
#: Seconds speech-only sinks keep getting packets after the last audible one:
#: over the agent's end of utterance (0.5 s of silence), so a final never
#: waits for silence the agent has to make up.
HANGOVER = 1.0
#: Silent packets kept and sent to speech-only sinks when the gate opens (0.24 s):
#: under the agent's jitter margin (0.3 s), past which it has filled the gap with silence.
PREROLL = 12


def _seq_newer(a: int, b: int) -> bool:
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class Slot:
    def __init__(self, index: int, *, ssrc: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.index = index
        self._clock = clock
        self.ssrc = ssrc if ssrc is not None else random.getrandbits(32)
        self.publisher: str | None = None
        self._sinks: dict[str, Sink] = {}
        self._targets = Fanout()
        self._speech_only: set[str] = set()
        self._quiet_targets = Fanout()
        """Who gets a packet while the speaker is silent: all but the speech-only sinks."""
        self._gated = Fanout()
        """The speech-only sinks; empty: no gate, every packet to ``_targets``."""
        self._open_until = 0.0
        self._preroll: collections.deque[bytes] = collections.deque(maxlen=PREROLL)
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

    def add_sink(self, identity: str, sink: Sink, *, speech_only: bool = False) -> None:
        """``speech_only``: the sink gets packets only while the speaker makes a sound (see above)."""
        self._sinks[identity] = sink
        if speech_only:
            self._speech_only.add(identity)
        else:
            self._speech_only.discard(identity)
        self._rebuild()

    def remove_sink(self, identity: str) -> None:
        self._speech_only.discard(identity)
        if self._sinks.pop(identity, None) is not None:
            self._rebuild()

    def clear(self) -> None:
        """Drop every sink: their sockets' fds (the C path's dups) close now, not at the next collection."""
        self._sinks.clear()
        self._speech_only.clear()
        self._rebuild()

    def has_sink(self, identity: str) -> bool:
        return identity in self._sinks

    def _rebuild(self) -> None:
        # The publisher never hears themselves.
        targets = [(who, s) for who, s in self._sinks.items() if who != self.publisher]
        self._targets = Fanout(s for _, s in targets)
        self._quiet_targets = Fanout(s for who, s in targets if who not in self._speech_only)
        self._gated = Fanout(s for who, s in targets if who in self._speech_only)
        if not self._gated:
            self._preroll.clear()

    @property
    def listeners(self) -> int:
        return len(self._targets)

    # --- who speaks --------------------------------------------------------------

    def occupy(self, identity: str) -> None:
        self.publisher = identity
        self._in_ssrc = None
        self._preroll.clear()
        self._rebuild()

    def vacate(self) -> None:
        self.publisher = None
        self._in_ssrc = None
        self._preroll.clear()
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
        now = self._clock()
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
        if self._gated:
            targets = self._gate(packet, level, now)
        targets.send(packet)
        self.forwarded += 1
        self.sent += len(targets)

    def _gate(self, packet: bytes, level: int | None, now: float) -> Fanout:
        """Who gets ``packet`` when speech-only sinks listen: everyone while it is sound or just after."""
        if level is None or (level & 0x7F) <= AUDIBLE_DBOV:
            if now >= self._open_until:  # an onset: what came just before it first
                for old in self._preroll:
                    self._gated.send(old)
                self.sent += len(self._preroll) * len(self._gated)
                self._preroll.clear()
            self._open_until = now + HANGOVER
        if now < self._open_until:
            return self._targets
        self._preroll.append(packet)
        return self._quiet_targets
