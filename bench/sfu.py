"""SFU bench: one speaker to N listeners per node, our pass-through SFU against aiortc's MediaRelay.

    .venv/bin/python -m bench.sfu                                   # full run
    .venv/bin/python -m bench.sfu --quick                           # fewer steps, shorter windows
    .venv/bin/python -m bench.sfu --nodes 2 --loop asyncio,uvloop   # also two nodes; both event loops
    .venv/bin/python -m bench.sfu --fanout c,python                 # the per-listener loop in C and in Python

Everything runs on loopback. Each SFU node under test is a separate
process pinned to a core of its own (CPU 0, 1, ...); the speakers and
listeners are pinned to the remaining cores, so "one SFU core" is literal
(with too few CPUs the report says the figures are not per core). With
``--nodes K`` each step runs K nodes, each with its own room, speaker and
N/K listeners. For each N it measures, over a fixed window once everyone
is connected:

- SFU CPU time (``/proc/<pid>/stat``) per listener packet handed to the
  kernel, the busiest node's share of its core, and how long it waited
  for its core (run queue, ``/proc/<pid>/task/<pid>/schedstat``);
- loss per listener: distinct (SSRC, sequence number) pairs against the
  span the speaker sent. Listeners count packets straight off their UDP
  socket, still encrypted (SRTP leaves the RTP header in clear): RTP never
  reaches aioice, DTLS or libsrtp on the client side, so 250 listeners per
  process cost little and the clients are not the limit;
- one-way delay speaker -> listener: the speaker sends 200 ms tone bursts
  once a second, and a probe listener (own process, higher priority)
  spots each burst's first packet by its size; "added" is against the
  fast SFU with one listener;
- join-to-first-audio, the SFU's event-loop lag while everyone joined and
  in the window (``ingest.loopwatch``), and speakers cut off by ICE
  consent expiry.

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
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from bench.common import cpu_times, readline, run_queue_wait, udp_drops
from ingest.ice import restrict_host_addresses
from spaces import tokens
from tests.support.services import free_port, wait_for_port

PYTHON = sys.executable
SFU_CPU = {0}
CLIENT_CPU = {1} if (os.cpu_count() or 1) > 1 else {0}
PER_PROCESS = 250  # listener peers per client process (they only count packets: cheap)
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
    import logging

    from aiortc.rtp import is_rtcp

    # aioice's word on a consent that expires, and the connection's end, in the bench's stderr log.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s speaker %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice.ice").setLevel(logging.INFO)

    from ingest.client import PcmTrack, SpaceClient

    track = PcmTrack(probe_signal(), loop=True)
    client = SpaceClient(url, token, track=track)
    await client.connect()

    @client.pc.on("connectionstatechange")
    def _changed() -> None:
        print(f"{time.strftime('%X')} speaker: connection {client.pc.connectionState}", file=sys.stderr, flush=True)

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


#: SRTP's authentication tag (AES_CM_128_HMAC_SHA1_80) after the encrypted payload.
SRTP_TAG = 10
#: The window is open (counting) in this listener process: set by the harness's "start"/"stop".
WINDOW = [False]


class Probe:
    """One listener's packets, counted straight off its socket, still encrypted.

    Once DTLS is up, the listener's ICE socket is read by ``ingest.udp``'s
    drained reader with a media tap: RTP never reaches aioice, DTLS or
    libsrtp, and the tap reads what it needs from the RTP header, which
    SRTP leaves in clear (sequence number, SSRC; the payload length is the
    plaintext's plus the tag). STUN (consent) and RTCP still go to aiortc,
    so the connection lives as any other. Per packet this costs a
    ``recvfrom`` and a few bytecodes: one client core plays over a thousand
    listeners, so the clients are not what the bench measures.
    """

    __slots__ = ("total", "first_at", "seqs", "onsets", "opened_at", "closed_at")

    def __init__(self, *, onsets: bool = False) -> None:
        self.total = 0
        self.first_at = 0.0
        self.seqs: list[tuple[int, int]] = []
        """(SSRC, sequence number) of each packet received while the window is open, in arrival order."""
        self.onsets = Onsets() if onsets else None
        self.opened_at = 0.0
        self.closed_at = 0.0

    def tap(self, data: bytes, addr: Any) -> bool:
        if not self.total:
            self.first_at = time.time()
        self.total += 1
        if WINDOW[0]:
            self.seqs.append((int.from_bytes(data[8:12], "big"), (data[2] << 8) | data[3]))
            if self.onsets is not None:
                self.onsets.feed(rtp_payload_size(data) - SRTP_TAG, time.time())
        return True

    async def install(self, client: Any) -> None:
        """Once the connection is up (DTLS done, a pair nominated), take its socket's RTP."""
        from ingest.udp import take_over_socket

        transceivers = client.pc.getTransceivers()
        if not transceivers:  # closed by the SFU before it offered anything
            raise ConnectionError("the connection did not come up")
        dtls = transceivers[0].receiver.transport
        connection = dtls.transport._connection
        while dtls.state != "connected" or 1 not in connection._nominated:
            if client.closed.is_set() or dtls.state in ("failed", "closed"):
                raise ConnectionError("the connection did not come up")
            await asyncio.sleep(0.01)
        pair = connection._nominated[1]
        if not take_over_socket(pair.protocol.transport, pair.protocol, media_tap=self.tap):
            raise RuntimeError("the bench listener needs asyncio's selector loop")


def window_stats(probe: Probe, t0: float, t1: float) -> dict[str, Any]:
    """Loss against what the speaker sent: the span of sequence numbers seen, per stream.

    Not against 50 packets a second: on a loaded machine the speaker itself
    may send fewer, and that is not the SFU's loss.
    """
    received = expected = 0
    by_ssrc: dict[int, list[int]] = {}
    for ssrc, seq in probe.seqs:
        by_ssrc.setdefault(ssrc, []).append(seq)
    for seqs in by_ssrc.values():
        ext = [((q - seqs[0] + 0x8000) & 0xFFFF) - 0x8000 for q in seqs]
        received += len(set(ext))
        expected += max(ext) - min(ext) + 1
    return {
        "received": received,
        "expected": max(expected, 1),
        "rate": received / (t1 - t0),
        "onsets": probe.onsets.times if probe.onsets is not None else [],
    }


async def listeners(url: str, tokens_: list[str], *, onsets: bool = False, concurrency: int = 5) -> None:
    from ingest.client import SpaceClient

    probes = [Probe(onsets=onsets) for _ in tokens_]
    clients = [SpaceClient(url, tok, decode=False) for tok in tokens_]
    joins: list[float] = []
    failed = 0
    sem = asyncio.Semaphore(concurrency)

    async def join(client: SpaceClient, probe: Probe) -> None:
        nonlocal failed
        try:
            async with sem:
                opened = time.time()
                await client.connect(timeout=60)
            async with asyncio.timeout(60):
                await probe.install(client)
            async with asyncio.timeout(60):
                while not probe.total:
                    if client.closed.is_set():
                        raise ConnectionError("closed by the SFU")
                    await asyncio.sleep(0.01)
            joins.append(probe.first_at - opened)
        except (TimeoutError, ConnectionError, OSError, RuntimeError):
            failed += 1

    await asyncio.gather(*(join(c, p) for c, p in zip(clients, probes, strict=True)))
    print(json.dumps({"ready": True, "joins": joins, "failed": failed}), flush=True)
    loop = asyncio.get_running_loop()
    # "start": open the window here, now; "stop": close it and report.
    await loop.run_in_executor(None, sys.stdin.readline)
    t0 = time.time()
    WINDOW[0] = True
    await loop.run_in_executor(None, sys.stdin.readline)
    WINDOW[0] = False
    t1 = time.time()
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


@dataclass
class Node:
    proc: subprocess.Popen[str]
    port: int
    space_id: str
    url: str


def cpu_plan(nodes: int, share: float = 1.0) -> tuple[list[set[int]], set[int], bool]:
    """A core of its own for each SFU node, the rest for the clients; True if they had to share.

    With ``share`` under 1 each node gets only that part of its core (``limit_cpu``), so
    the clients may run on every core, in what the nodes leave: two nodes and their
    clients fit on two cores, each node still alone with its own budget.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if share < 1.0 and len(cpus) >= nodes:
        return [{c} for c in cpus[:nodes]], set(cpus), False
    if len(cpus) > nodes:
        return [{c} for c in cpus[:nodes]], set(cpus[nodes:]), False
    # Not enough cores: the figures then say nothing per core (the report says so).
    return [{cpus[i % len(cpus)]} for i in range(nodes)], set(cpus), True


#: CFS period of the node's CPU quota: short, so a node over its budget pauses for
#: milliseconds (under the delay bound), not for a tenth of a second.
QUOTA_PERIOD_US = 10_000
CPU_CGROUP = Path("/sys/fs/cgroup/cpu")


def limit_cpu(pid: int, share: float) -> Path:
    """Hold process ``pid`` (all its threads) to ``share`` of one core: a cgroup v1 CPU quota (needs root)."""
    group = CPU_CGROUP / f"bench-sfu-{pid}"
    group.mkdir()
    (group / "cpu.cfs_period_us").write_text(str(QUOTA_PERIOD_US))
    (group / "cpu.cfs_quota_us").write_text(str(int(share * QUOTA_PERIOD_US)))
    (group / "cgroup.procs").write_text(str(pid))
    return group


class Step:
    def __init__(
        self,
        mode: str,
        n: int,
        window: float,
        workdir: Path,
        *,
        nodes: int = 1,
        loop: str = "asyncio",
        fanout: str = "c",
        per_process: int = PER_PROCESS,
        share: float = 1.0,
    ) -> None:
        self.mode = mode
        self.fanout = fanout
        self.n = n
        self.window = window
        self.workdir = workdir
        self.nodes = nodes
        self.loop = loop
        self.per_process = per_process
        self.share = share
        self.sfu_cpus, self.client_cpus, self.shared = cpu_plan(nodes, share)
        self.groups: list[Path] = []
        """The nodes' CPU-quota cgroups (``share`` under 1), removed with the step."""
        self.procs: list[subprocess.Popen[str]] = []
        self.servers: list[Node] = []
        self.loop_stats: list[list[dict[str, Any]]] = []
        """The nodes' event-loop lag (``ingest.loopwatch``) at the window's start and end."""

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

    def start_server(self, cpus: set[int]) -> Node:
        space_id = uuid.uuid4().hex[:16]
        port = free_port()
        if self.mode == "fast":
            data = self.workdir / f"data-{port}"
            env = dict(os.environ)
            env.update(
                SPACES_DATA_DIR=str(data),
                SPACES_SECRET_KEY=SECRET,
                SPACES_OPERATOR_TOKEN=OPERATOR_TOKEN,
                SPACES_SFU_PORT=str(port),
                SPACES_SFU_ICE_ADDRESSES="127.0.0.1",
                SPACES_SFU_JOIN_BURST="100000",
                SPACES_SFU_MAX_PARTICIPANTS="100000",
                SPACES_SFU_EMPTY_TIMEOUT="600",
                SPACES_SFU_LOOP=self.loop,
                SPACES_SFU_FANOUT=self.fanout,
                # INFO: who left the room and why ("connection failed": consent), in the stderr log.
                SPACES_LOG_LEVEL="INFO",
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
            proc = self.spawn(cmd, cpus, env)
            if self.share < 1.0:
                self.groups.append(limit_cpu(proc.pid, self.share))
        else:
            proc = self.spawn([PYTHON, "-m", "bench.sfu", "naive-server", "--port", str(port)], cpus, nice=-10)
        wait_for_port(port)
        return Node(proc, port, space_id, f"ws://127.0.0.1:{port}/spaces/{space_id}/rtc")

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            for node in self.servers:
                if node.proc.poll() is None:
                    # A clean stop lets a profiled SFU write its profile.
                    node.proc.send_signal(2)
            for node in self.servers:
                try:
                    node.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for group in self.groups:
                group.rmdir()  # empty once its node has exited

    def _listeners(self, node: Node, identities: list[str], *, probe: bool) -> subprocess.Popen[str]:
        toks = ",".join(self.token(node, i, tokens.Role.LISTENER) for i in identities)
        args = [PYTHON, "-m", "bench.sfu", "listeners", "--url", node.url, "--tokens", toks]
        # The probe (one listener in its own process, at a higher priority,
        # joining the loaded room last) never waits behind a thousand other
        # listeners, so its delays and join time are the SFU's.
        return self.spawn([*args, "--onsets"] if probe else args, self.client_cpus, nice=-10 if probe else 0)

    @staticmethod
    def token(node: Node, identity: str, role: tokens.Role) -> str:
        return tokens.issue(SECRET, space_id=node.space_id, role=role, identity=identity, ttl=3600)

    def _run(self) -> dict[str, Any]:
        log = self.workdir / "stderr.log"
        log_from = log.stat().st_size if log.exists() else 0
        self.servers = [self.start_server(cpus) for cpus in self.sfu_cpus]
        speakers = []
        for node in self.servers:
            args = [
                PYTHON,
                "-m",
                "bench.sfu",
                "speaker",
                "--url",
                node.url,
                "--token",
                self.token(node, "speaker", tokens.Role.HOST),
            ]
            # The speaker must not queue behind a thousand listeners.
            speakers.append(self.spawn(args, self.client_cpus, nice=-10))
        for spk in speakers:
            json.loads(readline(spk, 60))
        groups: list[subprocess.Popen[str]] = []
        for k, node in enumerate(self.servers):
            mine = list(range(k, self.n, self.nodes))  # listeners split evenly over the nodes
            for i in range(0, len(mine), self.per_process):
                groups.append(self._listeners(node, [f"l{j}" for j in mine[i : i + self.per_process]], probe=False))
        failed = 0
        for p in groups:
            failed += json.loads(readline(p, 900))["failed"]
        probes = [self._listeners(node, ["probe"], probe=True) for node in self.servers]
        joins: list[float] = []
        for p in probes:
            ready = json.loads(readline(p, 120))
            joins += ready["joins"]
            failed += ready["failed"]
        time.sleep(1.0)
        pids = [node.proc.pid for node in self.servers]
        cpu0, stats0, drops0 = [cpu_times(pid) for pid in pids], self.sfu_stats(), udp_drops()
        wait0 = [run_queue_wait(pid) for pid in pids]
        listeners = [*groups, *probes]
        for p in listeners:
            tell(p, "start")
        began = time.time()
        profilers = self.profile(pids)
        time.sleep(self.window)
        for p in listeners:
            tell(p, "stop")
        elapsed = time.time() - began
        for prof in profilers:
            prof.wait(timeout=60)
        cpu1, stats1, drops1 = [cpu_times(pid) for pid in pids], self.sfu_stats(), udp_drops()
        wait1 = [run_queue_wait(pid) for pid in pids]
        for spk in speakers:
            tell(spk, "report")
        per_listener: list[dict[str, Any]] = []
        for p in groups:
            per_listener += json.loads(readline(p, 60))["listeners"]
        measured: list[float] = []
        for p, spk in zip(probes, speakers, strict=True):
            probe_stats = json.loads(readline(p, 60))["listeners"]
            per_listener += probe_stats
            measured += delays(json.loads(readline(spk, 60))["onsets"], probe_stats[0]["onsets"])
        node_cpu = [sum(b) - sum(a) for a, b in zip(cpu0, cpu1, strict=True)]
        cpu = sum(node_cpu)
        system = sum(b[1] - a[1] for a, b in zip(cpu0, cpu1, strict=True))
        if stats0 is not None and stats1 is not None:
            sent = stats1 - stats0
        else:
            sent = self.n * elapsed * 50  # the naive SFU keeps no counters: 50 packets/s each
        # A listener that never got audio counts as all lost.
        # A listener that heard nothing in the window counts as all lost.
        losses = [max(0.0, 1 - s["received"] / s["expected"]) if s["received"] else 1.0 for s in per_listener]
        losses += [1.0] * failed
        streams = self.n + self.nodes
        with log.open() as f:
            f.seek(log_from)
            logged = f.read()
        lag_joins = [n["lag_recent_max"] for n in self.loop_stats[0]] if self.loop_stats else [float("nan")]
        lag_window = [n["lag_recent_max"] for n in self.loop_stats[-1]] if self.loop_stats else [float("nan")]
        return {
            # The worst event-loop lag of any node while everyone joined, and in the window.
            "lag_join": max(lag_joins),
            "lag_window": max(lag_window),
            # Speakers (bench clients) whose ICE consent expired: cut off.
            "consent_lost": logged.count("speaker INFO aioice.ice: Connection(0) Consent to send expired"),
            "mode": self.mode,
            "loop": self.loop,
            "fanout": self.fanout,
            "nodes": self.nodes,
            "shared_cores": self.shared,
            "node_share": self.share,
            "n": self.n,
            "failed": failed,
            # The busiest node's share of its core.
            "cpu_share": max(node_cpu) / elapsed,
            "system_share": system / elapsed / self.nodes,
            # Runnable but not running (other processes had the CPU): the busiest wait of any node.
            "wait_share": max(b - a for a, b in zip(wait0, wait1, strict=True)) / elapsed,
            "us_per_packet": cpu / sent * 1e6 if sent else float("nan"),
            "loss_mean": float(np.mean(losses)) if losses else 1.0,
            # Packets a second the slowest listener heard: under 50, the speaker (client side) fell behind.
            "rate_min": min((s["rate"] for s in per_listener), default=0.0),
            # Dropped by the kernel at listeners' full sockets: the client CPU fell behind.
            "client_drops": (drops1 - drops0) / max(1.0, streams * elapsed * 50),
            # What the SFU handed to the kernel, against one packet per listener every 20 ms.
            "sfu_sent": sent / (streams * elapsed * 50) if stats0 is not None else float("nan"),
            "loss_max": max(losses) if losses else 1.0,
            "delay_p50": float(np.percentile(measured, 50)) if measured else float("nan"),
            "delay_p95": float(np.percentile(measured, 95)) if measured else float("nan"),
            "join_p50": median(joins) if joins else float("nan"),
            "join_max": max(joins) if joins else float("nan"),
            "client_cpus": sorted(self.client_cpus),
        }

    def profile(self, pids: list[int]) -> list[subprocess.Popen[bytes]]:
        """``BENCH_PROFILE_CMD`` (e.g. ``perf record -g -p {pid} -o /tmp/p-{fanout}-{n}.data -- sleep {window}``),
        run on each node through the window of each pass-through step: where that step's CPU goes."""
        template = os.environ.get("BENCH_PROFILE_CMD")
        if not template or self.mode != "fast":
            return []
        return [
            subprocess.Popen(
                shlex.split(template.format(pid=pid, n=self.n, fanout=self.fanout, window=int(self.window))),
                stdout=subprocess.DEVNULL,
                stderr=open(self.workdir / "stderr.log", "a"),  # noqa: SIM115
            )
            for pid in pids
        ]

    def sfu_stats(self) -> int | None:
        """Listener packets every node has handed to the kernel so far."""
        if self.mode != "fast":
            return None
        import urllib.request

        sent = 0
        lags: list[dict[str, Any]] = []
        for node in self.servers:
            request = urllib.request.Request(
                f"http://127.0.0.1:{node.port}/stats", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
            )
            with urllib.request.urlopen(request, timeout=10) as r:
                data = json.loads(r.read())
            sent += sum(s["sent"] for room in data["rooms"] for s in room["slots"])
            lags.append(data["loop"])
        self.loop_stats.append(lags)
        return sent


def tell(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def fanout_cost(
    listeners: int = 500, packets: int = 200, *, agent: bool = False, level: int = 40, native: bool = True
) -> dict[str, float]:
    """``Slot.forward`` alone: one packet to N real SRTP sessions and UDP sockets.

    The same code path as in the SFU, without the rest of the process, so
    it reads the same on a busy machine. Every sink sends to one loopback
    socket nobody reads: once its buffer is full the kernel drops what
    arrives, the cheapest delivery loopback has. With ``agent`` a room
    agent's speech-only sink listens too, and packets carry ``level``
    (40: speech, the agent gets them; 127: silence, it does not). ``native``:
    the C loop (``ingest.fanout``, if built), else the Python one.
    """
    import resource
    import socket

    from pylibsrtp import Policy, Session

    from ingest import fanout
    from ingest.fastpath import Sink, lean_protect
    from ingest.forward import Slot

    fanout.configure("c" if native else "python")

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
        slot.add_sink(
            "agent" if agent and i == 0 else f"l{i}",
            Sink(
                lean_protect(session),
                sock.sendto,
                sock.sendto,
                target,
                native=fanout.Target.create(session, sock, target),
            ),
            speech_only=agent and i == 0,
        )
    payload = secrets.token_bytes(120)
    before = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(packets):
        slot.forward(ssrc=1, seq=i, ts=i * 960, marker=0, payload=payload, level=level)
    after = resource.getrusage(resource.RUSAGE_SELF)
    for sock in socks:
        sock.close()
    # Per packet handed to a sink: in silence the agent's sink gets none.
    user = (after.ru_utime - before.ru_utime) / slot.sent
    system = (after.ru_stime - before.ru_stime) / slot.sent
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
    p.add_argument("--onsets", action="store_true", help="also spot tone bursts (the delay probe)")
    parser.add_argument("--quick", action="store_true", help="fewer steps, shorter windows")
    parser.add_argument("--agent-only", action="store_true", help="only the fan-out cost with and without a room agent")
    parser.add_argument("--fast", default="1,250,500,1000,1500", help="listener counts for the pass-through SFU")
    parser.add_argument("--naive", default="1,10,20,40", help="listener counts for the naive SFU")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per step")
    parser.add_argument("--nodes", type=int, default=1, help="SFU processes, each on its own core (default 1)")
    parser.add_argument(
        "--loop", default="asyncio", help="the SFU's event loop(s): asyncio, uvloop or both as asyncio,uvloop"
    )
    parser.add_argument(
        "--fanout",
        default="c",
        help="the SFU's per-listener loop(s) (SPACES_SFU_FANOUT): c, python or both as c,python",
    )
    parser.add_argument("--per-process", type=int, default=PER_PROCESS, help="listeners per client process")
    parser.add_argument(
        "--node-share",
        type=float,
        default=1.0,
        help="hold each SFU node to this part of its core (a CPU quota, needs root), leaving the rest to"
        " the clients: how two nodes and their clients are measured on two cores (default 1: no quota)",
    )
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
        asyncio.run(listeners(args.url, args.tokens.split(","), onsets=args.onsets))
        return

    if args.agent_only:
        agent_fanout()
        return
    if args.quick:
        args.fast, args.naive, args.window = "1,200,500", "1,10", 4.0
    fast_steps = [int(x) for x in args.fast.split(",") if x]
    naive_steps = [int(x) for x in args.naive.split(",") if x]
    results: list[dict[str, Any]] = []
    # Other work on the machine shows up as delay and loss (not as SFU CPU time): say how busy it was.
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-sfu-") as tmp:
        workdir = Path(tmp)
        loops = [(loop, fan) for fan in args.fanout.split(",") for loop in args.loop.split(",")]
        plan = [("fast", n, loop, fan, 1) for loop, fan in loops for n in fast_steps]
        if args.nodes > 1:
            plan += [("fast", n * args.nodes, loop, fan, args.nodes) for loop, fan in loops for n in fast_steps]
        plan += [("naive", n, "asyncio", "c", 1) for n in naive_steps]
        for mode, n, loop, fan, nodes in plan:
            began = time.monotonic()
            try:
                share = args.node_share if mode == "fast" else 1.0
                step = Step(
                    mode,
                    n,
                    args.window,
                    workdir,
                    nodes=nodes,
                    loop=loop,
                    fanout=fan,
                    per_process=args.per_process,
                    share=share,
                )
                row = step.run()
            except Exception as e:  # noqa: BLE001 - report the step and go on
                print(f"{mode} n={n}: failed: {e}", file=sys.stderr)
                kept = Path(tempfile.gettempdir()) / "bench-sfu-stderr.log"
                kept.write_text((workdir / "stderr.log").read_text())
                print(f"(child processes' stderr kept in {kept})", file=sys.stderr)
                continue
            row["seconds"] = time.monotonic() - began
            results.append(row)
            print(_row(row), flush=True)
        kept = Path(tempfile.gettempdir()) / "bench-sfu-stderr.log"
        kept.write_text((workdir / "stderr.log").read_text() if (workdir / "stderr.log").exists() else "")
    print(f"load average at end: {os.getloadavg()[0]:.2f} (child processes' stderr in {kept})", flush=True)
    report(results, recording_overhead(), {"C": fanout_cost(), "Python": fanout_cost(native=False)})
    agent_fanout()


def agent_fanout(rounds: int = 5) -> None:
    """SFU CPU per forwarded packet with the room agent among the listeners (issue 10: unchanged).

    Best of ``rounds`` each, alternating: the machine's other work only adds.
    """
    runs: dict[str, list[float]] = {"no agent": [], "agent, speaker talking": [], "agent, speaker silent": []}
    for _ in range(rounds):
        runs["no agent"].append(fanout_cost()["us_per_listener_packet"])
        runs["agent, speaker talking"].append(fanout_cost(agent=True, level=40)["us_per_listener_packet"])
        runs["agent, speaker silent"].append(fanout_cost(agent=True, level=127)["us_per_listener_packet"])
    for label, values in runs.items():
        print(f"fan-out to 500 sinks, {label}: {min(values):.2f} us per packet sent (median {median(values):.2f})")


def _label(r: dict[str, Any]) -> str:
    if r["mode"] == "naive":
        return "MediaRelay"
    fan = "" if r.get("fanout", "c") == "c" else f"/{r['fanout']}"
    return f"fast/{r['loop']}{fan}" + (f" x{r['nodes']} nodes" if r["nodes"] > 1 else "")


def _row(r: dict[str, Any]) -> str:
    return (
        f"{_label(r):>22} {r['n']:>5} | {r['cpu_share'] * 100:6.1f}% ({r['system_share'] * 100:5.1f}% sys)"
        f" {r['wait_share'] * 100:5.1f}% | "
        f"{r['us_per_packet']:8.1f} | "
        f"{r['loss_mean'] * 100:6.2f}% {r['loss_max'] * 100:6.2f}% {r['client_drops'] * 100:6.2f}% | "
        f"{r['delay_p50'] * 1000:6.1f} {r['delay_p95'] * 1000:6.1f} | {r['join_p50'] * 1000:6.0f} | {r['failed']:3d}"
        f" | {r['rate_min']:4.0f} | {r['lag_join'] * 1000:6.0f} {r['lag_window'] * 1000:6.0f} | {r['consent_lost']}"
    )


#: What counts as carrying N listener streams: loss, added delay (seconds), and the SFU within its core.
MAX_LOSS = 0.01
MAX_ADDED_DELAY = 0.1


def report(results: list[dict[str, Any]], rec: dict[str, float], fans: dict[str, dict[str, float]]) -> None:
    header = (
        "                 SFU     N | CPU of a core (kernel) waiting | us/pkt/listener | loss mean   max client"
        " | delay p50  p95 ms | join ms | no audio | min pkt/s | loop lag ms: joins window | speakers cut"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in results:
        print(_row(r))
    # Without a one-listener step, delays count in full (as if the baseline were zero).
    base = next((r["delay_p50"] for r in results if r["mode"] == "fast" and r["n"] == 1), 0.0)
    print(f"\nadded delay is against the fast SFU with one listener (p50 {base * 1000:.1f} ms)")
    if any(r["shared_cores"] for r in results):
        print("WARNING: the clients shared the SFU cores (too few CPUs): no figure below is per core")

    def ok(r: dict[str, Any]) -> bool:
        added = r["delay_p95"] - base
        within = r["cpu_share"] < r["node_share"] * 0.99  # a node at its quota is saturated
        return bool(r["loss_mean"] < MAX_LOSS and added < MAX_ADDED_DELAY and within and not r["failed"])

    carried: dict[str, int] = {}
    for label in dict.fromkeys(_label(r) for r in results):
        rows = [r for r in results if _label(r) == label]
        good = [r for r in rows if ok(r)]
        top = max(good, key=lambda r: r["n"]) if good else None
        nodes = rows[0]["nodes"]
        carried[label] = top["n"] if top else 0
        if top is None:
            print(f"{label}: no step within <1% loss and <100 ms added delay")
            continue
        share = top["node_share"]
        per = "per SFU core" if share >= 1.0 else f"per SFU node held to {share * 100:.0f}% of its core"
        print(
            f"{label}: {top['n']} listener streams with <1% loss and <100 ms added delay"
            f" = {top['n'] / nodes:.0f} {per} (busiest core {top['cpu_share'] * 100:.0f}% busy),"
            f" {top['us_per_packet']:.1f} us of SFU CPU per listener packet"
            + ("" if top["n"] < max(r["n"] for r in rows) else "  (the largest step run: try larger N)")
        )
    for label, n in carried.items():
        if " x" in label:
            one = carried.get(label.split(" x")[0], 0)
            if one:
                print(f"{label}: {n / one:.2f}x the listener streams of one node")
    for loop, fan in fans.items():
        print(
            f"fan-out alone, {loop} loop (Slot.forward, 500 SRTP sessions): {fan['us_per_listener_packet']:.1f} us"
            f" per listener packet ({fan['user_us']:.1f} user + {fan['system_us']:.1f} kernel)"
            f" = {fan['streams_per_core']:.0f} streams per core at 50 packets/s"
        )
    print(
        f"recording per speaker: {rec['us_per_packet']:.1f} us/packet = {rec['core_share'] * 100:.3f}% of a core,"
        f" {rec['bytes_per_second'] / 1000:.1f} kB/s on the spool"
    )


if __name__ == "__main__":
    main()
