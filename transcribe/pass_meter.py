"""What a Whisper pass costs in CPU, when the model computes on threads of its own.

CTranslate2 runs a pass on its own worker threads (``num_workers`` of them,
each with ``cpu_threads`` intra-op threads) while the Python thread that
asked for it waits. That thread's ``thread_time`` saw a few per cent of a
pass (0.013 of 0.21 CPU-s for 3 s of speech on ``tiny.en``), so a live
speaker paced by it was paced by nothing. The process's CPU time is no better: it
counts the other speakers' passes and the agent's WebRTC receive path too.

:class:`PassMeter` reads the CPU time of the process's threads that Python
did not start (CTranslate2's, and the BLAS pool the features use) and
shares it out among the passes in flight while it was spent: two speakers'
passes side by side are each charged half of what ran meanwhile. A pass is
charged that share plus the CPU of its own thread (features, tokens).
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import time
from collections.abc import Callable

CpuSource = Callable[[], float]
"""Seconds of CPU, never decreasing."""


class NativeCpu:
    """CPU seconds the process's threads that Python did not start have run, summed per thread (Linux).

    Each thread's run time comes from ``/proc/self/task/<tid>/schedstat``
    (nanoseconds; about 30 µs a thread to read). Only what each thread ran
    since the last reading is added, so a thread that ends takes nothing
    back and the sum never decreases. Not thread-safe: :class:`PassMeter`
    reads it under its lock.
    """

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}
        self._total = 0

    def __call__(self) -> float:
        python = {t.native_id for t in threading.enumerate()}
        now: dict[int, int] = {}
        for name in os.listdir("/proc/self/task"):
            tid = int(name)
            if tid in python:
                continue
            try:
                with open(f"/proc/self/task/{name}/schedstat", "rb") as f:
                    now[tid] = int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
                continue
        self._total += sum(ns - self._seen.get(tid, 0) for tid, ns in now.items())
        self._seen = now
        return self._total / 1e9


class PassMeter:
    """The CPU of each pass: its thread's own, and its share of the model's threads' while it ran.

    Args:
        native: CPU of the threads the model computes on (default: :class:`NativeCpu`).
        thread: CPU of the calling thread (default: ``time.thread_time``).
    """

    def __init__(self, native: CpuSource | None = None, thread: CpuSource = time.thread_time) -> None:
        self._native = native if native is not None else NativeCpu()
        self._thread = thread
        self._lock = threading.Lock()
        self._open: dict[int, float] = {}
        """Native CPU charged so far to each pass in flight."""
        self._mark = 0.0
        """Native CPU at the last pass's start or end: what ran since is shared by the passes now open."""
        self._ids = itertools.count()

    def begin(self) -> tuple[int, float]:
        """A pass starts on this thread: the ticket :meth:`end` takes."""
        with self._lock:
            self._settle()
            key = next(self._ids)
            self._open[key] = 0.0
        return key, self._thread()

    def end(self, ticket: tuple[int, float]) -> float:
        """The pass of ``ticket`` ended (on the thread that began it): its CPU seconds."""
        key, own = ticket
        with self._lock:
            self._settle()
            shared = self._open.pop(key)
        return shared + self._thread() - own

    def _settle(self) -> None:
        now = self._native()
        if self._open:
            share = (now - self._mark) / len(self._open)
            for key in self._open:
                self._open[key] += share
        self._mark = now


@functools.cache
def process_meter() -> PassMeter:
    """The meter every transcriber of this process shares: the model's threads are the process's."""
    return PassMeter()
