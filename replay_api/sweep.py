"""Ending spaces nobody joined: a throttled sweep run by the API before it lists spaces.

A space is created by the API but only the SFU ever sees a room, so a space
nobody joins would stay "created" (and on the live list) forever. The sweep
is one conditional update (``created`` and older than ``space_join_timeout``
becomes ``empty``), idempotent and atomic, so any number of API processes
may run it at once, whatever SFU nodes exist; each process runs it at most
every ``INTERVAL`` seconds, before a page or route that lists spaces.
The SFU refuses to open such a space on its own (``ingest.rooms``), so the
state is right even between sweeps.
"""

from __future__ import annotations

import logging
import threading
import time

from fastapi import Request

from spaces.catalog import Catalog
from spaces.models import Space, SpaceState
from spaces.settings import Settings

log = logging.getLogger(__name__)

#: Seconds between two sweeps of one API process.
INTERVAL = 30.0


def unjoined(space: Space, settings: Settings, *, now: float | None = None) -> bool:
    """Whether ``space`` was created and nobody joined it in time."""
    now = time.time() if now is None else now
    return space.state is SpaceState.CREATED and space.created_at < now - settings.space_join_timeout


class Sweeper:
    def __init__(self) -> None:
        self._last = float("-inf")
        self._lock = threading.Lock()

    def maybe_sweep(self, catalog: Catalog, settings: Settings) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < INTERVAL:
                return
            self._last = now
        ended = catalog.end_unjoined(time.time() - settings.space_join_timeout)
        if ended:
            log.info("%d space(s) nobody joined in %d s ended as empty", ended, settings.space_join_timeout)


def sweep_unjoined(request: Request) -> None:
    """Dependency for routes that list spaces (sync: FastAPI runs it in a thread)."""
    state = request.app.state
    sweeper: Sweeper | None = getattr(state, "sweeper", None)
    if sweeper is None:
        sweeper = state.sweeper = Sweeper()
    sweeper.maybe_sweep(state.catalog, state.settings)
