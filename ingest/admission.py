"""Paced joins: at most ``limit`` participants of a node in media setup at once, the rest in line.

A join's expensive part runs on the event loop that also forwards every
room's media and answers every consent check: the SDP offer, ICE checks,
the DTLS handshake (public-key work) and aiortc's setup. Hundreds of
listeners joining at once made the SFU's loop run 2-8 s late, and joins
that took longer than ``setup_timeout`` were dropped. ``Admission`` lets
``limit`` joins be in setup at a time; the next wait in FIFO order, are told
so (the ``queued`` message, with their place in line), and their setup time
(``setup_timeout``) counts from when their turn starts: nobody is dropped
for waiting.

A turn starts when the join is admitted to its room and ends when its
media connects or fails, or the participant leaves (``Turn.release``).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.participant import Participant


class Turn:
    """One join's place in setup; ``release`` (idempotent) hands it to the next in line."""

    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def release(self) -> None:
        if self._admission is not None:
            self._admission._pass_on()
            self._admission = None


class Admission:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one join must be allowed in setup")
        self.limit = limit
        self.in_setup = 0
        self.admitted = 0
        """Joins that got their turn so far."""
        self.queued_total = 0
        """Joins that had to wait for it."""
        self._line: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        return sum(1 for f in self._line if not f.done())

    async def turn(self, on_queued: Callable[[int], None]) -> Turn:
        """Wait for a turn; ``on_queued(place)`` (1 = next) is called once if the join must wait."""
        if self.in_setup < self.limit and not self._line:
            self.in_setup += 1
            self.admitted += 1
            return Turn(self)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append(waiter)
        self.queued_total += 1
        on_queued(self.queued)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._pass_on()  # handed a turn just as the joiner left: the next one takes it
            else:
                self._line.remove(waiter)
            raise
        self.admitted += 1
        return Turn(self)

    def _pass_on(self) -> None:
        while self._line:
            waiter = self._line.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the place in setup goes straight to the next in line
                return
        self.in_setup -= 1

    def stats(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "in_setup": self.in_setup,
            "queued": self.queued,
            "admitted": self.admitted,
            "queued_total": self.queued_total,
        }


def end_turn_when_set_up(participant: Participant, turn: Turn) -> None:
    """The join's turn in setup ends when its media connects or fails (or, at the latest, when it leaves)."""

    @participant.pc.on("connectionstatechange")
    def _ended() -> None:
        if participant.pc.connectionState in ("connected", "failed", "closed"):
            turn.release()
