"""SFU bench: one speaker to N listeners, our pass-through SFU against the naive one.

    .venv/bin/python bench/sfu.py            # full run (a few minutes)
    .venv/bin/python bench/sfu.py --quick    # fewer steps, shorter windows

Everything runs on loopback. The SFU under test is a separate process
pinned to CPU 0; the speaker and the listeners (``SpaceClient`` peers, N
spread over several processes) are pinned to CPU 1, so "one SFU core" is
literal. For each N it measures, over a fixed window once everyone is
connected:

- SFU CPU time (``/proc/<pid>/stat``) per forwarded packet and per
  listener stream;
- loss per listener (gaps in the RTP sequence numbers received);
- one-way delay speaker -> listener: the speaker sends 200 ms tone bursts
  once a second, and a listener spots each burst's first packet by its
  size (silence encodes to a few bytes), so the same probe works whether
  or not the SFU re-encodes; "added" is against the fast SFU with one
  listener;
- join-to-first-audio: from opening the socket to the first packet.

The naive SFU is aiortc's documented way: ``MediaRelay`` (decode once) and
one encoding ``RTCRtpSender`` per listener. Recording overhead per speaker
is measured separately (``TrackRecorder`` on real Opus packets).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_times, readline, udp_drops  # noqa: E402
from ingest.ice import restrict_host_addresses  # noqa: E402
from spaces import tokens  # noqa: E402
from tests.conftest import free_port, wait_for_port  # noqa: E402

HERE = Path(__file__).resolve()
PYTHON = sys.executable
SFU_CPU = {0}
CLIENT_CPU = {1} if (os.cpu_count() or 1) > 1 else {0}
PER_PROCESS = 100  # listener peers per client process
#: Shared with the child processes through the environment.
SECRET = os.environ.setdefault("BENCH_SECRET", "bench-" + secrets.token_hex(16))
#: Unlocks the SFU's per-room /stats (slot counters).
OPERATOR_TOKEN = secrets.token_urlsafe(32)
BURST_PERIOD = 1.0
BURST_LENGTH = 0.2
LOUD_BYTES = 40  # Opus packets of the tone are far bigger; of digital silence, far smaller


# --- shared pieces -------------------------------------------------------------------


def probe_signal() -> np.ndarray:
    """A 1 kHz tone for 200 ms, then digital silence, repeating every second."""
    t = np.arange(int(BURST_PERIOD * 48000)) / 48000
    tone = (np.sin(2 * np.pi * 1000 * t) * 8000).astype(np.int16)
    tone[int(BURST_LENGTH * 48000) :] = 0
    return tone


def pin(cpus: set[int], nice: int = 0) -> None:
    try:
        os.sched_setaffinity(0, cpus)
        if nice:
            os.nice(nice)
    except OSError:
        pass


# --- process: the naive SFU (MediaRelay, decode once, encode per listener) -----------------


async def naive_server(port: int) -> None:
    import websockets
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    from ingest.ice import rtc_configuration

    relay = MediaRelay()
    source: dict[str, Any] = {}
    have_source = asyncio.Event()
    peers: set[Any] = set()

    async def handle(ws: Any) -> None:
        join = json.loads(await ws.recv())
        claims = tokens.verify(SECRET, join["token"])
        await ws.send(json.dumps({"type": "welcome", "identity": claims.identity, "role": str(claims.role)}))
        pc = RTCPeerConnection(rtc_configuration())
        peers.add(pc)
        if claims.role.can_publish:
            t = pc.addTransceiver("audio", direction="recvonly")

            @pc.on("track")
            def _on_track(track: Any) -> None:
                source["track"] = track
                have_source.set()

            publish = True
        else:
            await have_source.wait()
            t = pc.addTransceiver(relay.subscribe(source["track"]), direction="sendonly")
            publish = False
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send(
            json.dumps(
                {
                    "type": "offer",
                    "rev": 1,
                    "sdp": pc.localDescription.sdp,
                    "publish_mid": t.mid if publish else None,
                    "slots": {} if publish else {t.mid: 0},
                }
            )
        )
        if not publish:
            await ws.send(json.dumps({"type": "state", "speakers": [{"identity": "speaker", "slot": 0}]}))
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "answer":
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
        finally:
            peers.discard(pc)
            await pc.close()

    async with websockets.serve(handle, "127.0.0.1", port, process_request=None, max_size=1 << 20):
        await asyncio.Future()


# --- process: the speaker ------------------------------------------------------------------


def rtp_payload_size(data: bytes) -> int:
    """Payload bytes of a plain RTP packet, from its header alone."""
    size = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= size + 4:
        size += 4 + 4 * ((data[size + 2] << 8) | data[size + 3])
    return len(data) - size


class Onsets:
    """Spots the first packet of each tone burst by its size (silence is tiny)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._quiet = 0

    def feed(self, payload_size: int, now: float) -> None:
        if payload_size > LOUD_BYTES:
            if self._quiet >= 5:
                self.times.append(now)
            self._quiet = 0
        else:
            self._quiet += 1


