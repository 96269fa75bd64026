"""Load bench: N rooms x (2 speakers + M listeners) for T minutes, the whole stack on one machine.

    .venv/bin/python -m bench.load                                  # 2 rooms x (2 + 10), 2 minutes
    .venv/bin/python -m bench.load --rooms 4 --listeners 40 --minutes 3

Modelled on LiveKit's ``lk load-test``, but with everything of ours running
too, on loopback only and bounded in time. Real processes, started by the
project's own entry points in a temporary data directory (embedded blob
store and SQLite catalog; the local Redis with a queue of our own, whose
jobs are deleted at the end, never a FLUSHDB):

- the SFU (``python -m ingest``), the API (``spaces api``) and one pipeline
  worker (``spaces worker``);
- before the rooms open, ``--seed`` short two-speaker spaces are imported and
  processed, so replay and search have something to serve; ``--backlog``
  more are imported and enqueued one by one while the rooms are live, so the
  worker transcribes while the SFU forwards;
- rooms are created through the API (``POST /spaces``, join tokens from
  ``POST /spaces/{id}/tokens``); per room the host and one invited speaker
  loop espeak-ng speech (turns taken in alternation) through aiortc
  ``SpaceClient``s, and M listeners receive. Clients run in a few child
  processes; a listener only counts packets per stream (RTP sequence
  numbers, after SRTP), it does not decode;
- an HTTP client process asks the API for random 64 KiB ranges of the
  seeded replays and for two-word searches, at a fixed rate, through the
  live window and the drain after it.

After T minutes the speakers stop sending, the hosts end their spaces and
the bench waits until every space is READY. It reports packet loss per
subscribed stream, recording completeness per speaker (seconds in the blob
store against seconds sent), the queue drain time, API latency and errors
per phase, and the CPU of every process.

The per-address limits (SFU join burst, API search and token rates) are
lifted: one loopback address plays every user here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu_times, percentile, readline, table, tree_cpu, udp_backlog, udp_drops  # noqa: E402

PYTHON = sys.executable
RATE = 48000
FRAME_SECONDS = 0.02  # aiortc sends one 20 ms Opus frame per RTP packet
RANGE_BYTES = 64 * 1024
#: A speaker counts as losing no seconds if less than this is missing from the blob store.
LOST_TOLERANCE = 0.5
#: Seconds the rooms may take to be recorded (handed over to the queue) once ended.
HANDOVER_TIMEOUT = 120.0
#: A stream (or a speaker's sending) that ended this long before the speakers were stopped ended early.
EARLY = 1.0
#: Requests the API client keeps in flight at most; beyond it a request is skipped (and counted).
MAX_OUTSTANDING = 64


# --- child process: clients (speakers and listeners) ---------------------------------------------


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


def _say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


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
    _say({"ready": sum(1 for p in peers if not p.error), "errors": [p.error for p in peers if p.error][:5]})
    loop = asyncio.get_running_loop()
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "stop":
            for p in peers:
                if p.track is not None:
                    p.track.stop()
            await asyncio.sleep(0.3)  # the sender's loop notices the ended track on its next frame
            _say(
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
            _say({"closed": sum(1 for p in peers if p.client is not None and p.client.closed.is_set())})
        else:  # "report", or the bench went away
            _say(
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


# --- child process: API clients --------------------------------------------------------------------


@dataclass
class Tally:
    ms: list[float] = field(default_factory=list)
    server_errors: int = 0
    errors: int = 0
    skipped: int = 0
    hits: int = 0
    examples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.examples) < 3:
            self.examples.append(what)


async def run_api_clients(url: str, spec: dict[str, Any]) -> None:
    """Range requests and searches at a fixed rate (open loop) until told to stop."""
    import httpx

    audio: list[tuple[str, int]] = [(s, int(n)) for s, n in spec["audio"]]
    queries: list[str] = spec["queries"]
    rate = float(spec["rate"])
    rng = random.Random(spec.get("seed", 1))
    tallies: dict[str, dict[str, Tally]] = {}
    phase = ["live"]
    stopping = asyncio.Event()

    async def control() -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line.startswith("phase "):
                phase[0] = line.split(maxsplit=1)[1]
            else:
                stopping.set()
                return

    async def one(http: httpx.AsyncClient, kind: str, tally: Tally) -> None:
        began = time.perf_counter()
        try:
            if kind == "range":
                space_id, size = rng.choice(audio)
                start = rng.randrange(0, max(1, size - RANGE_BYTES))
                end = min(size - 1, start + RANGE_BYTES - 1)
                r = await http.get(f"/spaces/{space_id}/audio", headers={"Range": f"bytes={start}-{end}"})
                ok = r.status_code == 206 and len(r.content) == end - start + 1
            else:
                r = await http.get("/search", params={"q": rng.choice(queries), "limit": 20})
                ok = r.status_code == 200
                if ok:
                    tally.hits += len(r.json()["hits"])
        except httpx.HTTPError as e:
            tally.error(f"{type(e).__name__}: {e}")
            return
        tally.ms.append((time.perf_counter() - began) * 1000)
        if r.status_code >= 500:
            tally.server_errors += 1
            tally.error(f"{r.status_code} {r.text[:120]}")
        elif not ok:
            tally.error(f"{r.status_code} {r.text[:120]}")

    controller = asyncio.get_running_loop().create_task(control())
    limits = httpx.Limits(max_connections=MAX_OUTSTANDING, max_keepalive_connections=MAX_OUTSTANDING)
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        started, i = time.monotonic(), 0
        while not stopping.is_set():
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stopping.wait(), delay)
                    break
                except TimeoutError:
                    pass
            kind = "range" if i % 2 == 0 else "search"
            tally = tallies.setdefault(phase[0], {}).setdefault(kind, Tally())
            if len(tasks) >= MAX_OUTSTANDING:
                tally.skipped += 1
            else:
                task = asyncio.get_running_loop().create_task(one(http, kind, tally))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.gather(*tasks)
    await controller
    _say({ph: {k: t.__dict__ for k, t in kinds.items()} for ph, kinds in tallies.items()})


# --- the stack ------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    work: Path
    env: dict[str, str]
    api_url: str
    sfu_url: str
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str], *, stdin: bool = False) -> subprocess.Popen[str]:
        """A child process; stdout is the JSON-lines channel when ``stdin``, else its log."""
        log = (self.work / f"{name}.log").open("a")
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin else log,
            stderr=log,
            text=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def check(self) -> None:
        for name in ("sfu", "api", "worker"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.work / (name + '.log')}")


def start_stack(work: Path, *, redis_url: str) -> Stack:
    api_port, sfu_port = free_port(), free_port()
    env = dict(os.environ)
    for name in ("S3_BUCKET", "SPACES_S3_BUCKET", "DATABASE_URL", "SPACES_DATABASE_URL"):
        env.pop(name, None)
    env.update(
        SPACES_ENV="development",
        SPACES_DATA_DIR=str(work / "data"),
        SPACES_SECRET_KEY="bench-" + secrets.token_hex(16),
        # Per-room /stats (dropped packets per track) needs the operator's token.
        SPACES_OPERATOR_TOKEN=secrets.token_urlsafe(32),
        REDIS_URL=redis_url,
        SPACES_QUEUE_NAME=f"bench-load-{uuid.uuid4().hex[:8]}",
        # One worker, given every CPU's thread, as `spaces up` shares them out.
        SPACES_WORKERS="1",
        SPACES_API_HOST="127.0.0.1",
        SPACES_API_PORT=str(api_port),
        SPACES_SFU_HOST="127.0.0.1",
        SPACES_SFU_PORT=str(sfu_port),
        SPACES_SFU_ICE_ADDRESSES="127.0.0.1",
        # One loopback address plays every user: lift the per-address limits.
        SPACES_SFU_JOIN_BURST="1000000",
        SPACES_SEARCH_RATE_LIMIT="0",
        SPACES_TOKEN_RATE_LIMIT="0",
        SPACES_LOG_LEVEL="INFO",
    )
    stack = Stack(work, env, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sfu_port}")
    from spaces.catalog import open_catalog

    catalog = open_catalog(settings_of(stack))
    catalog.create_schema()
    catalog.close()
    import httpx

    try:
        stack.spawn("sfu", [PYTHON, "-m", "ingest"])
        stack.spawn("api", [PYTHON, "-m", "spaces.cli", "api"])
        stack.spawn("worker", [PYTHON, "-m", "spaces.cli", "worker"])
        deadline = time.monotonic() + 60
        for url in (f"{stack.api_url}/spaces?limit=1", f"{stack.sfu_url}/healthz"):
            while True:
                stack.check()
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer in 60 s")
                time.sleep(0.2)
    except BaseException:
        stack.stop()
        raise
    return stack


def settings_of(stack: Stack) -> Any:
    from spaces.settings import Settings

    return Settings.from_env(stack.env)


def clean_queue(stack: Stack) -> None:
    """Delete our queue and every job it ran (never anything else in the shared Redis)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.results import Result

    from spaces import queue

    settings = settings_of(stack)
    connection = queue.connect(settings)
    q = queue.pipeline_queue(settings, connection)
    ids = set(q.job_ids)
    for registry in (q.finished_job_registry, q.failed_job_registry, q.deferred_job_registry,
                     q.started_job_registry, q.scheduled_job_registry, q.canceled_job_registry):  # fmt: skip
        ids.update(registry.get_job_ids())
    for job_id in ids:
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            continue
        Result.delete_all(job)
        job.delete()
    q.delete(delete_jobs=True)
    connection.delete(f"{q.key}:intermediate")  # rq's list of jobs being dequeued, if left


