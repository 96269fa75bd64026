"""How late the event loop runs: the number that decides whether ICE consent survives.

aioice answers a STUN consent check from inside the loop, and gives its own
checks one try of 500 ms; a loop that runs late by more than that, six
checks in a row, ends the connection (``ingest.consent`` replaces those
checks with RFC 7675's 30 s window; a peer's own checks may still time our
answers by 500 ms). ``LoopWatch`` wakes every ``PERIOD``
seconds and records how late it woke: the worst lag since start, the lags
over the consent deadline, and a recent maximum, for ``/stats``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

PERIOD = 0.05
#: aioice's consent check deadline (one STUN transaction, no retransmission).
CONSENT_DEADLINE = 0.5


class LoopWatch:
    def __init__(self) -> None:
        self.max_lag = 0.0
        self.recent_max = 0.0
        """Worst lag since the last ``snapshot``."""
        self.over_deadline = 0
        self.wakeups = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + PERIOD
            await asyncio.sleep(PERIOD)
            self.observe(time.monotonic() - due)

    def observe(self, lag: float) -> None:
        self.wakeups += 1
        self.max_lag = max(self.max_lag, lag)
        self.recent_max = max(self.recent_max, lag)
        if lag > CONSENT_DEADLINE:
            self.over_deadline += 1

    def snapshot(self) -> dict[str, Any]:
        out = {
            "lag_max": round(self.max_lag, 4),
            "lag_recent_max": round(self.recent_max, 4),
            "lags_over_consent_deadline": self.over_deadline,
            "wakeups": self.wakeups,
        }
        self.recent_max = 0.0
        return out
