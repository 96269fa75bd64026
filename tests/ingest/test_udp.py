"""The SFU's UDP sockets: drained reads with control first, and batched sends (real sockets on loopback)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from ingest import udp

STUN = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"x" * 12  # a binding request's header
DTLS = b"\x16\xfe\xfd" + b"d" * 20
RTCP_RR = b"\x81\xc9\x00\x07" + b"r" * 28


def rtp(seq: int, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 960, ssrc) + b"p" * 40


class Recorder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[int, bytes]] = []
        self.turn = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append((self.turn, data))


async def _turns(protocol: Recorder, until: int, limit: int = 500) -> None:
    """Let the loop run turn by turn (numbered) until ``until`` datagrams arrived."""
    for turn in range(1, limit):
        protocol.turn = turn
        await asyncio.sleep(0)
        if len(protocol.got) >= until:
            return
    raise AssertionError(f"only {len(protocol.got)} of {until} datagrams arrived")


def _backlog(port: int, media: int) -> None:
    """``media`` RTP packets, then one STUN check, one DTLS record and one RTCP report, all queued at once."""
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(media):
        out.sendto(rtp(i), ("127.0.0.1", port))
    for data in (STUN, DTLS, RTCP_RR):
        out.sendto(data, ("127.0.0.1", port))
    out.close()


async def _receive_backlog(*, drained: bool, media: int = 40) -> Recorder:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
    try:
        if drained:
            assert udp.take_over_socket(transport, protocol)
        await asyncio.sleep(0)
        _backlog(transport.get_extra_info("sockname")[1], media)
        await _turns(protocol, media + 3)
        return protocol
    finally:
        transport.close()


def test_asyncio_alone_reads_one_datagram_per_turn() -> None:
    """The cause: a consent check behind 40 RTP packets waits 40 loop turns."""
    protocol = asyncio.run(_receive_backlog(drained=False))
    turns = [t for t, _ in protocol.got]
    stun_turn = next(t for t, d in protocol.got if d == STUN)
    assert len(set(turns)) == 43 and stun_turn - turns[0] == 40


def test_a_drained_socket_hands_over_control_first_in_one_turn() -> None:
    protocol = asyncio.run(_receive_backlog(drained=True))
    turns = {t for t, _ in protocol.got}
    assert len(turns) == 1
    assert [d for _, d in protocol.got[:3]] == [STUN, DTLS, RTCP_RR]
    assert [d for _, d in protocol.got[3:]] == [rtp(i) for i in range(40)]


def test_drain_is_bounded_per_turn() -> None:
    """A flooded socket gives the loop back after ``DRAIN_BATCH`` datagrams."""
    media = udp.DRAIN_BATCH * 2
    protocol = asyncio.run(_receive_backlog(drained=True, media=media))
    per_turn: dict[int, int] = {}
    for t, _ in protocol.got:
        per_turn[t] = per_turn.get(t, 0) + 1
    assert max(per_turn.values()) == udp.DRAIN_BATCH and sum(per_turn.values()) == media + 3


def test_media_tap_takes_rtp_only() -> None:
    async def main() -> tuple[list[int], Recorder]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        seen: list[int] = []

        def tap(data: bytes, addr: Any) -> bool:
            seen.append((data[2] << 8) | data[3])
            return True

        try:
            udp.take_over_socket(transport, protocol, media_tap=tap)
            await asyncio.sleep(0)
            _backlog(transport.get_extra_info("sockname")[1], 10)
            for _ in range(100):
                await asyncio.sleep(0)
                if len(seen) == 10 and len(protocol.got) == 3:
                    break
            return seen, protocol
        finally:
            transport.close()

    seen, protocol = asyncio.run(main())
    assert seen == list(range(10)) and [d for _, d in protocol.got] == [STUN, DTLS, RTCP_RR]


def test_control_first_queue_serves_control_before_waiting_media() -> None:
    async def main() -> list[Any]:
        q = udp.ControlFirstQueue()
        for item in [(rtp(1), 1), (rtp(2), 1), (DTLS, 1), None, (RTCP_RR, 1), (rtp(3), 1)]:
            q.put_nowait(item)
        assert q.qsize() == 6
        return [await q.get() for _ in range(6)]

    order = asyncio.run(main())
    assert order == [(DTLS, 1), None, (RTCP_RR, 1), (rtp(1), 1), (rtp(2), 1), (rtp(3), 1)]


def test_aioice_connections_get_drained_control_first_sockets() -> None:
    """Through aioice itself: after ``install()``, a backlog reaches its queue in one turn, DTLS first."""
    import aioice

    udp.install()

    async def main() -> list[Any]:
        conn = aioice.Connection(ice_controlling=True, components=1)
        try:
            await conn.gather_candidates()
            await asyncio.sleep(0)
            port = conn.local_candidates[0].port
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(20):
                out.sendto(rtp(i), ("127.0.0.1", port))
            out.sendto(DTLS, ("127.0.0.1", port))
            out.close()
            for _ in range(3):
                await asyncio.sleep(0)
            assert isinstance(conn._queue, udp.ControlFirstQueue)
            return [conn._queue.get_nowait()[0] for _ in range(conn._queue.qsize())]
        finally:
            await conn.close()

    got = asyncio.run(main())
    assert got == [DTLS] + [rtp(i) for i in range(20)]


@pytest.mark.parametrize("batched", [True, False])
def test_sendmmsg_sends_what_sendto_sends(batched: bool) -> None:
    receivers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    for r in receivers:
        r.bind(("127.0.0.1", 0))
        r.settimeout(5)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    datagrams = [(rtp(i, ssrc=i % 3) + bytes([i]) * i, receivers[i % 3].getsockname()) for i in range(60)]
    try:
        if batched:
            assert udp.have_sendmmsg()
            sent = udp.sendmmsg(sender, datagrams)
        else:
            sent = udp._sendto_each(sender, datagrams)
        assert sent == 60
        for k, r in enumerate(receivers):
            expect = [d for i, (d, _) in enumerate(datagrams) if i % 3 == k]
            assert [r.recvfrom(2048)[0] for _ in expect] == expect
    finally:
        for s in (*receivers, sender):
            s.close()


def test_loop_watch_sees_a_stall_past_the_consent_deadline() -> None:
    """What cuts speakers off: a loop that runs late by more than aioice's 500 ms consent deadline."""
    import time

    from ingest.loopwatch import CONSENT_DEADLINE, LoopWatch

    async def main() -> dict[str, Any]:
        watch = LoopWatch()
        watch.start()
        while watch.wakeups < 2:
            await asyncio.sleep(0.01)
        time.sleep(CONSENT_DEADLINE + 0.1)  # one callback holds the loop (the stall being measured)
        wakeups = watch.wakeups
        while watch.wakeups == wakeups:
            await asyncio.sleep(0.01)
        watch.stop()
        return watch.snapshot()

    snap = asyncio.run(main())
    assert snap["lags_over_consent_deadline"] >= 1 and snap["lag_max"] >= 0.5