# --- what the spaces are made of ---------------------------------------------------------------------


def recorded_spaces(work: Path, count: int, *, minutes: float, first_seed: int) -> list[dict[str, Path]]:
    """Two-speaker conversations (espeak-ng, cached) as track files to import."""
    from bench.pipeline import conversation
    from tests.speech import VOICES, build_space

    out = []
    for i in range(count):
        into = work / f"space-{first_seed + i}"
        into.mkdir(parents=True, exist_ok=True)
        space = build_space(conversation(minutes, seed=first_seed + i), {"alice": VOICES[0], "bob": VOICES[1]},
                            duration=minutes * 60, out_dir=into)  # fmt: skip
        out.append(dict(space))
    return out


def import_spaces(stack: Stack, spaces: list[dict[str, Path]], title: str) -> list[str]:
    from spaces.blobstore import open_blob_store
    from spaces.catalog import open_catalog
    from spaces.importer import TrackFile, import_space

    settings = settings_of(stack)
    catalog = open_catalog(settings)
    try:
        return [
            import_space(
                open_blob_store(settings), catalog, [TrackFile(s, p) for s, p in tracks.items()], title=f"{title} {i}"
            ).space_id  # fmt: skip
            for i, tracks in enumerate(spaces)
        ]
    finally:
        catalog.close()


