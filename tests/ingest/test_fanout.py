"""The per-listener loop in C (``ingest.fanout``) against the Python one, on real SRTP sessions and sockets."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pylibsrtp import Policy, Session

from ingest import fanout
from ingest.fanout import Fanout, Target
from ingest.fastpath import Sink, lean_protect
from ingest.forward import Slot

PAYLOAD = secrets.token_bytes(120)


def _rtp(seq: int, *, payload: bytes = PAYLOAD, ssrc: int = 0x1234) -> bytes:
    return (
        bytes([0x80, 96]) + seq.to_bytes(2, "big") + (seq * 960).to_bytes(4, "big") + ssrc.to_bytes(4, "big") + payload
    )


def _inbox() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s


def _sink(session: Session, sock: socket.socket, addr: tuple[str, int], *, native: bool) -> Sink:
    target = Target.create(session, sock, addr) if native else None
    if native:
        assert target is not None, "ingest._fanout is not built: run python -m ingest.fanout_build"
    return Sink(lean_protect(session), sock.sendto, sock.sendto, addr, native=target)


@pytest.fixture(autouse=True)
def _c_path() -> Iterator[None]:
    assert fanout.configure("c"), "ingest._fanout is not built: run python -m ingest.fanout_build"
    yield
    fanout.configure("c")


def test_c_and_python_paths_send_the_same_bytes() -> None:
    """Twin sessions (same key), one per path: every listener's datagrams are byte for byte the same."""
    listeners = 20
    packets = [_rtp(i, payload=secrets.token_bytes(20 + i)) for i in range(50)]
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)
    c_boxes, py_boxes, c_sinks, py_sinks, rx = [], [], [], [], []
    for _ in range(listeners):
        key = secrets.token_bytes(30)
        c_box, py_box = _inbox(), _inbox()
        c_boxes.append(c_box)
        py_boxes.append(py_box)
        tx_c = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        tx_py = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        c_sinks.append(_sink(tx_c, out, c_box.getsockname(), native=True))
        py_sinks.append(_sink(tx_py, out, py_box.getsockname(), native=False))
        rx.append(Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND)))
    c_path, py_path = Fanout(c_sinks), Fanout(py_sinks)
    for packet in packets:
        c_path.send(packet)
        py_path.send(packet)
    for i in range(listeners):
        for packet in packets:
            got = c_boxes[i].recv(2048)
            assert got == py_boxes[i].recv(2048)
            assert got != packet and rx[i].unprotect(got) == packet
    assert all(s.errors == 0 for s in c_sinks + py_sinks)
    for s in [out, *c_boxes, *py_boxes]:
        s.close()


def test_a_slot_mixes_native_and_python_sinks_and_keeps_its_counters() -> None:
    """A slot with C sinks, a Python one and a speech-only one: each hears what it must, counters as before."""
    slot = Slot(0, ssrc=0xABC)
    slot.occupy("alice")
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    heard: dict[str, list[bytes]] = {"py": [], "agent": []}
    boxes, rx = {}, {}
    for who in ("bob", "carol"):
        key = secrets.token_bytes(30)
        boxes[who] = _inbox()
        rx[who] = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
        tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        slot.add_sink(who, _sink(tx, out, boxes[who].getsockname(), native=True))
    for who in heard:
        slot.add_sink(
            who,
            Sink(bytes, None, lambda data, addr, who=who: heard[who].append(data), None),
            speech_only=who == "agent",
        )
    slot.add_sink("alice", Sink(bytes, None, lambda data, addr: pytest.fail("the publisher heard itself"), None))
    for i in range(30):
        slot.forward(ssrc=7, seq=i, ts=i * 960, marker=0, payload=PAYLOAD, level=127)  # silence
    slot.forward(ssrc=7, seq=30, ts=30 * 960, marker=0, payload=PAYLOAD, level=10)  # an onset
    for who in ("bob", "carol"):
        assert [rx[who].unprotect(boxes[who].recv(2048)) for _ in range(31)] == heard["py"]
    # The agent got the preroll, then the onset.
    assert heard["agent"] == heard["py"][-13:]
    assert slot.forwarded == 31 and slot.sent == 31 * 3 + 13
    for s in [out, *boxes.values()]:
        s.close()


