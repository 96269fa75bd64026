"""Retrying blocking storage calls from the event loop.

The blob store, the catalog and Redis are synchronous clients: each call
runs in a worker thread, and a failure is retried with capped exponential
backoff for as long as the process lives. Nothing is given up on: the
spool keeps the data, and recovery picks it up after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

FIRST_DELAY = 0.5
MAX_DELAY = 30.0


async def retry_forever(
    op: Callable[[], T], *, what: str, first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY
) -> T:
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return await asyncio.to_thread(op)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any storage failure is retried
            log.warning("%s failed (attempt %d), retrying in %.1fs: %s", what, attempt, delay, e)
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, max_delay)