def enqueue(stack: Stack, space_id: str) -> None:
    from spaces import queue

    queue.enqueue_finalize(settings_of(stack), space_id)


def states(stack: Stack, space_ids: list[str]) -> dict[str, str]:
    from spaces.catalog import open_catalog

    catalog = open_catalog(settings_of(stack))
    try:
        return {s: str(catalog.get_space(s).state) for s in space_ids}
    finally:
        catalog.close()


def wait_processed(stack: Stack, space_ids: list[str], timeout: float, *, settled: str = "ready") -> float:
    """Seconds until every space is ``settled`` (or failed); TimeoutError past ``timeout``."""
    began = time.monotonic()
    final = {settled, "failed"} if settled == "ready" else {settled, "processing", "ready", "failed"}
    while True:
        stack.check()
        if all(s in final for s in states(stack, space_ids).values()):
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"spaces not {settled} after {timeout:.0f} s: {states(stack, space_ids)}")
        time.sleep(0.25)


def speaker_audio(work: Path) -> tuple[Path, Path]:
    """The host's and the guest's loop: every sentence once, taking turns, ~40 s."""
    import numpy as np

    from tests.ingest.conftest import VOICE_A, VOICE_B, speech48k
    from tests.speech import SENTENCES

    host: list[Any] = []
    guest: list[Any] = []
    pause = np.zeros(int(0.7 * RATE), np.int16)
    for i, sentence in enumerate(SENTENCES):
        said = speech48k(sentence, VOICE_A if i % 2 == 0 else VOICE_B)
        quiet = np.zeros(len(said), np.int16)
        host += [said if i % 2 == 0 else quiet, pause]
        guest += [quiet if i % 2 == 0 else said, pause]
    paths = (work / "host.npy", work / "guest.npy")
    np.save(paths[0], np.concatenate(host))
    np.save(paths[1], np.concatenate(guest))
    return paths


