"""Child process: the speakers and listeners of the rooms (aiortc ``SpaceClient``s), driven over stdin/stdout."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import say

FRAME_SECONDS = 0.02  # aiortc sends one 20 ms Opus frame per RTP packet


class Stream:
    """One incoming RTP stream: packets, the extended sequence numbers they span, arrival gaps."""

    __slots__ = ("received", "first", "last", "last_arrival", "max_gap")

    def __init__(self, seq: int, now: float) -> None:
        self.received = 1
        self.first = self.last = seq
        self.last_arrival = now
        self.max_gap = 0.0


class Streams:
    """Per incoming SSRC, constant memory, so one process can hold hundreds of listeners.

    Loss is the share of the sequence-number span that never arrived. A
    stream that stops early shows as a last arrival long before the
    speakers stopped; a stall, as a long gap between arrivals.
    """

    def __init__(self) -> None:
        self.by_ssrc: dict[int, Stream] = {}

    def feed(self, data: bytes) -> None:
        now = time.time()
        ssrc = int.from_bytes(data[8:12], "big")
        seq = (data[2] << 8) | data[3]
        s = self.by_ssrc.get(ssrc)
        if s is None:
            self.by_ssrc[ssrc] = Stream(seq, now)
            return
        s.received += 1
        if now - s.last_arrival > s.max_gap:
            s.max_gap = now - s.last_arrival
        s.last_arrival = now
        ext = s.last + ((seq - s.last + 0x8000) & 0xFFFF) - 0x8000
        if ext > s.last:
            s.last = ext
        elif ext < s.first:
            s.first = ext

    def report(self) -> list[dict[str, float]]:
        return [
            {"received": s.received, "expected": s.last - s.first + 1, "last_arrival": s.last_arrival,
             "max_gap": s.max_gap}
            for s in self.by_ssrc.values()
        ]  # fmt: skip


@dataclass
class Peer:
    identity: str
    url: str
    token: str
    host: bool
    expect: int
    """Streams this peer should hear (the room's speakers other than itself)."""
    audio: str | None
    client: Any = None
    track: Any = None
    streams: Streams = field(default_factory=Streams)
    sent: list[int] = field(default_factory=lambda: [0])
    send_gap: list[float] = field(default_factory=lambda: [0.0, 0.0])
    """[longest gap between packets sent, time of the last one]."""
    join_seconds: float | None = None
    error: str | None = None


def install_probes(peer: Peer) -> None:
    """Count packets at the bundled DTLS transport, after SRTP, skipping aiortc's RTP routing."""
    from aiortc.rtp import is_rtcp

    first = peer.client.pc.getTransceivers()[0]
    feed = peer.streams.feed

    async def handle_rtp(data: bytes, arrival_time_ms: int) -> None:
        feed(data)

    setattr(first.receiver.transport, "_handle_rtp_data", handle_rtp)  # noqa: B010
    if peer.track is None:
        return
    dtls = first.sender.transport
    original = dtls._send_rtp
    sent, gaps = peer.sent, peer.send_gap

    async def send_rtp(data: bytes) -> None:
        if not is_rtcp(data):
            now = time.time()
            if sent[0] and now - gaps[1] > gaps[0]:
                gaps[0] = now - gaps[1]
            gaps[1] = now
            sent[0] += 1
        await original(data)

    setattr(dtls, "_send_rtp", send_rtp)  # noqa: B010


def watch(peer: Peer) -> None:
    """Say on stderr (the process's log) when a peer connection fails or closes."""
    pc = peer.client.pc

    def _changed() -> None:
        if pc.connectionState in ("failed", "closed"):
            print(f"{time.strftime('%H:%M:%S')} {peer.identity}: connection {pc.connectionState}; "
                  f"errors {peer.client.errors[-1:]}", file=sys.stderr, flush=True)  # fmt: skip

    pc.on("connectionstatechange", _changed)


async def join(peer: Peer, gate: asyncio.Semaphore) -> None:
    import numpy as np

    from ingest.client import PcmTrack, SpaceClient

    try:
        async with gate:
            began = time.monotonic()
            if peer.audio is not None:
                peer.track = PcmTrack(np.load(peer.audio), loop=True)
            peer.client = SpaceClient(peer.url, peer.token, track=peer.track, decode=False)
            watch(peer)
            await peer.client.connect(timeout=30)
            if peer.client.errors:
                raise ConnectionError(peer.client.errors[0].get("message", "refused"))
            install_probes(peer)
        async with asyncio.timeout(30):
            # Joined means sending (a speaker) or hearing someone (a listener).
            while not (peer.sent[0] if peer.track is not None else peer.streams.by_ssrc):
                if peer.client.closed.is_set():
                    raise ConnectionError("closed by the SFU")
                await asyncio.sleep(0.01)
        peer.join_seconds = time.monotonic() - began
    except (TimeoutError, ConnectionError, OSError) as e:
        peer.error = f"{type(e).__name__}: {e}"


async def end_space(host: Peer) -> None:
    """The host ends the space, joining again first if its connection was lost."""
    from ingest.client import SpaceClient

    if host.client is not None and not host.client.closed.is_set():
        await host.client.send({"type": "end"})
        return
    print(f"{time.strftime('%H:%M:%S')} {host.identity}: joining again to end the space", file=sys.stderr, flush=True)
    again = SpaceClient(host.url, host.token, decode=False)
    try:
        await again.connect(timeout=30)
        await again.send({"type": "end"})
        async with asyncio.timeout(30):
            await again.closed.wait()
    except (TimeoutError, ConnectionError, OSError) as e:
        print(f"{host.identity}: could not end the space: {e!r}", file=sys.stderr, flush=True)
    finally:
        await again.close()


async def run_clients(spec: dict[str, Any]) -> None:
    import logging

    from ingest.ice import restrict_host_addresses

    # Warnings, and aioice's word on a connection that expires (consent), in this process's log.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice.ice").setLevel(logging.INFO)
    restrict_host_addresses(["127.0.0.1"])
    peers = [Peer(**p) for p in spec["peers"]]
    gate = asyncio.Semaphore(int(spec.get("join_concurrency", 5)))
    # Hosts first: the first join opens the room.
    for wave in ([p for p in peers if p.host], [p for p in peers if not p.host]):
        await asyncio.gather(*(join(p, gate) for p in wave))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(len(p.streams.by_ssrc) < p.expect for p in peers if not p.error):
        await asyncio.sleep(0.05)
    say({"ready": sum(1 for p in peers if not p.error), "errors": [p.error for p in peers if p.error][:5]})
    loop = asyncio.get_running_loop()
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "stop":
            for p in peers:
                if p.track is not None:
                    p.track.stop()
            await asyncio.sleep(0.3)  # the sender's loop notices the ended track on its next frame
            say(
                {
                    "sent": {
                        p.identity: {"packets": p.sent[0], "max_gap": p.send_gap[0], "last": p.send_gap[1]}
                        for p in peers
                        if p.track is not None
                    }
                }
            )
        elif command == "end":
            for p in peers:
                if p.host:
                    await end_space(p)
            live = [p.client.closed.wait() for p in peers if p.client is not None]
            try:
                async with asyncio.timeout(30):
                    await asyncio.gather(*live)
            except TimeoutError:
                pass
            say({"closed": sum(1 for p in peers if p.client is not None and p.client.closed.is_set())})
        else:  # "report", or the bench went away
            say(
                {
                    "peers": [
                        {
                            "identity": p.identity,
                            "expect": p.expect,
                            "streams": p.streams.report(),
                            "join_seconds": p.join_seconds,
                            "error": p.error,
                        }
                        for p in peers
                    ]
                }
            )
            closing = [p.client.close() for p in peers if p.client is not None]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await asyncio.gather(*closing, return_exceptions=True)
            return