async def speaker(url: str, token: str) -> None:
    from aiortc.rtp import is_rtcp

    from ingest.client import PcmTrack, SpaceClient

    track = PcmTrack(probe_signal(), loop=True)
    client = SpaceClient(url, token, track=track)
    await client.connect()
    # Note when each burst really leaves (not when it was due): a starved
    # speaker process must not count as SFU delay.
    sent = Onsets()
    dtls = client.pc.getTransceivers()[0].sender.transport
    original = dtls._send_rtp

    async def send_rtp(data: bytes) -> None:
        if not is_rtcp(data):
            sent.feed(rtp_payload_size(data), time.time())
        await original(data)

    setattr(dtls, "_send_rtp", send_rtp)  # noqa: B010
    while track.started_at is None:
        await asyncio.sleep(0.01)
    print(json.dumps({"started_at": track.started_at}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(json.dumps({"onsets": sent.times}), flush=True)


# --- process: listeners ------------------------------------------------------------------------


class Probe:
    """Per listener: arrival time and sequence number of every packet, burst onsets."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.seqs: list[int] = []
        self.onsets = Onsets()

    def install(self, client: Any) -> None:
        """Count packets straight from the DTLS transport, after SRTP checks them.

        A bench listener needs no RTP parsing, routing or jitter buffer:
        without them one client CPU can play hundreds of listeners.
        """
        dtls = client.pc.getTransceivers()[0].receiver.transport
        arrivals, seqs, onsets = self.arrivals, self.seqs, self.onsets

        async def handle_rtp(data: bytes, arrival_time_ms: int) -> None:
            now = time.time()
            arrivals.append(now)
            seqs.append((data[2] << 8) | data[3])
            onsets.feed(rtp_payload_size(data), now)

        setattr(dtls, "_handle_rtp_data", handle_rtp)  # noqa: B010


def window_stats(probe: Probe, t0: float, t1: float) -> dict[str, Any]:
    received = len({s for a, s in zip(probe.arrivals, probe.seqs, strict=True) if t0 <= a <= t1})
    return {
        "received": received,
        # The speaker sends 50 packets a second, whatever the SFU does with them.
        "expected": (t1 - t0) * 50,
        "onsets": [t for t in probe.onsets.times if t0 <= t <= t1],
    }


async def listeners(url: str, tokens_: list[str]) -> None:
    from ingest.client import SpaceClient

    probes = [Probe() for _ in tokens_]
    clients = [SpaceClient(url, tok, decode=False) for tok in tokens_]
    joins: list[float] = []
    failed = 0
    sem = asyncio.Semaphore(5)

    async def join(client: SpaceClient, probe: Probe) -> None:
        nonlocal failed
        try:
            async with sem:
                opened = time.time()
                await client.connect(timeout=30)
                probe.install(client)
            async with asyncio.timeout(30):
                while not probe.arrivals:
                    if client.closed.is_set():
                        raise ConnectionError("closed by the SFU")
                    await asyncio.sleep(0.005)
            joins.append(probe.arrivals[0] - opened)
        except (TimeoutError, ConnectionError, OSError):
            failed += 1

    await asyncio.gather(*(join(c, p) for c, p in zip(clients, probes, strict=True)))
    print(json.dumps({"ready": True, "joins": joins, "failed": failed}), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    t0, t1 = (float(x) for x in line.split())
    print(json.dumps({"listeners": [window_stats(p, t0, t1) for p in probes]}), flush=True)
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def delays(sent: list[float], arrived: list[float]) -> list[float]:
    """Each arrival's delay after the latest burst sent before it."""
    out = []
    for a in arrived:
        before = [s for s in sent if s <= a]
        if before and a - before[-1] < BURST_PERIOD * 0.9:
            out.append(a - before[-1])
    return out


# --- the harness -------------------------------------------------------------------------------


class Step:
    def __init__(self, mode: str, n: int, window: float, workdir: Path) -> None:
        self.mode = mode
        self.n = n
        self.window = window
        self.workdir = workdir
        self.port = free_port()
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(
        self, args: list[str], cpus: set[int], env: dict[str, str] | None = None, *, nice: int = 0
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.workdir / "stderr.log", "a"),  # noqa: SIM115 - kept for the process's life
            text=True,
            env=env,
            preexec_fn=lambda: pin(cpus, nice),
        )
        self.procs.append(proc)
        return proc

    def start_server(self) -> tuple[subprocess.Popen[str], str, str]:
        space_id = uuid.uuid4().hex[:16]
        if self.mode == "fast":
            data = self.workdir / f"data-{self.port}"
            env = dict(os.environ)
            env.update(
                SPACES_DATA_DIR=str(data),
                SPACES_SECRET_KEY=SECRET,
                SPACES_OPERATOR_TOKEN=OPERATOR_TOKEN,
                SPACES_SFU_PORT=str(self.port),
                SPACES_SFU_ICE_ADDRESSES="127.0.0.1",
                SPACES_SFU_JOIN_BURST="100000",
                SPACES_SFU_MAX_PARTICIPANTS="100000",
                SPACES_SFU_EMPTY_TIMEOUT="600",
                SPACES_LOG_LEVEL="WARNING",
                REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                SPACES_QUEUE_NAME=f"bench-{uuid.uuid4().hex[:8]}",
            )
            from spaces.catalog import open_catalog
            from spaces.models import Space
            from spaces.settings import Settings

            catalog = open_catalog(Settings(data_dir=data))
            catalog.create_schema()
            catalog.put_space(Space(space_id=space_id, title="bench", host="speaker", created_at=time.time()))
            catalog.close()
            profile = os.environ.get("BENCH_PROFILE")
            cmd = [PYTHON, "-m", "cProfile", "-o", profile, "-m", "ingest"] if profile else [PYTHON, "-m", "ingest"]
            proc = self.spawn(cmd, SFU_CPU, env)
        else:
            proc = self.spawn([PYTHON, str(HERE), "naive-server", "--port", str(self.port)], SFU_CPU, nice=-10)
        wait_for_port(self.port)
        return proc, space_id, f"ws://127.0.0.1:{self.port}/spaces/{space_id}/rtc"

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            server = self.procs[0] if self.procs else None
            if server is not None and server.poll() is None:
                # A clean stop lets a profiled SFU write its profile.
                server.send_signal(2)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()

    def _run(self) -> dict[str, Any]:
        server, space_id, url = self.start_server()

        def tok(identity: str, role: tokens.Role) -> str:
            return tokens.issue(SECRET, space_id=space_id, role=role, identity=identity, ttl=3600)

        spk = self.spawn(
            [PYTHON, str(HERE), "speaker", "--url", url, "--token", tok("speaker", tokens.Role.HOST)],
            CLIENT_CPU,
            nice=-10,  # the speaker and the probe must not queue behind hundreds of listeners
        )
        json.loads(readline(spk, 30))
        groups = [list(range(i, min(i + PER_PROCESS, self.n))) for i in range(0, self.n, PER_PROCESS)]
        lst = []
        for group in groups:
            toks = ",".join(tok(f"l{i}", tokens.Role.LISTENER) for i in group)
            lst.append(
                self.spawn(
                    [
                        PYTHON,
                        str(HERE),
                        "listeners",
                        "--url",
                        url,
                        "--tokens",
                        toks,
                    ],
                    CLIENT_CPU,
                )
            )
        failed = 0
        for p in lst:
            failed += json.loads(readline(p, 600))["failed"]
        # The probe: one more listener in its own process (high priority),
        # joining the loaded room last. It never waits behind a hundred other
        # listeners on the client CPU, so its delays and join time are the
        # SFU's, not those of the overloaded client machine.
        probe = self.spawn(
            [
                PYTHON,
                str(HERE),
                "listeners",
                "--url",
                url,
                "--tokens",
                tok("probe", tokens.Role.LISTENER),
            ],
            CLIENT_CPU,
            nice=-10,
        )
        probe_join = json.loads(readline(probe, 90))
        joins, failed = probe_join["joins"], failed + probe_join["failed"]
        time.sleep(1.0)
        t0, cpu0, stats0, drops0 = time.time(), cpu_times(server.pid), self.sfu_stats(), udp_drops()
        time.sleep(self.window)
        t1, cpu1, stats1, drops1 = time.time(), cpu_times(server.pid), self.sfu_stats(), udp_drops()
        per_listener: list[dict[str, Any]] = []
        for p in [*lst, probe, spk]:
            assert p.stdin is not None
            p.stdin.write(f"{t0} {t1}\n")
            p.stdin.flush()
        for p in lst:
            per_listener += json.loads(readline(p, 60))["listeners"]
        probe_stats = json.loads(readline(probe, 60))["listeners"]
        per_listener += probe_stats
        measured = delays(json.loads(readline(spk, 60))["onsets"], probe_stats[0]["onsets"])
        cpu = sum(cpu1) - sum(cpu0)
        system = cpu1[1] - cpu0[1]
        if stats0 is not None and stats1 is not None:
            sent = stats1["sent"] - stats0["sent"]
        else:
            sent = self.n * self.window * 50  # the naive SFU keeps no counters: 50 packets/s each
        # A listener that never got audio counts as all lost.
        losses = [max(0.0, 1 - s["received"] / s["expected"]) for s in per_listener if s["received"]]
        losses += [1.0] * failed
        return {
            "mode": self.mode,
            "n": self.n,
            "failed": failed,
            "cpu_share": cpu / self.window,
            "system_share": system / self.window,
            "us_per_packet": cpu / sent * 1e6 if sent else float("nan"),
            "loss_mean": float(np.mean(losses)) if losses else 1.0,
            # Dropped by the kernel at listeners' full sockets: the client CPU fell behind.
            "client_drops": (drops1 - drops0) / max(1.0, (self.n + 1) * self.window * 50),
            # What the SFU handed to the kernel, against one packet per listener every 20 ms.
            "sfu_sent": sent / ((self.n + 1) * self.window * 50) if stats0 is not None else float("nan"),
            "loss_max": max(losses) if losses else 1.0,
            "delay_p50": float(np.percentile(measured, 50)) if measured else float("nan"),
            "delay_p95": float(np.percentile(measured, 95)) if measured else float("nan"),
            "join_p50": median(joins) if joins else float("nan"),
            "join_max": max(joins) if joins else float("nan"),
        }

    def sfu_stats(self) -> dict[str, float] | None:
        if self.mode != "fast":
            return None
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/stats", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            data = json.loads(r.read())
        sent = sum(s["sent"] for room in data["rooms"] for s in room["slots"])
        return {"sent": sent}


def fanout_cost(listeners: int = 500, packets: int = 200) -> dict[str, float]:
    """``Slot.forward`` alone: one packet to N real SRTP sessions and UDP sockets.

    The same code path as in the SFU, without the rest of the process, so
    it reads the same on a busy machine. Every sink sends to one loopback
    socket nobody reads: once its buffer is full the kernel drops what
    arrives, the cheapest delivery loopback has.
    """
    import resource
    import socket

    from pylibsrtp import Policy, Session

    from ingest.fastpath import Sink, lean_protect
    from ingest.forward import Slot

    slot = Slot(0)
    sink_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sink_sock.bind(("127.0.0.1", 0))
    target = sink_sock.getsockname()
    socks = [sink_sock]
    for i in range(listeners):
        key = secrets.token_bytes(30)
        session = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        socks.append(sock)
        slot.add_sink(f"l{i}", Sink(lean_protect(session), sock.sendto, sock.sendto, target))
    payload = secrets.token_bytes(120)
    before = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(packets):
        slot.forward(ssrc=1, seq=i, ts=i * 960, marker=0, payload=payload, level=40)
    after = resource.getrusage(resource.RUSAGE_SELF)
    for sock in socks:
        sock.close()
    user = (after.ru_utime - before.ru_utime) / (packets * listeners)
    system = (after.ru_stime - before.ru_stime) / (packets * listeners)
    per = user + system
    return {
        "us_per_listener_packet": per * 1e6,
        "user_us": user * 1e6,
        "system_us": system * 1e6,
        "streams_per_core": 1 / (per * 50),
    }


def recording_overhead(seconds: float = 60.0) -> dict[str, float]:
    """CPU of ``TrackRecorder`` per packet, on real Opus packets, with real files."""
    import av

    from ingest.recorder import RecorderOptions, TrackRecorder
    from ingest.spool import SpaceSpool

    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 48000, "mono", "s16", 32000
    enc.time_base = fractions.Fraction(1, 48000)
    rng = np.random.default_rng(1)
    packets: list[bytes] = []
    for i in range(0, int(seconds * 48000), 960):
        frame = av.AudioFrame.from_ndarray(
            (rng.standard_normal(960) * 3000).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, i
        packets += [bytes(p) for p in enc.encode(frame)]
    with tempfile.TemporaryDirectory() as tmp:
        spool = SpaceSpool(Path(tmp), "bench")
        closed: list[Any] = []
        rec = TrackRecorder(spool, track_id="t", speaker="s", options=RecorderOptions(), on_closed=closed.append)
        start = time.process_time()
        for i, p in enumerate(packets):
            rec.write(ssrc=1, timestamp=i * 960, payload=p, arrival=i * 0.02)
        rec.close()
        spent = time.process_time() - start
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*.ogg"))
    return {
        "us_per_packet": spent / len(packets) * 1e6,
        "core_share": spent / seconds,
        "bytes_per_second": size / seconds,
        "segments": len(closed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("naive-server")
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("speaker")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p = sub.add_parser("listeners")
    p.add_argument("--url", required=True)
    p.add_argument("--tokens", required=True)
    parser.add_argument("--quick", action="store_true", help="fewer steps, shorter windows")
    parser.add_argument("--fast", default="1,100,250,500", help="listener counts for the pass-through SFU")
    parser.add_argument("--naive", default="1,10,20,40", help="listener counts for the naive SFU")
    parser.add_argument("--window", type=float, default=6.0, help="seconds measured per step")
    args = parser.parse_args()
    restrict_host_addresses(["127.0.0.1"])
    os.environ.setdefault("SPACES_SECRET_KEY", SECRET)

    if args.cmd == "naive-server":
        asyncio.run(naive_server(args.port))
        return
    if args.cmd == "speaker":
        asyncio.run(speaker(args.url, args.token))
        return
    if args.cmd == "listeners":
        asyncio.run(listeners(args.url, args.tokens.split(",")))
        return

    if args.quick:
        args.fast, args.naive, args.window = "1,100,300", "1,10,20", 4.0
    fast_steps = [int(x) for x in args.fast.split(",") if x]
    naive_steps = [int(x) for x in args.naive.split(",") if x]
    results: list[dict[str, Any]] = []
    # Other work on the machine shows up as delay and loss (not as SFU CPU time): say how busy it was.
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-sfu-") as tmp:
        workdir = Path(tmp)
        for mode, steps in (("fast", fast_steps), ("naive", naive_steps)):
            for n in steps:
                began = time.monotonic()
                try:
                    row = Step(mode, n, args.window, workdir).run()
                except Exception as e:  # noqa: BLE001 - report the step and go on
                    print(f"{mode} n={n}: failed: {e}", file=sys.stderr)
                    kept = Path(tempfile.gettempdir()) / "bench-sfu-stderr.log"
                    kept.write_text((workdir / "stderr.log").read_text())
                    print(f"(child processes' stderr kept in {kept})", file=sys.stderr)
                    continue
                row["seconds"] = time.monotonic() - began
                results.append(row)
                print(_row(row), flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}", flush=True)
    report(results, recording_overhead(), fanout_cost())


def _row(r: dict[str, Any]) -> str:
    return (
        f"{r['mode']:>5} {r['n']:>5} | {r['cpu_share'] * 100:6.1f}% ({r['system_share'] * 100:5.1f}% sys) | "
        f"{r['us_per_packet']:8.1f} | "
        f"{r['loss_mean'] * 100:6.2f}% {r['loss_max'] * 100:6.2f}% {r['client_drops'] * 100:6.2f}% | "
        f"{r['delay_p50'] * 1000:6.1f} {r['delay_p95'] * 1000:6.1f} | {r['join_p50'] * 1000:6.0f} | {r['failed']:3d}"
    )


def report(results: list[dict[str, Any]], rec: dict[str, float], fan: dict[str, float]) -> None:
    header = (
        " mode     N |  SFU CPU (kernel part) | us/pkt/listener | loss mean   max client"
        " | delay p50  p95 ms | join ms | no audio"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in results:
        print(_row(r))
    base = next((r["delay_p50"] for r in results if r["mode"] == "fast" and r["n"] == 1), float("nan"))

    def per_listener(mode: str) -> float:
        rows = [r for r in results if r["mode"] == mode and r["n"] > 1]
        # Marginal CPU per listener stream: slope between the smallest and largest N.
        if len(rows) < 1:
            return float("nan")
        one = next((r for r in results if r["mode"] == mode and r["n"] == 1), None)
        top = max(rows, key=lambda r: r["n"])
        if one is None:
            return float(top["cpu_share"] / top["n"])
        return float((top["cpu_share"] - one["cpu_share"]) / (top["n"] - 1))

    fast, naive = per_listener("fast"), per_listener("naive")
    ok = [
        r
        for r in results
        if r["mode"] == "fast" and r["loss_mean"] < 0.01 and (r["delay_p95"] - base) < 0.1 and r["cpu_share"] < 1.0
    ]
    print()
    print(
        f"SFU CPU per listener stream: fast {fast * 100:.3f}% of a core, naive {naive * 100:.3f}%"
        f" -> {naive / fast:.1f}x less"
        if fast > 0
        else ""
    )
    if fast > 0:
        print(
            "listener streams one SFU core sustains (extrapolated from CPU):"
            f" fast ~{1 / fast:.0f}, naive ~{1 / naive:.0f}"
        )
    if ok:
        print(f"largest N measured within <1% loss and <100 ms added delay: {max(r['n'] for r in ok)}")
    print(
        f"fan-out alone (Slot.forward, 500 SRTP sessions): {fan['us_per_listener_packet']:.1f} us per listener"
        f" packet ({fan['user_us']:.1f} user + {fan['system_us']:.1f} kernel)"
        f" = {fan['streams_per_core']:.0f} streams per core at 50 packets/s"
    )
    print(f"added delay is against the fast SFU with one listener (p50 {base * 1000:.1f} ms)")
    print(
        f"recording per speaker: {rec['us_per_packet']:.1f} us/packet = {rec['core_share'] * 100:.3f}% of a core,"
        f" {rec['bytes_per_second'] / 1000:.1f} kB/s on the spool"
    )


if __name__ == "__main__":
    main()
