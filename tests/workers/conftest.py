"""Fixtures for worker tests: real ``spaces worker`` processes (``tests.support.workers``), a queue of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spaces import queue
from spaces.settings import Settings
from tests.support.workers import (
    Workers,
)


def _workers(settings: Settings) -> Iterator[Workers]:
    w = Workers(settings)
    yield w
    w.stop_all()
    for q in (queue.pipeline_queue(settings), queue.live_queue(settings)):
        q.empty()
        q.delete(delete_jobs=True)


@pytest.fixture
def workers(settings: Settings) -> Iterator[Workers]:
    """Workers on the embedded defaults."""
    yield from _workers(settings)


@pytest.fixture
def backend_workers(backend_settings: Settings) -> Iterator[Workers]:
    """Workers on each backend: embedded, and S3 + PostgreSQL."""
    yield from _workers(backend_settings)
