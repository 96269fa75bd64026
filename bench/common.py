"""Small helpers the benches share: CPU run and wait, pinning, sockets, kernel drops, child I/O, ffmpeg, percentiles,
tables."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run_queue_wait(pid: int) -> float:
    """Seconds a process has been runnable but not running (waiting for a CPU), from /proc/<pid>/schedstat.

    Next to its CPU time this tells a process that has little to do from
    one that the machine does not let run: an SFU at 25 % of a core and
    waiting 75 % of the time is starved, not idle.
    """
    # The main thread only: the one that runs the event loop.
    try:
        return _schedstat(Path(f"/proc/{pid}/task/{pid}/schedstat")).waited
    except (OSError, IndexError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class Sched:
    """Seconds a process ran on a CPU and waited for one (runnable, not running)."""

    ran: float
    waited: float

    def __sub__(self, other: Sched) -> Sched:
        return Sched(self.ran - other.ran, self.waited - other.waited)

    def __add__(self, other: Sched) -> Sched:
        return Sched(self.ran + other.ran, self.waited + other.waited)


def _schedstat(path: Path) -> Sched:
    ran, waited = path.read_text().split()[:2]
    return Sched(int(ran) / 1e9, int(waited) / 1e9)


def sched(pid: int) -> Sched:
    """What all of a process's threads ran and waited, from schedstat (nothing for a process gone).

    A query's latency is its processes' running plus their waiting for a
    CPU: on a busy machine the second grows, the first hardly does.
    """
    total = Sched(0.0, 0.0)
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return total
    for task in tasks:
        try:
            total += _schedstat(task / "schedstat")
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of a process on ``cpus`` (threads it starts later inherit their starter's)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, FileNotFoundError):
            continue


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants, dead or alive.

    A live descendant counts by its own times; one that has exited and been
    waited for is in its parent's children times (cutime + cstime), so
    nothing is counted twice. An rq worker's work-horses are forks, so this
    is what a worker really spends.
    """
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, ..., utime(11), stime(12), cutime(13), cstime(14).
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    children: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += stats[p][1]
            todo += children.get(p, [])
    return total


def udp_drops() -> int:
    """Datagrams the kernel dropped at full UDP receive buffers, machine-wide (/proc/net/udp)."""
    return sum(int(fields[-1]) for fields in _socket_lines("/proc/net/udp", "/proc/net/udp6"))


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets a process holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _socket_lines(*names: str) -> list[list[str]]:
    """The fields of each socket in the kernel's tables ``names`` (/proc/net/...)."""
    rows: list[list[str]] = []
    for name in names:
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        rows += [line.split() for line in lines if line.strip()]
    return rows


def udp_backlog(pid: int) -> int:
    """Bytes waiting in the receive queue of the fullest UDP socket a process holds.

    A process that reads its sockets too slowly shows here first: what
    waits in the queue is late, and once the queue is full, lost.
    """
    inodes = _socket_inodes(pid)
    fullest = 0
    for fields in _socket_lines("/proc/net/udp", "/proc/net/udp6"):
        if len(fields) > 9 and fields[9] in inodes:
            fullest = max(fullest, int(fields[4].split(":")[1], 16))
    return fullest


def local_ports_to(pid: int, port: int) -> set[int]:
    """The local ports of a process's TCP connections to ``port`` (a server's, to find the server's side of them)."""
    inodes = _socket_inodes(pid)
    return {
        int(fields[1].rsplit(":", 1)[1], 16)
        for fields in _socket_lines("/proc/net/tcp", "/proc/net/tcp6")
        if len(fields) > 9 and fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == port
    }


def say(message: dict[str, Any]) -> None:
    """Tell the parent (a child process's side of the JSON-lines channel ``readline`` reads)."""
    print(json.dumps(message), flush=True)


def readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line a child prints on stdout, or TimeoutError / RuntimeError if it exited."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                line = proc.stdout.readline()
                if line:
                    return line
                raise RuntimeError(f"process {str(proc.args)[:160]} exited ({proc.poll()})")
    finally:
        sel.close()
    raise TimeoutError(f"no answer from {str(proc.args)[:160]} in {timeout}s")


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly (errors only), overwriting its output, and fail if it fails."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join("-" * w for w in widths)

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([title, fmt(header), line, *(fmt(r) for r in rows), ""])


class CpuWait:
    """Per query, what each process a query goes through ran and waited for a CPU, from schedstat.

    ``roles`` name functions giving a role's processes (asked at the start
    and at the end: a process started meanwhile counts from its start, one
    ended meanwhile is lost). Wall time minus the running is the waiting
    for a CPU, for I/O and for the other processes.
    """

    def __init__(self, roles: dict[str, Callable[[], Iterable[int]]]) -> None:
        self.roles = roles
        self.before = self._now()

    def _now(self) -> dict[str, dict[int, Sched]]:
        return {role: {pid: sched(pid) for pid in pids()} for role, pids in self.roles.items()}

    def columns(self, queries: int) -> dict[str, str]:
        """Per role, "ran / waited" milliseconds per query."""
        out = {}
        for role, now in self._now().items():
            zero = Sched(0.0, 0.0)
            total = sum((s - self.before[role].get(pid, zero) for pid, s in now.items()), zero)
            out[role] = f"{total.ran * 1000 / queries:.1f} / {total.waited * 1000 / queries:.1f}"
        return out


def children(pid: int) -> list[int]:
    """A process's children (uvicorn's workers when it runs several)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found