def search_queries() -> list[str]:
    """Two content words said together in the seeded conversations."""
    from tests.speech import SENTENCES

    out = []
    for sentence in SENTENCES:
        words = [w for w in re.findall(r"[a-z]+", sentence.lower()) if len(w) > 4]
        out += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return out


# --- rooms -----------------------------------------------------------------------------------------


@dataclass
class Room:
    space_id: str
    rtc_url: str
    speakers: list[dict[str, Any]]
    listeners: list[dict[str, Any]]


def create_rooms(stack: Stack, rooms: int, listeners: int, audio: tuple[Path, Path]) -> list[Room]:
    """Spaces and join tokens through the API, as the live page gets them."""
    import httpx

    out = []
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        for r in range(rooms):
            created = http.post("/spaces", json={"title": f"Load room {r}", "host": f"host{r}"})
            created.raise_for_status()
            info = created.json()
            space_id, url = info["space_id"], info["rtc_url"]
            auth = {"Authorization": f"Bearer {info['token']}"}

            def token(role: str, identity: str, headers: dict[str, str], space_id: str = space_id) -> str:
                got = http.post(f"/spaces/{space_id}/tokens", json={"role": role, "identity": identity},
                                headers=headers)  # fmt: skip
                got.raise_for_status()
                return str(got.json()["token"])

            speakers = [
                {"identity": f"host{r}", "url": url, "token": info["token"], "host": True, "expect": 1,
                 "audio": str(audio[0])},
                {"identity": f"guest{r}", "url": url, "token": token("speaker", f"guest{r}", auth), "host": False,
                 "expect": 1, "audio": str(audio[1])},
            ]  # fmt: skip
            members = [
                {"identity": f"l{r}-{i}", "url": url, "token": token("listener", f"l{r}-{i}", {}), "host": False,
                 "expect": 2, "audio": None}
                for i in range(listeners)
            ]  # fmt: skip
            out.append(Room(space_id, url, speakers, members))
    return out


def chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


def spawn_clients(stack: Stack, name: str, peers: list[dict[str, Any]]) -> subprocess.Popen[str]:
    spec = stack.work / f"{name}.json"
    spec.write_text(json.dumps({"peers": peers}))
    return stack.spawn(name, [PYTHON, "-m", "bench.load", "clients", "--spec", str(spec)], stdin=True)


def tell(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()


def ask(proc: subprocess.Popen[str], command: str, timeout: float) -> dict[str, Any]:
    tell(proc, command)
    answer: dict[str, Any] = json.loads(readline(proc, timeout))
    return answer


def sfu_stats(stack: Stack) -> dict[str, Any]:
    import httpx

    operator = {"Authorization": f"Bearer {stack.env['SPACES_OPERATOR_TOKEN']}"}
    stats: dict[str, Any] = httpx.get(f"{stack.sfu_url}/stats", headers=operator, timeout=10).json()
    return stats


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class Cpu:
    """CPU seconds of each process we started, read at the phase boundaries."""

    pids: dict[str, int]
    marks: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def mark(self) -> None:
        now = time.monotonic()
        values = {}
        for name, pid in self.pids.items():
            try:
                values[name] = tree_cpu(pid) if name == "worker" else sum(cpu_times(pid))
            except OSError:
                values[name] = float("nan")
        values["bench"] = sum(cpu_times(os.getpid()))
        self.marks.append((now, values))

    def share(self, a: int, b: int) -> dict[str, float]:
        (t0, v0), (t1, v1) = self.marks[a], self.marks[b]
        return {name: (v1[name] - v0[name]) / max(1e-9, t1 - t0) for name in v0}


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    load_start = os.getloadavg()
    print(f"bench-load: {args.rooms} rooms x (2 speakers + {args.listeners} listeners), {args.minutes:g} min; "
          f"load average {load_start[0]:.2f} on {os.cpu_count()} CPUs; work dir {work}", flush=True)  # fmt: skip
    began = time.monotonic()
    stack = start_stack(work, redis_url=args.redis_url)
    ok = False
    try:
        result = _run(stack, args, load_start)
        ok = True
        return result
    finally:
        stack.stop()
        try:
            clean_queue(stack)
        except Exception as e:  # noqa: BLE001 - tidying up; say so and go on
            print(f"(could not delete the bench queue's jobs: {e})", file=sys.stderr)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)
        print(f"total {time.monotonic() - began:.0f} s", flush=True)


