"""Real processes for fault tests: workers, a Redis of the test's own, snapshots.

Each test starts ``spaces worker`` processes with the environment it wants
(a tiny job timeout, a Redis it can restart, an S3 endpoint behind a proxy it
can cut) and stops them at teardown. Worker output goes to a log file per
process, printed when a test fails, so a fault test says what the workers saw.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from spaces.settings import Settings
from tests.support.faults import RedisServer, drop_queue
from tests.support.workers import Workers


@pytest.fixture
def worker_procs(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    """Workers logging to files of their own, printed if the test fails; each test starts them on its settings."""
    procs = Workers(settings, log_dir=tmp_path)
    yield procs
    procs.stop_all()
    for settings in procs.queues.values():
        drop_queue(settings)
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(procs.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures know it failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
