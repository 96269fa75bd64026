"""The packet path off the control path: a publication forwards while its disk is stuck."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from ingest.fastpath import Sink, lean_protect
from ingest.forward import HANGOVER, PREROLL, Slot
from ingest.oggwriter import scan
from ingest.publication import Publication
from ingest.recorder import RecorderOptions, TrackRecorder
from ingest.spool import RoomRecord, SegmentMeta, SpaceSpool
from ingest.writer import ThreadWriter
from spaces.models import SpaceState
from tests.ingest.audio import opus_packets


def _listener() -> tuple[socket.socket, Sink, Session]:
    """A real SRTP sender session and a loopback socket pair; the receiving session to check what arrives."""
    key = secrets.token_bytes(30)
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inbox.bind(("127.0.0.1", 0))
    inbox.settimeout(5)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink = Sink(lean_protect(tx), out.sendto, out.sendto, inbox.getsockname())
    return inbox, sink, rx


def test_a_blocked_disk_does_not_stall_forwarding(tmp_path: Path) -> None:
    payloads = opus_packets(2.0)  # 100 packets: one 1 s segment closes on the way

    async def main() -> None:
        writer = ThreadWriter("test-writer")
        spool = SpaceSpool(tmp_path, "space1")
        closed: list[SegmentMeta] = []
        recorder = TrackRecorder(
            spool,
            track_id="00-alice",
            speaker="alice",
            options=RecorderOptions(segment_seconds=1.0),
            on_closed=closed.append,
            writer=writer,
        )
        slot = Slot(0, ssrc=0xABC)
        slot.occupy("alice")
        inbox, sink, rx = _listener()
        slot.add_sink("bob", sink)
        publication = Publication("alice", slot, open_recorder=lambda: recorder, clock=lambda: 0.0)

        # The disk hangs: the writer thread sits in a write that does not return.
        disk = threading.Event()
        writer.submit(disk.wait)
        try:
            for i, payload in enumerate(payloads):
                packet = RtpPacket(payload_type=96, sequence_number=i, timestamp=i * 960, ssrc=0x51)
                packet.payload = payload
                publication.on_packet(packet)
            # Every packet reached the listener, decrypted and in order, while nothing reached the disk.
            heard = [rx.unprotect(inbox.recvfrom(2048)[0]) for _ in payloads]
            assert [h[12:] for h in heard] == payloads
            assert slot.sent == len(payloads)
            assert writer.pending > 10 and closed == []
            assert not spool.segment_audio("00-alice", 0).exists()
        finally:
            disk.set()
        publication.stop()
        await writer.close()
        # Once the disk is back, the recording is whole: two closed segments, announced on the loop.
        assert [m.seq for m in closed] == [0, 1] and all(m.closed for m in closed)
        packets = sum(scan(spool.segment_audio("00-alice", m.seq).read_bytes()).audio_packets for m in closed)
        assert packets == len(payloads)
        assert json.loads(spool.segment_meta_path("00-alice", 1).read_text())["closed"]
        inbox.close()

    asyncio.run(main())


def test_a_muted_or_stopped_publication_forwards_and_records_nothing(tmp_path: Path) -> None:
    spool = SpaceSpool(tmp_path, "space2")
    recorder = TrackRecorder(spool, track_id="00-a", speaker="a", options=RecorderOptions(), on_closed=lambda m: None)
    slot = Slot(0)
    slot.occupy("a")
    opened: list[str] = []

    def open_recorder() -> TrackRecorder:
        opened.append("a")
        return recorder

    publication = Publication("a", slot, open_recorder=open_recorder, clock=lambda: 1.0)
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=960, ssrc=7)
    packet.payload = opus_packets(0.02)[0]
    publication.set_muted(True)
    publication.on_packet(packet)
    assert slot.forwarded == 0 and opened == []
    publication.set_muted(False)
    publication.on_packet(packet)
    assert slot.forwarded == 1 and opened == ["a"] and recorder.packets == 0  # held for reordering
    publication.stop()
    publication.on_packet(packet)
    assert slot.forwarded == 1 and recorder.packets == 1  # stop wrote out what was held


def test_room_record_phase_is_a_space_state_and_old_records_read_back(tmp_path: Path) -> None:
    spool = SpaceSpool(tmp_path, "space3")
    record = RoomRecord(space_id="space3", title="t", host="h", visibility="public", started_at=1.0)
    assert record.phase is SpaceState.LIVE
    spool.write_room(record)
    assert json.loads(spool.room_file.read_text())["phase"] == "live"
    # A room.json written before the enum ("ended" meant: every segment closed and synced).
    data = record.to_dict() | {"phase": "ended"}
    spool.room_file.write_text(json.dumps(data))
    assert spool.read_room().phase is SpaceState.ENDED


def test_the_agent_gets_a_speakers_packets_only_around_sound() -> None:
    """Speech-only sinks (the agent's): silence is held back, the onset comes with what preceded it."""
    now = [0.0]
    slot = Slot(0, ssrc=0x5A, clock=lambda: now[0])
    slot.occupy("alice")
    heard: dict[str, list[int]] = {"bob": [], "agent": []}

    def hear(who: str) -> Callable[[bytes, object], None]:
        return lambda data, addr: heard[who].append(struct.unpack_from("!H", data, 2)[0])

    for who in heard:
        # The sink's "protect" is the identity: the packet's sequence number is readable as sent.
        slot.add_sink(who, Sink(bytes, None, hear(who), None), speech_only=who == "agent")
    # Silence (level 127), speech (level 30), silence; packets every 1/64 s (exact in binary).
    step = 1 / 64
    levels = [127] * 100 + [30] * 25 + [127] * 100
    seqs = []
    for i, level in enumerate(levels):
        now[0] = i * step
        slot.forward(ssrc=9, seq=i, ts=i * 960, marker=0, payload=b"\x00", level=level)
        seqs.append(heard["bob"][-1])
    assert heard["bob"] == seqs  # listeners hear everything
    onset, last_sound = 100, 124
    gated = [seqs.index(s) for s in heard["agent"]]
    # The agent: the preroll just before the onset, the speech, the hangover after it; nothing else.
    hangover = int(HANGOVER / step)
    assert gated == list(range(onset - PREROLL, last_sound + hangover))
    assert slot.sent == len(heard["bob"]) + len(heard["agent"])
    # Packets without a level are never held back (their loudness is unknown): an onset, preroll and all.
    slot.forward(ssrc=9, seq=500, ts=500 * 960, marker=0, payload=b"\x00", level=None)
    assert len(heard["agent"]) == len(gated) + PREROLL + 1
