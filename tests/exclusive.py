"""Tests that measure real time run alone, while the rest of the suite runs in parallel.

``bin/dev test`` runs the suite on one pytest-xdist worker per CPU. Most
tests only wait on conditions, and share the CPUs well; a few assert on
what happens in real time (packets forwarded within 200 ms, a recording
that matches what was sent, captions within a latency bound), and those
would measure the other worker's load instead of our code. Such a test
(marked ``realtime``) takes an exclusive lock that every other test takes shared: a
readers-writer lock across the worker processes, on ``flock``.

The turnstile keeps a waiting writer from starving: a reader passes
through it before taking its shared lock, and a writer holds it while it
waits, so no new reader gets in ahead of the writer.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO

#: The marker of a test whose assertions depend on real-time delivery or timing
#: (a bound in milliseconds, packets counted across a kill, a recording that
#: must hold every second sent). A module whose every test is such marks
#: itself (``pytestmark``); otherwise only those tests carry it, and the
#: module's others share the CPUs like any test.
MARKER = "realtime"


def lock_dir() -> Path | None:
    """Where this run's workers meet, or None when the suite runs in one process."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return None
    path = Path(tempfile.gettempdir()) / f"audio-spaces-tests-{run}"
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def _flock(file: IO[bytes], mode: int) -> Iterator[None]:
    fcntl.flock(file, mode)
    try:
        yield
    finally:
        fcntl.flock(file, fcntl.LOCK_UN)


class Hold:
    """A test's place under the lock: shared, or exclusive for the whole test.

    ``alone()`` makes a part of a shared test exclusive: the stretch that
    asserts on real time (a live scenario), while its set-up and the work
    after it (starting a stack, transcribing the recording) share the CPUs.
    """

    def __init__(self, turnstile: IO[bytes] | None, room: IO[bytes] | None) -> None:
        # None: nothing to take (no pytest-xdist, or the whole test is exclusive already).
        self._turnstile = turnstile
        self._room = room

    @contextmanager
    def alone(self) -> Iterator[None]:
        """Run the body while no other test runs; shared again afterwards."""
        if self._turnstile is None or self._room is None:
            yield
            return
        # Give up the shared lock first: another test waiting to go alone may hold the turnstile.
        fcntl.flock(self._room, fcntl.LOCK_UN)
        with _flock(self._turnstile, fcntl.LOCK_EX):
            fcntl.flock(self._room, fcntl.LOCK_EX)
            try:
                yield
            finally:
                # Back to shared before the turnstile opens: no writer gets in between.
                fcntl.flock(self._room, fcntl.LOCK_SH)


@asynccontextmanager
async def alone_in_loop(hold: Hold) -> AsyncIterator[None]:
    """``hold.alone()`` from a coroutine: the lock is waited for (and given back) off the event loop.

    While this test waits for the other worker's test to end, what runs on
    its loop (an in-process SFU, a page's peers) keeps running.
    """
    stretch = hold.alone()
    await asyncio.to_thread(stretch.__enter__)
    try:
        yield
    finally:
        await asyncio.to_thread(stretch.__exit__, None, None, None)


@contextmanager
def holding(directory: Path, *, exclusive: bool) -> Iterator[Hold]:
    """Run the body alone (``exclusive``) or beside other non-exclusive bodies."""
    with (directory / "turnstile").open("ab") as turnstile, (directory / "room").open("ab") as room:
        if exclusive:
            with _flock(turnstile, fcntl.LOCK_EX), _flock(room, fcntl.LOCK_EX):
                yield Hold(None, None)
            return
        with _flock(turnstile, fcntl.LOCK_EX):
            fcntl.flock(room, fcntl.LOCK_SH)
        try:
            yield Hold(turnstile, room)
        finally:
            fcntl.flock(room, fcntl.LOCK_UN)
