"""One published track and everything its packets feed: the packet path of a room.

LiveKit keeps the packet path (``pkg/sfu``: forwarders, down tracks) apart
from room state and control (``pkg/rtc``); so does this module. A
``Publication`` is the one owner of a speaker's published track while they
publish: the receiver hands it each packet directly (no room lookup, no
participant state), and it forwards the packet through its ``Slot`` and
records it with its ``TrackRecorder``, whose file work is queued to the
room's writer thread. The room only switches it on and off (``muted``,
``stop``) and reads its figures; nothing here waits on the disk or on room
bookkeeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiortc.rtp import RtpPacket

from ingest.forward import Slot
from ingest.recorder import TrackRecorder


class Publication:
    __slots__ = (
        "identity",
        "slot",
        "muted",
        "stopped",
        "level",
        "level_at",
        "_recorder",
        "_open_recorder",
        "_clock",
        "_record",
    )

    def __init__(
        self,
        identity: str,
        slot: Slot,
        *,
        open_recorder: Callable[[], TrackRecorder] | None,
        clock: Callable[[], float],
    ) -> None:
        """``open_recorder`` is asked once, at the first recorded packet; None: the speaker
        chose not to be recorded (forwarded live, never written). ``clock`` gives room-clock seconds."""
        self.identity = identity
        self.slot = slot
        self.muted = False
        self.stopped = False
        self.level = 127
        """The latest audio level (RFC 6464: 0 loudest, 127 silence) and when it came (monotonic)."""
        self.level_at = 0.0
        self._recorder: TrackRecorder | None = None
        self._open_recorder = open_recorder
        self._record = open_recorder is not None
        self._clock = clock

    # --- the hot path ------------------------------------------------------------

    def on_packet(self, packet: RtpPacket) -> None:
        if self.muted or self.stopped:
            return
        level = self.slot.forward_packet(packet)
        if level is not None:
            self.level = level
            self.level_at = time.monotonic()
        if not self._record:
            return
        recorder = self._recorder
        if recorder is None:
            assert self._open_recorder is not None
            recorder = self._recorder = self._open_recorder()
        recorder.write(ssrc=packet.ssrc, timestamp=packet.timestamp, payload=packet.payload, arrival=self._clock())

    # --- control (called by the room) ---------------------------------------------

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        if muted and self._recorder is not None:
            self._recorder.pause()

    @property
    def recording(self) -> bool:
        return self._record

    def set_recording(self, record: bool, open_recorder: Callable[[], TrackRecorder] | None = None) -> None:
        """The speaker's choice changed: stop writing (and close what is open), or start."""
        if record and open_recorder is not None:
            self._open_recorder = open_recorder
        self._record = record and self._open_recorder is not None
        if not record and self._recorder is not None:
            self._recorder.pause()

    def stop(self) -> None:
        """The speaker stopped publishing (left, demoted, the room ended): close what is open."""
        self.stopped = True
        if self._recorder is not None:
            self._recorder.pause()