def _run(stack: Stack, args: argparse.Namespace, load_start: tuple[float, float, float]) -> dict[str, Any]:
    from spaces import keys
    from spaces.blobstore import open_blob_store
    from spaces.models import Manifest, Track

    settings = settings_of(stack)
    blobs = open_blob_store(settings)

    # Something to replay and search, processed before the rooms open.
    t = time.monotonic()
    seeded = import_spaces(stack, recorded_spaces(stack.work, args.seed, minutes=0.5, first_seed=100), "Seeded")
    for space_id in seeded:
        enqueue(stack, space_id)
    backlog = import_spaces(
        stack, recorded_spaces(stack.work, args.backlog, minutes=args.backlog_minutes, first_seed=200), "Backlog"
    )
    wait_processed(stack, seeded, 600)
    print(f"seeded {len(seeded)} ready spaces, imported {len(backlog)} to process under load "
          f"({time.monotonic() - t:.0f} s)", flush=True)  # fmt: skip
    audio_sizes = [(s, blobs.size(keys.replay(s, "ogg"))) for s in seeded]

    rooms = create_rooms(stack, args.rooms, args.listeners, speaker_audio(stack.work))
    t = time.monotonic()
    speaker_procs = [
        spawn_clients(stack, f"speakers-{i}", group)
        # Whole rooms per process (an even count): a host and its guest join in order.
        for i, group in enumerate(
            chunks([p for r in rooms for p in r.speakers], 2 * max(1, args.speakers_per_process // 2))
        )
    ]
    ready = [json.loads(readline(p, 120)) for p in speaker_procs]
    listener_peers = [p for r in rooms for p in r.listeners]
    per_process = max(1, math.ceil(len(listener_peers) / max(1, math.ceil(len(listener_peers) / args.per_process))))
    listener_procs = [
        spawn_clients(stack, f"listeners-{i}", group) for i, group in enumerate(chunks(listener_peers, per_process))
    ]
    ready += [json.loads(readline(p, 600)) for p in listener_procs]
    joined = sum(r["ready"] for r in ready)
    print(f"{joined} of {len(listener_peers) + 2 * len(rooms)} clients joined in {time.monotonic() - t:.0f} s "
          f"({len(speaker_procs)} speaker and {len(listener_procs)} listener processes)", flush=True)  # fmt: skip
    for r in ready:
        for e in r["errors"]:
            print(f"  join error: {e}", file=sys.stderr)

    api_spec = stack.work / "api-clients.json"
    api_spec.write_text(json.dumps({"audio": audio_sizes, "queries": search_queries(), "rate": args.api_rate}))
    api_clients = stack.spawn(
        "api-clients",
        [PYTHON, "-m", "bench.load", "api-clients", "--url", stack.api_url, "--spec", str(api_spec)],
        stdin=True,
    )
    clients = speaker_procs + listener_procs
    pids = {"sfu": stack.procs["sfu"].pid, "api": stack.procs["api"].pid, "worker": stack.procs["worker"].pid}
    pids.update({name: p.pid for name, p in stack.procs.items() if name.startswith(("speakers", "listeners"))})
    pids["api-clients"] = api_clients.pid
    cpu = Cpu(pids)

    # The live window.
    window = args.minutes * 60
    drops0 = udp_drops()
    cpu.mark()
    t0 = time.monotonic()
    due = [(t0 + (i + 0.5) * window / len(backlog), space_id) for i, space_id in enumerate(backlog)]
    sfu_samples: list[float] = []
    backlog_bytes = 0
    last = (t0, sum(cpu_times(pids["sfu"])))
    while time.monotonic() < t0 + window:
        time.sleep(min(5.0, max(0.05, t0 + window - time.monotonic())))
        stack.check()
        now, used = time.monotonic(), sum(cpu_times(pids["sfu"]))
        sfu_samples.append((used - last[1]) / (now - last[0]))
        backlog_bytes = max(backlog_bytes, udp_backlog(pids["sfu"]))
        last = (now, used)
        while due and due[0][0] <= now:
            enqueue(stack, due.pop(0)[1])
        for p in clients:
            if p.poll() is not None:
                raise RuntimeError(f"client process {p.pid} exited ({p.returncode}); see {stack.work}")
    load_live = os.getloadavg()
    stopped_at = time.time()
    sent: dict[str, dict[str, float]] = {}
    for p in speaker_procs:
        sent.update(ask(p, "stop", 30)["sent"])
    cpu.mark()
    drops = udp_drops() - drops0
    time.sleep(1.0)  # packets in flight and the recorders' reorder buffers
    stats = sfu_stats(stack)

    # End every room; the drain.
    t_end = time.monotonic()
    tell(api_clients, "phase drain")
    for p in speaker_procs:
        ask(p, "end", 60)
    for p in listener_procs:
        ask(p, "end", 60)
    room_ids = [r.space_id for r in rooms]
    wait_processed(stack, room_ids, HANDOVER_TIMEOUT, settled="recorded")
    handed_over = time.monotonic() - t_end
    wait_processed(stack, room_ids + backlog, args.drain_timeout)
    drain = time.monotonic() - t_end
    cpu.mark()
    api = ask(api_clients, "stop", 120)
    reports = [ask(p, "report", 60) for p in clients]
    final_states = states(stack, room_ids + backlog + seeded)

    # Recording completeness: seconds in the blob store against seconds sent.
    speakers = []
    recorder_dropped = {
        (room["space_id"], t["track_id"]): t["dropped"] for room in stats["rooms"] for t in room["tracks"]
    }
    for room in rooms:
        manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(room.space_id))))
        by_speaker = {speaker: track_id for track_id, speaker in manifest.tracks}
        for peer in room.speakers:
            seconds, dropped = 0.0, 0
            track_id = by_speaker.get(peer["identity"])
            if track_id is not None:
                track = Track.from_dict(json.loads(blobs.get(keys.track_manifest(room.space_id, track_id))))
                seconds = sum(s.duration for s in track.segments)
                dropped = recorder_dropped.get((room.space_id, track_id), 0)
            out = sent.get(peer["identity"], {"packets": 0, "max_gap": float("inf"), "last": 0.0})
            speakers.append(
                {"identity": peer["identity"], "sent": out["packets"] * FRAME_SECONDS, "recorded": seconds,
                 "sent_packets": out["packets"], "recorder_dropped": dropped, "send_gap": out["max_gap"],
                 "stopped_early": stopped_at - out["last"] > EARLY}
            )  # fmt: skip

    # Packet loss per subscribed stream: a stream never heard counts as all
    # lost, one that ended before the speakers stopped as lost from then on.
    losses: list[float] = []
    gaps: list[float] = []
    lost_packets = expected_packets = failed_joins = ended_early = 0
    for report in reports:
        for peer in report["peers"]:
            if peer["error"]:
                failed_joins += 1
            streams = peer["streams"]
            for st in streams:
                expected = st["expected"]
                if stopped_at - st["last_arrival"] > EARLY:
                    ended_early += 1
                    expected += int((stopped_at - st["last_arrival"]) / FRAME_SECONDS)
                losses.append(max(0.0, 1 - st["received"] / expected))
                lost_packets += max(0, expected - st["received"])
                expected_packets += expected
                gaps.append(st["max_gap"])
            losses += [1.0] * max(0, peer["expect"] - len(streams))
    joins = [peer["join_seconds"] for r in reports for peer in r["peers"] if peer["join_seconds"] is not None]

    return {
        "rooms": args.rooms,
        "listeners": args.listeners,
        "minutes": args.minutes,
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "load_live": load_live,
        "clients": len(listener_peers) + 2 * len(rooms),
        "failed_joins": failed_joins,
        "join_p50": median(joins) if joins else float("nan"),
        "join_max": max(joins) if joins else float("nan"),
        "streams": len(losses),
        "loss_median": median(losses) if losses else float("nan"),
        "loss_max": max(losses) if losses else float("nan"),
        "lost_packets": lost_packets,
        "ended_early": ended_early,
        "gap_median": median(gaps) if gaps else float("nan"),
        "gap_max": max(gaps, default=float("nan")),
        "expected_packets": expected_packets,
        "udp_drops": drops,
        "sfu_backlog": backlog_bytes,
        "speakers": speakers,
        "handover": handed_over,
        "drain": drain,
        "states": final_states,
        "api": api,
        "cpu_live": cpu.share(0, 1),
        "cpu_drain": cpu.share(1, 2),
        "sfu_peak": max(sfu_samples, default=float("nan")),
        "window": cpu.marks[1][0] - cpu.marks[0][0],
        "seeded": len(seeded),
        "backlog": len(backlog),
        "api_rate": args.api_rate,
    }


