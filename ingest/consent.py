"""ICE consent freshness (RFC 7675) that a late event loop does not break.

aioice 0.13's ``Connection.query_consent`` sends a consent check every 4-6 s
with a single try of 500 ms (``retransmissions=0``) and closes the
connection after ``CONSENT_FAILURES`` (6) failed checks in a row. The 500 ms
is timed on the event loop: while hundreds of listeners join (DTLS
handshakes, ICE checks, SDP) the SFU's loop runs 2-8 s late, the response
to a check arrives in a millisecond but is read after the check's timer has
fired (behind the media queued on the same socket), and the check counts as
failed. Six in a row and a speaker is cut off, though every packet arrived.
The peer's checks fail the same way when the SFU answers them late.

``keep_consent(transport)`` gives one connection RFC 7675's rule instead:

- consent holds while an authenticated response came back within the last
  ``window()`` seconds (30 s: ``CONSENT_INTERVAL`` x ``CONSENT_FAILURES``, the
  figures aioice's own checks add up to);
- each check is a new transaction retransmitted on STUN's schedule (RFC 8489:
  500 ms, doubling) and it counts whenever its response comes, so a late
  loop delays the renewal but never voids it;
- before consent is declared lost, what the socket already holds is read:
  a response that arrived in time is judged by its arrival, not by when the
  loop got to it.

It replaces the one method aioice's ``connect()`` starts the checks with,
on this connection only (``tests/ingest/test_consent_window.py`` pins that
shape of aioice).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import random
import struct
import termios
from typing import Any

import aioice.ice
from aioice import stun
from aiortc import RTCIceTransport

log = logging.getLogger(__name__)

#: Tries at 0, 0.5, 1.5, 3.5 and 7.5 s; the transaction gives up at 15.5 s, well inside the window.
CHECK_RETRANSMISSIONS = 4
#: Loop turns given to reading what a socket already holds before consent is declared lost.
CATCH_UP_TURNS = 100


def interval() -> float:
    """Seconds between checks (randomized 0.8-1.2x, RFC 7675 section 5.1)."""
    return float(aioice.ice.CONSENT_INTERVAL)


def window() -> float:
    """Consent is lost when no response came back for this long (RFC 7675: 30 s)."""
    return float(aioice.ice.CONSENT_INTERVAL * aioice.ice.CONSENT_FAILURES)


def keep_consent(transport: RTCIceTransport) -> None:
    """Check consent on ``transport``'s connection by ``ConsentChecks`` (before ICE completes; idempotent)."""
    connection: Any = transport._connection
    if isinstance(getattr(connection.query_consent, "__self__", None), ConsentChecks):
        return
    setattr(connection, "query_consent", ConsentChecks(connection).run)  # noqa: B010 - one instance's method


class ConsentChecks:
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.renewed_at = 0.0
        """Loop time of the last authenticated response (or of ICE completing)."""
        self._checks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.renewed_at = loop.time()  # ICE checks just succeeded: that is consent
        try:
            while True:
                await asyncio.sleep(interval() * (0.8 + 0.4 * random.random()))
                if self._expired() and not await self._caught_up():
                    log.info("%s: no consent response for %.0f s; closing", self.connection, window())
                    self._stop_checks()  # before their sockets close
                    # close() cancels this task unless it is forgotten first (as aioice does).
                    self.connection._query_consent_task = None
                    await self.connection.close()
                    return
                for pair in list(self.connection._nominated.values()):
                    task = loop.create_task(self._check(pair))
                    self._checks.add(task)
                    task.add_done_callback(self._checks.discard)
        finally:
            self._stop_checks()

    def _stop_checks(self) -> None:
        for task in list(self._checks):
            task.cancel()

    def _expired(self) -> bool:
        return asyncio.get_running_loop().time() - self.renewed_at > window()

    async def _check(self, pair: Any) -> None:
        request = self.connection.build_request(pair, nominate=False)
        try:
            await pair.protocol.request(
                request,
                pair.remote_addr,
                integrity_key=self.connection.remote_password.encode("utf8"),
                retransmissions=CHECK_RETRANSMISSIONS,
            )
        except stun.TransactionError:
            return
        self.renewed_at = asyncio.get_running_loop().time()

    async def _caught_up(self) -> bool:
        """Let the loop read what the pairs' sockets hold; True if a response renewed consent meanwhile."""
        for _ in range(CATCH_UP_TURNS):
            if not self._expired():
                return True
            if not any(_unread(pair.protocol) for pair in self.connection._nominated.values()):
                return False
            await asyncio.sleep(0)
        return not self._expired()


def _unread(protocol: Any) -> bool:
    """Whether ``protocol``'s socket has a datagram waiting (``FIONREAD``: the next one's size)."""
    transport = getattr(protocol, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        size = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return False
    return bool(struct.unpack("i", size)[0])
