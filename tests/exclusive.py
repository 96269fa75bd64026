"""Tests that measure real time run alone, while the rest of the suite runs in parallel.

``bin/dev test`` runs the suite on one pytest-xdist worker per CPU. Most
tests only wait on conditions, and share the CPUs well; a few assert on
what happens in real time (packets forwarded within 200 ms, a recording
that matches what was sent, captions within a latency bound), and those
would measure the other worker's load instead of our code. Such a test
takes an exclusive lock that every other test takes shared: a
readers-writer lock across the worker processes, on ``flock``.

The turnstile keeps a waiting writer from starving: a reader passes
through it before taking its shared lock, and a writer holds it while it
waits, so no new reader gets in ahead of the writer.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

#: Test modules whose assertions depend on real-time delivery or timing.
REALTIME_MODULES = frozenset(
    {
        "tests/e2e/test_live.py",
        "tests/e2e/test_live_search.py",
        "tests/ingest/test_browser.py",
        "tests/ingest/test_browser_consent.py",
        "tests/ingest/test_browser_nodes.py",
        "tests/ingest/test_consent_late_loop.py",
        "tests/ingest/test_crash.py",
        "tests/ingest/test_live.py",
        "tests/ingest/test_nodes.py",
        "tests/ingest/test_paced_joins.py",
        "tests/ingest/test_redis_restart_live.py",
        "tests/ingest/test_s3_outage_live.py",
        "tests/ingest/test_udp_garbage.py",
        "tests/workers/test_agent_faults.py",
        "tests/workers/test_live_page.py",
    }
)


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


@contextmanager
def holding(directory: Path, *, exclusive: bool) -> Iterator[None]:
    """Run the body alone (``exclusive``) or beside other non-exclusive bodies."""
    with (directory / "turnstile").open("ab") as turnstile, (directory / "room").open("ab") as room:
        if exclusive:
            with _flock(turnstile, fcntl.LOCK_EX), _flock(room, fcntl.LOCK_EX):
                yield
            return
        with _flock(turnstile, fcntl.LOCK_EX):
            fcntl.flock(room, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(room, fcntl.LOCK_UN)
