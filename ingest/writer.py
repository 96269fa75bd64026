"""Spool writes off the event loop: one thread per room does them, in order.

The recorder decides what to write (pages, segment metadata) on the event
loop, where the packets are; the ``write``, ``fsync`` and ``rename`` calls
run here. A slow or stalled disk then delays the recording, never the
forwarding: the loop only appends to a queue.

Crash safety is the spool's as before (``oggwriter``, ``spool``): every job
does the same whole-page writes and atomic renames, in the order they were
submitted. What a SIGKILL can lose grows only by what is still queued,
which on a healthy disk is well under a page (200 ms).

``InlineWriter`` does the same work at once, on the caller's thread: for
tools and tests that run a recorder without a loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Writer(Protocol):
    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` after everything submitted before it."""

    def then(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call ``callback(*args)`` on the submitter's side once what was submitted so far is done."""


class InlineWriter:
    """Writes at once, on the calling thread."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)

    def then(self, callback: Callable[..., Any], *args: Any) -> None:
        callback(*args)


_STOP = object()


class ThreadWriter:
    """A thread that runs submitted writes in order; callbacks come back on the event loop.

    A failed job is logged and the next one runs: a full disk loses
    recording, it does not stop the thread (the archive's uploads and the
    recovery scan cope with a segment that ends early).
    """

    def __init__(self, name: str = "spool-writer", *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Each counter has one writer (the loop, the thread): no lock needed.
        self.submitted = 0
        self.done = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet done."""
        return self.submitted - self.done

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.submitted += 1
        self._jobs.put((fn, args))

    def then(self, callback: Callable[..., Any], *args: Any) -> None:
        self.submit(self._loop.call_soon_threadsafe, callback, *args)

    def flush(self) -> asyncio.Future[None]:
        """Awaitable: done once every job submitted so far has run."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.submit(done.set_result, None)
        return asyncio.wrap_future(done, loop=self._loop)

    async def close(self) -> None:
        """Run what is queued, then stop the thread."""
        await self.flush()
        self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            fn, args = job
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - one failed write must not stop the others
                self.failures += 1
                log.exception("spool write failed: %s", getattr(fn, "__qualname__", fn))
            finally:
                self.done += 1
