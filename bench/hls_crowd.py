"""A crowd of HLS players on loopback, in processes of their own: the load side of ``bench/hls.py``'s listener part.

Each player does what a native HLS player does on a live stream: reads
``master.m3u8`` once, then ``audio.m3u8`` every target duration (on its own
schedule, joins spread over one target duration), takes the segments listed
the first time and after that each new segment once, all on one keep-alive
HTTP/1.1 connection. The HTTP client is a few lines of asyncio on uvloop
(no client library): per request it costs a fraction of what the server
spends, so the players are not what gets measured; their processes' CPU
is reported next to the API's to show it.

The players run in ``processes`` spawned processes pinned to ``cpus``: on a
2-CPU machine the API gets one CPU and the players (with the room that
writes the HLS) the other, so neither steals the other's time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe

import numpy as np
import uvloop

#: A request not answered within this long counts as an error (and the connection is opened again).
TIMEOUT = 10.0
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


class Connection:
    """One player's keep-alive HTTP/1.1 connection: GET and read the whole body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = _LENGTH.search(head)
        if length is None:
            raise ValueError("no Content-Length")
        return int(head.split(b" ", 2)[1]), await self.reader.readexactly(int(length.group(1)))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class Tally:
    """What one process's players saw."""

    latencies: list[float]
    """Seconds from sending a request to having its whole body, once every player has joined."""
    joining: list[float]
    """The same while players join (each takes the whole window of segments at once)."""
    errors: int = 0
    polls: int = 0
    """Playlist reads made."""
    cpu: float = 0.0
    """CPU seconds of the process while its players ran."""


async def _player(
    host: str, port: int, prefix: str, start: float, end: float, target: float, steady: float, tally: Tally
) -> None:
    conn = Connection(host, port)
    seen: set[str] = set()
    fresh = True

    async def get(path: str) -> bytes | None:
        t = time.perf_counter()
        status, body = await asyncio.wait_for(conn.get(prefix + path), TIMEOUT)
        (tally.latencies if time.time() >= steady else tally.joining).append(time.perf_counter() - t)
        if status != 200:
            tally.errors += 1
            return None
        return body

    await asyncio.sleep(max(0.0, start - time.time()))
    poll = start
    try:
        while poll < end:
            try:
                if fresh:
                    await get("master.m3u8")
                playlist = await get("audio.m3u8")
                tally.polls += 1
                if playlist is not None:
                    names = [x for x in playlist.decode().splitlines() if x and not x.startswith("#")]
                    # A player starts at the first segment listed, then takes each new one.
                    for name in [x for x in names if x not in seen]:
                        await get(name)
                    seen.update(names)
                    fresh = False
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                tally.errors += 1
                conn.close()
            poll += target
            await asyncio.sleep(max(0.0, poll - time.time()))
    finally:
        conn.close()


def _run(
    pipe: Pipe,
    cpus: set[int],
    nice: int,
    host: str,
    port: int,
    prefix: str,
    n: int,
    first: int,
    total: int,
    target: float,
) -> None:
    """A process's players (``n`` of ``total``, numbered from ``first``): ready, then (start, end), then the tally."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    pipe.send("ready")
    start, end = pipe.recv()
    tally = Tally([], [])
    # Joins spread evenly over one target duration across all processes; a target later all are steady.
    steady = start + 2 * target

    async def crowd() -> None:
        await asyncio.gather(
            *(
                _player(host, port, prefix, start + target * (first + i) / total, end, target, steady, tally)
                for i in range(n)
            )
        )

    cpu0 = _cpu()
    uvloop.run(crowd())
    tally.cpu = _cpu() - cpu0
    pipe.send(tally)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CrowdResult:
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    """Of the requests made once every player had joined."""
    join_p99_ms: float
    """While all joined within one target duration (a crowd arriving at once)."""
    polls_done_pct: float
    """Of the playlist reads the players should have made in the time, how many they made."""
    clients_core_pct: float
    """CPU of the player processes, in % of one core."""
    server: tuple[float, ...]
    """What ``probe`` read of the server over the players' run: its value at the end minus at the start."""


def listen(
    host: str,
    port: int,
    prefix: str,
    n: int,
    *,
    seconds: float,
    target: float,
    processes: int,
    cpus: set[int],
    nice: int = 0,
    probe: Callable[[], tuple[float, ...]] = tuple,
) -> CrowdResult:
    """``n`` players for ``seconds`` against ``http://host:port{prefix}``; blocks until done.

    ``probe`` (the server's CPU seconds, say) is read when the players start and when they stop
    polling: not while the processes start, nor while late answers drain.
    """
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    shares = [n // processes + (i < n % processes) for i in range(processes)]
    for i, share in enumerate(shares):
        ours, theirs = ctx.Pipe()
        args = (theirs, cpus, nice, host, port, prefix, share, sum(shares[:i]), n, target)
        proc = ctx.Process(target=_run, args=args, daemon=True)
        proc.start()
        theirs.close()  # so a player process that dies is an EOFError here, not a wait for ever
        pipes.append(ours)
        procs.append(proc)
    for pipe in pipes:
        assert pipe.recv() == "ready"
    start = time.time() + 0.5
    for pipe in pipes:
        pipe.send((start, start + seconds))
    time.sleep(max(0.0, start - time.time()))
    first = probe()
    time.sleep(max(0.0, start + seconds - time.time()))
    server = tuple(b - a for a, b in zip(first, probe(), strict=True))
    tallies: list[Tally] = [pipe.recv() for pipe in pipes]
    for proc in procs:
        proc.join()
    lat = np.array([t for tally in tallies for t in tally.latencies]) * 1000
    joining = np.array([t for tally in tallies for t in tally.joining]) * 1000
    return CrowdResult(
        requests=int(lat.size + joining.size),
        errors=sum(t.errors for t in tallies),
        p50_ms=float(np.percentile(lat, 50)) if lat.size else float("nan"),
        p99_ms=float(np.percentile(lat, 99)) if lat.size else float("nan"),
        max_ms=float(lat.max()) if lat.size else float("nan"),
        join_p99_ms=float(np.percentile(joining, 99)) if joining.size else float("nan"),
        polls_done_pct=100 * sum(t.polls for t in tallies) / max(1, n * seconds / target),
        clients_core_pct=100 * sum(t.cpu for t in tallies) / seconds,
        server=server,
    )