# --- the report ---------------------------------------------------------------------------------------


def verdict(r: dict[str, Any]) -> list[str]:
    """What keeps this run from meeting the target (empty: it meets it)."""
    problems = []
    lost = [s for s in r["speakers"] if s["sent"] - s["recorded"] >= LOST_TOLERANCE]
    if lost:
        problems.append(f"{len(lost)} speaker(s) lost seconds")
    five = sum(t["server_errors"] for kinds in r["api"].values() for t in kinds.values())
    if five:
        problems.append(f"{five} API 5xx")
    errors = sum(t["errors"] - t["server_errors"] + t["skipped"] for kinds in r["api"].values() for t in kinds.values())
    if errors:
        problems.append(f"{errors} other API errors or skipped requests")
    early = sum(1 for s in r["speakers"] if s["stopped_early"])
    if early or r["ended_early"]:
        problems.append(f"{early} speaker(s) stopped sending early, {r['ended_early']} stream(s) ended early")
    if r["failed_joins"]:
        problems.append(f"{r['failed_joins']} clients failed to join")
    not_ready = [s for s, state in r["states"].items() if state != "ready"]
    if not_ready:
        problems.append(f"{len(not_ready)} space(s) not ready")
    return problems


def report(r: dict[str, Any]) -> str:
    pct = "{:.2f}%".format
    completeness = [s["recorded"] / s["sent"] if s["sent"] else 0.0 for s in r["speakers"]]
    lost = [max(0.0, s["sent"] - s["recorded"]) for s in r["speakers"]]
    sent = [s["sent"] for s in r["speakers"]]
    load = ", ".join(f"{x:.2f}" for x in r["load_live"])
    rows = [
        ["clients (speakers + listeners)", f"{r['clients']} ({r['failed_joins']} failed to join)"],
        ["join to first audio, p50 / max", f"{r['join_p50']:.2f} s / {r['join_max']:.2f} s"],
        ["subscribed streams", str(r["streams"])],
        ["packet loss per stream, median / max", f"{pct(r['loss_median'] * 100)} / {pct(r['loss_max'] * 100)}"],
        ["packets lost, all streams", f"{r['lost_packets']} of {r['expected_packets']}"],
        ["streams that ended before the speakers stopped", str(r["ended_early"])],
        [
            "longest arrival gap per stream, median / max",
            f"{r['gap_median'] * 1000:.0f} / {r['gap_max'] * 1000:.0f} ms",
        ],
        ["UDP datagrams dropped by the kernel", str(r["udp_drops"])],
        ["SFU socket receive queue, fullest (5 s samples)", f"{r['sfu_backlog'] / 1024:.0f} KiB"],
        ["longest send gap per speaker, max", f"{max(s['send_gap'] for s in r['speakers']) * 1000:.0f} ms"],
        ["seconds sent per speaker, min / max", f"{min(sent, default=0):.1f} / {max(sent, default=0):.1f}"],
        ["recorded / sent per speaker, min", pct(min(completeness, default=0) * 100)],
        ["seconds lost per speaker, max / total", f"{max(lost, default=0):.2f} / {sum(lost):.2f}"],
        ["packets the recorders dropped (late, duplicate)", str(sum(s["recorder_dropped"] for s in r["speakers"]))],
        ["space end -> every room recorded", f"{r['handover']:.1f} s"],
        ["space end -> queue drained (all ready)", f"{r['drain']:.1f} s"],
        ["SFU CPU, live window mean / peak 5 s", f"{r['cpu_live']['sfu'] * 100:.0f}% / {r['sfu_peak'] * 100:.0f}%"],
        ["load average at the end of the window", load],
    ]
    out = [table(f"Load: {r['rooms']} rooms x (2 speakers + {r['listeners']} listeners), {r['minutes']:g} min live, "
                 f"{r['cpus']} CPUs", ["measure", "value"], rows)]  # fmt: skip
    api_rows = []
    for phase, kinds in r["api"].items():
        for kind, t in sorted(kinds.items()):
            ms = t["ms"]
            extra = f"{t['hits'] / max(1, len(ms)):.1f}" if kind == "search" else ""
            api_rows.append([phase, kind, str(len(ms)), f"{percentile(ms, 50):.1f}", f"{percentile(ms, 99):.1f}",
                             f"{max(ms, default=float('nan')):.1f}", str(t["server_errors"]),
                             str(t["errors"] - t["server_errors"]), str(t["skipped"]), extra])  # fmt: skip
    out.append(table(f"API at {r['api_rate']:g} requests/s (half 64 KiB Range requests of {r['seeded']} replays, "
                     "half two-word searches)",
                     ["phase", "kind", "n", "p50 ms", "p99 ms", "max ms", "5xx", "errors", "skipped", "hits/q"],
                     api_rows))  # fmt: skip
    names = sorted(r["cpu_live"], key=lambda n: (n not in ("sfu", "api", "worker"), n))
    cpu_rows = [[n, f"{r['cpu_live'][n] * 100:.0f}%", f"{r['cpu_drain'][n] * 100:.0f}%"] for n in names]
    client_names = [n for n in names if n.startswith(("speakers", "listeners", "api-clients"))]
    cpu_rows.append(["all clients", f"{sum(r['cpu_live'][n] for n in client_names) * 100:.0f}%",
                     f"{sum(r['cpu_drain'][n] for n in client_names) * 100:.0f}%"])  # fmt: skip
    out.append(table(f"CPU, % of one core (live window {r['window']:.0f} s; drain {r['drain']:.0f} s; "
                     f"worker includes its work-horses; {r['backlog']} spaces enqueued during the window)",
                     ["process", "live", "drain"], cpu_rows))  # fmt: skip
    problems = verdict(r)
    out.append("target (zero lost seconds, zero 5xx, everyone joined, every space ready): "
               + ("MET" if not problems else "NOT MET: " + "; ".join(problems)))  # fmt: skip
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("clients", help="(internal) a client process")
    p.add_argument("--spec", required=True)
    p = sub.add_parser("api-clients", help="(internal) the API client process")
    p.add_argument("--url", required=True)
    p.add_argument("--spec", required=True)
    parser.add_argument("--rooms", type=int, default=2, help="live rooms (default 2)")
    parser.add_argument("--listeners", type=int, default=10, help="listeners per room (default 10)")
    parser.add_argument("--minutes", type=float, default=2.0, help="live window, minutes (default 2)")
    parser.add_argument("--api-rate", type=float, default=20.0, help="API requests per second (default 20)")
    parser.add_argument("--seed", type=int, default=2, help="ready spaces to replay and search (default 2)")
    parser.add_argument("--backlog", type=int, default=2,
                        help="spaces enqueued for processing during the window (default 2)")  # fmt: skip
    parser.add_argument("--backlog-minutes", type=float, default=1.0, help="length of each, minutes (default 1)")
    parser.add_argument("--per-process", type=int, default=100, help="listeners per client process (default 100)")
    parser.add_argument("--speakers-per-process", type=int, default=8)
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, blobs, catalog)")
    args = parser.parse_args()
    if args.cmd == "clients":
        asyncio.run(run_clients(json.loads(Path(args.spec).read_text())))
        return
    if args.cmd == "api-clients":
        asyncio.run(run_api_clients(args.url, json.loads(Path(args.spec).read_text())))
        return
    result = run(args)
    print()
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