def test_failures_count_per_sink_and_the_others_still_get_the_packet() -> None:
    """A packet libsrtp refuses, one too long, a send the kernel refuses: errors, never a stopped fan-out."""
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    box = _inbox()
    good = _sink(
        Session(Policy(key=secrets.token_bytes(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
        out,
        box.getsockname(),
        native=True,
    )
    # An IPv6 destination on an IPv4 socket: sendto fails (not EAGAIN).
    v6 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bad = _sink(
        Session(Policy(key=secrets.token_bytes(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)), v6, ("::1", 9), native=True
    )
    path = Fanout([bad, good])
    path.send(_rtp(1))
    assert bad.errors == 1 and good.errors == 0 and len(box.recv(2048)) == 12 + len(PAYLOAD) + 10
    path.send(b"\x80\x60\x00")  # shorter than an RTP header: libsrtp refuses it
    assert bad.errors == 2 and good.errors == 1
    path.send(_rtp(2, payload=bytes(1400)))  # past pylibsrtp's buffer, as on the Python path
    assert bad.errors == 3 and good.errors == 2
    path.send(_rtp(3))
    assert good.errors == 2 and len(box.recv(2048)) == 12 + len(PAYLOAD) + 10
    for s in (out, v6, box):
        s.close()


def test_a_full_socket_queues_the_protected_bytes_once() -> None:
    """EAGAIN: the bytes C protected go to the transport's queue, never protected twice (libsrtp would refuse).

    A TCP connection nobody reads fills its send buffer, which loopback UDP never does;
    TCP ignores ``sendto``'s address, so it stands in for a listener's socket here.
    """
    key = secrets.token_bytes(30)
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    queued: list[bytes] = []
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    target = Target.create(tx, client, ("127.0.0.1", 9))
    sink = Sink(lean_protect(tx), None, lambda data, addr: queued.append(data), ("127.0.0.1", 9), native=target)
    path = Fanout([sink])
    packets = [_rtp(i) for i in range(2000)]
    for packet in packets:
        path.send(packet)
    assert len(queued) > 100, "the send buffer never filled"
    assert sink.errors == 0
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    # What went out before the buffer filled, in order, then what was queued: each decrypts to its packet.
    size = len(packets[0]) + 10
    peer.settimeout(5)
    first = b""
    while len(first) < 10 * size:
        first += peer.recv(10 * size - len(first))
    assert [rx.unprotect(first[i * size : (i + 1) * size]) for i in range(10)] == packets[:10]
    for data in queued:
        plain = rx.unprotect(data)
        assert plain == packets[int.from_bytes(plain[2:4], "big")]
    for s in (server, client, peer):
        s.close()


def test_a_closed_socket_never_sends_on_its_reused_fd_number() -> None:
    """aioice closes a listener's socket while a slot still lists it: the packets go where they went, not to
    whatever socket got the fd number next (here a TCP connection, as a websocket would be)."""
    key = secrets.token_bytes(30)
    box = _inbox()
    ice = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    number = ice.fileno()
    slot = Slot(0)
    slot.add_sink(
        "bob", _sink(Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)), ice, box.getsockname(), native=True)
    )
    ice.close()
    server = socket.create_server(("127.0.0.1", 0))
    reused = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    others = [socket.socket() for _ in range(4)]
    # The new socket (or one of the sockets opened just after) took the closed socket's number.
    assert number in {reused.fileno(), server.fileno(), peer.fileno(), *(o.fileno() for o in others)}
    for i in range(20):
        slot.forward(ssrc=1, seq=i, ts=i * 960, marker=0, payload=PAYLOAD, level=None)
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(1024)
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    assert [rx.unprotect(box.recv(2048))[12:] for _ in range(20)] == [PAYLOAD] * 20
    for s in [box, server, reused, peer, *others]:
        s.close()


def test_dropped_sinks_close_their_fds() -> None:
    """Each native sink holds a dup of its socket's fd, closed when the sink goes: no fd leak."""
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    slot = Slot(0)
    for i in range(50):
        slot.add_sink(
            f"l{i}",
            _sink(
                Session(Policy(key=secrets.token_bytes(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
                out,
                ("127.0.0.1", 9),
                native=True,
            ),
        )
    assert len(os.listdir("/proc/self/fd")) == before + 50
    slot.forward(ssrc=1, seq=0, ts=0, marker=0, payload=PAYLOAD, level=None)
    for i in range(50):
        slot.remove_sink(f"l{i}")
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before
    out.close()


def test_a_cleared_slot_closes_its_fds_at_once() -> None:
    """A room's end clears its slots (``Room._close``): the dups, and with them the listeners' sockets and UDP
    ports, close then, not at the next garbage collection (a room is freed only by the cycle collector)."""
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    slot = Slot(0)
    session = Session(Policy(key=secrets.token_bytes(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    for i in range(10):
        slot.add_sink(f"l{i}", _sink(session, out, ("127.0.0.1", 9), native=True), speech_only=i % 2 == 0)
    slot.forward(ssrc=1, seq=0, ts=0, marker=0, payload=PAYLOAD, level=None)
    assert len(os.listdir("/proc/self/fd")) == before + 10
    gc.disable()
    try:
        slot.clear()
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        gc.enable()
    assert slot.listeners == 0
    out.close()


def test_ipv6_listeners_get_their_packets() -> None:
    out = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    box = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    box.bind(("::1", 0))
    box.settimeout(5)
    key = secrets.token_bytes(30)
    sink = _sink(Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)), out, box.getsockname(), native=True)
    Fanout([sink]).send(_rtp(7))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    assert rx.unprotect(box.recv(2048)) == _rtp(7)
    assert sink.errors == 0
    out.close()
    box.close()


def test_c_refuses_a_packet_longer_than_its_scratch() -> None:
    """The C loop checks the length itself (its caller does too): nothing is copied or sent."""
    lib, ffi = fanout._native.lib, fanout._native.ffi
    box, out = _inbox(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    box.settimeout(0.2)
    session = Session(Policy(key=secrets.token_bytes(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    sink = _sink(session, out, box.getsockname(), native=True)
    assert sink.native is not None
    array = ffi.new("fanout_target[]", 1)
    array[0] = sink.native.struct[0]
    status, length = ffi.new("int *"), ffi.new("int *")
    scratch = ffi.new("unsigned char[]", lib.FANOUT_SCRATCH)
    packet = _rtp(1, payload=bytes(lib.FANOUT_MAX_PACKET))
    assert lib.fanout_send(array, 0, 1, packet, len(packet), scratch, status, length) == 0
    assert status[0] == lib.FANOUT_PROTECT_FAILED
    with pytest.raises(TimeoutError):
        box.recv(2048)
    box.close()
    out.close()


def test_without_the_module_the_sfu_warns_once_and_uses_python(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No C compiler at install: one clear warning, and sinks get the Python path (same bytes, tested above)."""
    monkeypatch.setattr(fanout, "_native", None)
    monkeypatch.setattr(fanout, "_warned", False)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = Session(Policy(key=secrets.token_bytes(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    with caplog.at_level(logging.WARNING, logger="ingest.fanout"):
        assert not fanout.configure("c")
        assert Target.create(tx, out, ("127.0.0.1", 9)) is None
        assert Target.create(tx, out, ("127.0.0.1", 9)) is None
    assert [r.message for r in caplog.records if "not built" in r.message] != []
    assert len(caplog.records) == 1
    out.close()


def test_python_mode_gives_python_sinks() -> None:
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = Session(Policy(key=secrets.token_bytes(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    fanout.configure("python")
    assert not fanout.native() and Target.create(tx, out, ("127.0.0.1", 9)) is None
    fanout.configure("c")
    assert fanout.native() and Target.create(tx, out, ("127.0.0.1", 9)) is not None
    out.close()


def test_parked_senders_send_no_sender_reports() -> None:
    """A forwarding m-line's stock sender sends no RTCP of its own (its counts would be zeros), unlike a stock one."""
    from aiortc import RTCPeerConnection

    from ingest.fastpath import IdleTrack, park_sender

    async def scenario() -> None:
        sfu, listener = RTCPeerConnection(), RTCPeerConnection()
        parked = sfu.addTransceiver("audio", direction="sendonly")
        stock = sfu.addTransceiver("audio", direction="sendonly")
        park_sender(parked.sender, 0x1111)
        stock.sender.replaceTrack(IdleTrack())
        reports: dict[str, int] = {"parked": 0, "stock": 0}
        for name, t in (("parked", parked), ("stock", stock)):
            send = t.sender._send_rtcp

            async def counted(packets: Any, name: str = name, send: Any = send) -> None:
                reports[name] += 1
                await send(packets)

            t.sender._send_rtcp = counted
        await sfu.setLocalDescription(await sfu.createOffer())
        await listener.setRemoteDescription(sfu.localDescription)
        await listener.setLocalDescription(await listener.createAnswer())
        await sfu.setRemoteDescription(listener.localDescription)
        async with asyncio.timeout(30):
            while reports["stock"] < 3:  # a stock sender reports every 0.5-1.5 s
                await asyncio.sleep(0.05)
        assert reports["parked"] == 0
        await sfu.close()  # stock stop() waits on the parked task's events: it returns
        await listener.close()

    asyncio.run(scenario())


def test_uvloop_sockets_take_the_c_path() -> None:
    """uvloop's transports have no ``_sock``; the socket they name (a stand-in with the fd) is enough for C."""
    import uvloop

    key = secrets.token_bytes(30)
    box = _inbox()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        named = transport.get_extra_info("socket")
        assert not isinstance(named, socket.socket)
        tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        target = Target.create(tx, named, box.getsockname())
        assert target is not None
        Fanout([Sink(lean_protect(tx), None, transport.sendto, box.getsockname(), native=target)]).send(_rtp(5))
        transport.close()

    uvloop.run(scenario())
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    assert rx.unprotect(box.recv(2048)) == _rtp(5)
    box.close()


def test_a_real_connection_gets_a_native_sink_that_its_peer_hears() -> None:
    """Two aiortc peers over loopback: ``sink_for`` takes the C path with the live SRTP session and ICE socket."""
    from aiortc import RTCPeerConnection
    from aiortc.rtp import RtpPacket

    from ingest.fastpath import park_sender, sink_for, take_over_receiver

    async def scenario() -> None:
        sfu, listener = RTCPeerConnection(), RTCPeerConnection()
        slot = Slot(0)
        park_sender(sfu.addTransceiver("audio", direction="sendonly").sender, slot.ssrc)
        await sfu.setLocalDescription(await sfu.createOffer())
        await listener.setRemoteDescription(sfu.localDescription)
        heard: list[RtpPacket] = []
        take_over_receiver(listener.getTransceivers()[0].receiver, heard.append)
        await listener.setLocalDescription(await listener.createAnswer())
        await sfu.setRemoteDescription(listener.localDescription)
        async with asyncio.timeout(30):
            while (sink := sink_for(sfu.getTransceivers()[0])) is None:
                await asyncio.sleep(0.05)
        assert sink.native is not None
        slot.add_sink("bob", sink)
        async with asyncio.timeout(30):
            seq = 0
            while len(heard) < 5:
                slot.forward(ssrc=1, seq=seq, ts=seq * 960, marker=0, payload=PAYLOAD, level=None)
                seq += 1
                await asyncio.sleep(0.02)
        assert all(p.ssrc == slot.ssrc and p.payload == PAYLOAD for p in heard) and sink.errors == 0
        await sfu.close()
        await listener.close()

    asyncio.run(scenario())
