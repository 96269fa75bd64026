"""The SFU's HTTP face: the signaling WebSocket, health and stats.

``create_app(settings)`` builds the Starlette app (tests run it in-process
with uvicorn); ``serve(settings)`` runs it until SIGINT/SIGTERM. At start-up
the spool is locked (one SFU per spool), the node registers in Redis
(``ingest.node``; one live process per node id) and spaces a previous
process left unfinished are recovered in the background. A join for a
space another node holds gets ``moved``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import resource
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ingest import fanout, recovery, udp
from ingest.admission import Admission, Turn, end_turn_when_set_up
from ingest.exceptions import (
    BadMessage,
    IngestError,
    OutOfOrder,
    Redirect,
    SpaceEnded,
    TooMany,
    Unauthorized,
    UnknownSpace,
)
from ingest.ice import restrict_host_addresses, restrict_udp_ports
from ingest.limits import RateLimiter
from ingest.loopwatch import LoopWatch
from ingest.node import Counters, NodeAgent
from ingest.options import SfuOptions
from ingest.participant import Participant
from ingest.room import Room
from ingest.rooms import Rooms
from ingest.signaling import JOIN_TIMEOUT, MAX_MESSAGE_BYTES, Join, error, parse
from ingest.spool import RoomRecord, SpaceSpool, unfinished_spaces
from ingest.stats import operator_credential, totals
from ingest.websocket import WsChannel, receive
from spaces import keys, names, tokens
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.exceptions import ConfigError, RouterUnavailable, TokenError
from spaces.models import SpaceState
from spaces.names import holder_address
from spaces.nodes import parse_port_range
from spaces.settings import Settings

log = logging.getLogger(__name__)

#: Protocol errors tolerated from one client before it is disconnected.
MAX_STRIKES = 20
#: Seconds a graceful stop waits for rooms to be handed over.
SHUTDOWN_GRACE = 30.0


class Sfu:
    def __init__(self, settings: Settings, options: SfuOptions | None = None) -> None:
        self.settings = settings
        self.options = options or SfuOptions.from_settings(settings)
        self.blobs = open_blob_store(settings)
        self.catalog = open_catalog(settings)
        self.node = NodeAgent(settings, catalog=self.catalog, counters=self._counters)
        self.rooms = Rooms(
            settings=settings,
            options=self.options.room,
            blobs=self.blobs,
            catalog=self.catalog,
            on_finished=self.node.release,
        )
        self.limiter = RateLimiter(rate=self.options.join_rate, burst=self.options.join_burst)
        self.admission = Admission(self.options.joins_in_setup)
        self.started = time.monotonic()
        self._lock_fd: int | None = None
        self._running = False
        self._recovery: asyncio.Task[list[str]] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self.loop_watch = LoopWatch()

    # --- start and stop -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if not self._running:
            await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        udp.install()  # drained sockets, control before media (ingest/udp.py)
        self.loop_watch.start()
        if self.options.ice_addresses:
            restrict_host_addresses(self.options.ice_addresses)
        ports = parse_port_range(self.settings.sfu_udp_ports)
        if ports is not None:
            restrict_udp_ports(asyncio.get_running_loop(), *ports)
        self._lock_spool()
        try:
            # After the spool lock: holding it proves an earlier process of this node is gone.
            await self.node.start(holds_spool=True)
        except BaseException:
            self._unlock_spool()
            raise
        self._running = True
        await asyncio.to_thread(self.catalog.create_schema)
        unfinished = unfinished_spaces(self.settings.spool_dir)
        if unfinished:
            resumable = await self._resumable(unfinished)
            self.rooms.resumable.update(resumable)
            self.rooms.recovering.update(unfinished)
            loop = asyncio.get_running_loop()
            self._recovery = loop.create_task(self._recover([s for s in unfinished if s not in resumable]))
            if resumable:
                self._expiry = loop.create_task(self._recover_unclaimed(self.options.room.empty_timeout))

    async def _resumable(self, unfinished: list[str]) -> dict[str, RoomRecord]:
        """Rooms this node's previous process left live and still owns: they may be joined again.

        The pages of a space come back by themselves after a crash; the room
        they find is the same one (room clock, tracks), not a finalized space.
        """
        out = {}
        for space_id in unfinished:
            spool = SpaceSpool(self.settings.spool_dir, space_id)
            try:
                if not spool.exists() or spool.read_room().phase is not SpaceState.LIVE:
                    continue
                owner = await asyncio.to_thread(self.node.router.owner, space_id)
            except (OSError, ValueError, RouterUnavailable):
                continue  # recovery handles it (and retries Redis)
            if owner not in (None, self.node.node_id):
                continue  # swept or moved meanwhile: recovery decides
            record = await asyncio.to_thread(recovery.salvage, spool)
            await asyncio.to_thread(spool.write_room, record)
            out[space_id] = record
        return out

    async def _recover(self, spaces: list[str]) -> list[str]:
        try:
            return await recovery.recover_all(
                settings=self.settings,
                blobs=self.blobs,
                catalog=self.catalog,
                claim=self.node.claim_recovery,
                on_finished=self.node.release,
                spaces=spaces,
            )
        finally:
            self.rooms.recovering.difference_update(spaces)

    async def _recover_unclaimed(self, delay: float) -> None:
        """Resumable rooms nobody came back to within ``delay`` seconds are finalized (partial)."""
        await asyncio.sleep(delay)
        if self._recovery is not None:
            await asyncio.shield(self._recovery)
        spaces = list(self.rooms.resumable)
        for space_id in spaces:
            del self.rooms.resumable[space_id]
        await self._recover(spaces)

    async def wait_recovered(self) -> None:
        if self._recovery is not None:
            await self._recovery

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self.loop_watch.stop()
        try:
            # Bounded: what cannot be handed over now stays on the spool for recovery.
            await asyncio.wait_for(self.rooms.end_all("the server is shutting down"), SHUTDOWN_GRACE)
        except TimeoutError:
            log.warning("shutdown: rooms not finalized in %.0f s are left to recovery", SHUTDOWN_GRACE)
        for task in (self._recovery, self._expiry):
            if task is not None and not task.done():
                task.cancel()
        await self.node.stop()
        self.catalog.close()
        self._unlock_spool()

    def _unlock_spool(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _counters(self) -> Counters:
        rooms = [r.stats() for r in list(self.rooms.rooms.values())]
        return Counters(
            rooms=len(rooms),
            participants=sum(int(r.get("participants", 0)) for r in rooms),
            forwarded=sum(int(s.get("forwarded", 0)) for r in rooms for s in r.get("slots", ())),
        )

    def _lock_spool(self) -> None:
        spool = self.settings.spool_dir
        spool.mkdir(parents=True, exist_ok=True)
        fd = os.open(spool / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise ConfigError(
                f"another SFU is using the spool {spool} (SFU node {self.node.node_id!r} already runs on this "
                "machine?); give each node its own SPACES_SFU_NODE_ID, port and SPACES_SFU_SPOOL_DIR"
            ) from e
        self._lock_fd = fd

    # --- HTTP --------------------------------------------------------------------------

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "rooms": len(self.rooms.rooms)})

    async def stats(self, request: Request) -> JSONResponse:
        """Load figures: totals for anyone, per-room detail for the operator.

        Per-room detail names live spaces (private ones too) and their
        publishers, so it needs ``Authorization: Bearer <SPACES_OPERATOR_TOKEN>``;
        without a configured operator token nobody gets it.
        """
        operator = operator_credential(request, self.settings.operator_token)
        if operator is False:
            return JSONResponse(
                {"error": {"status": 401, "message": "not the operator token"}},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="sfu-stats"'},
            )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        detail = self.rooms.stats()
        body: dict[str, Any] = {
            "uptime": round(time.monotonic() - self.started, 3),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 4),
            "node": self.node.node_id,
            "loop": self.loop_watch.snapshot(),
            "joins": self.admission.stats(),
            "totals": totals(detail),
        }
        if operator:
            body.update(detail)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    # --- the signaling socket ----------------------------------------------------------

    async def rtc(self, ws: WebSocket) -> None:
        space_id = ws.path_params["space_id"]
        address = ws.client.host if ws.client else "?"
        await ws.accept()
        channel = WsChannel(ws)
        try:
            room, participant, turn = await self._join(ws, channel, space_id, address)
        except Redirect as e:
            channel.send(e.message_dict())
            channel.close(e.close_code, e.code)
            await channel.drain()
            return
        except IngestError as e:
            log.info("join to %s from %s refused: %s", space_id, address, e.message)
            channel.send(error(e.code, e.message))
            channel.close(e.close_code or 4400, e.code)
            await channel.drain()
            return
        except Exception:
            # Catalog or spool trouble: say so and let the client retry later.
            log.exception("join to %s failed", space_id, extra={"space_id": space_id})
            channel.send(error("unavailable", "the SFU cannot open this space right now; try again"))
            channel.close(1011, "unavailable")
            await channel.drain()
            return
        try:
            await self._serve(ws, channel, room, participant)
        finally:
            turn.release()
            room.participant_gone(participant, reason="disconnected")
            await channel.drain()

    async def _join(
        self, ws: WebSocket, channel: WsChannel, space_id: str, address: str
    ) -> tuple[Room, Participant, Turn]:
        if not keys.is_valid_id(space_id):
            raise UnknownSpace("invalid space id")
        if not self.limiter.allow(address):
            raise TooMany("too many join attempts from this address; try again shortly")
        try:
            raw = await asyncio.wait_for(receive(ws), JOIN_TIMEOUT)
        except TimeoutError as e:
            raise BadMessage(f"send a join message within {JOIN_TIMEOUT:.0f} s") from e
        if raw is None:
            raise BadMessage("closed before joining")
        msg = parse(raw)
        if not isinstance(msg, Join):
            raise OutOfOrder("the first message must be a join")
        try:
            claims = tokens.verify(self.settings.secret_key, msg.token, space_id=space_id)
        except TokenError as e:
            raise Unauthorized(str(e)) from e
        # Removal holds on every SFU node and across a room's reopening: the catalog has the bans.
        if await asyncio.to_thread(self.catalog.is_banned, space_id, token_id=claims.token_id):
            raise SpaceEnded("you were removed from this space by the host")
        if claims.role is not tokens.Role.AGENT and not names.is_valid_name(claims.identity):
            # The API never signs such a name; a token made elsewhere might.
            raise Unauthorized("the token's name is not a valid name (1 to 64 characters on one line)")
        await self._claim_unless_open(space_id)  # a join for another node is moved before waiting in line
        # In line for media setup (ingest.admission): the setup timeout starts with the turn, at admit().
        turn = await self.admission.turn(lambda place: channel.send({"type": "queued", "position": place}))
        try:
            await self._claim_unless_open(space_id)  # the room may have closed while this join waited
            room = await self.rooms.open(space_id)
            participant = room.admit(claims, channel, address=holder_address(address), record=msg.record)
        except BaseException:
            turn.release()
            raise
        end_turn_when_set_up(participant, turn)
        return room, participant, turn

    async def _claim_unless_open(self, space_id: str) -> None:
        if space_id not in self.rooms.rooms:
            # Not open here: only the node that holds the space may open it.
            await self.node.claim_room(space_id)

    async def _serve(self, ws: WebSocket, channel: WsChannel, room: Room, participant: Participant) -> None:
        strikes = 0
        while True:
            raw = await receive(ws)
            if raw is None:
                return
            try:
                await room.handle(participant, parse(raw))
            except IngestError as e:
                channel.send(error(e.code, e.message))
                if e.close_code is not None:
                    channel.close(e.close_code, e.code)
                    return
                strikes += 1
                if strikes > MAX_STRIKES:
                    channel.close(4400, "too many bad messages")
                    return
            if room.participants.get(participant.identity) is not participant:
                return  # removed or replaced


def create_app(settings: Settings | None = None, options: SfuOptions | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    settings.validate()
    sfu = Sfu(settings, options)
    app = Starlette(
        routes=[
            WebSocketRoute("/spaces/{space_id}/rtc", sfu.rtc),
            Route("/healthz", sfu.health),
            Route("/stats", sfu.stats),
        ],
        lifespan=sfu.lifespan,
    )
    app.state.sfu = sfu
    return app


def uvicorn_config(app: Starlette, settings: Settings, *, port: int | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.sfu_host,
        port=settings.sfu_port if port is None else port,
        ws_max_size=MAX_MESSAGE_BYTES,
        # Signaling messages are a few hundred bytes, and a room broadcasts each
        # to every participant: compressing them per socket cost more CPU than
        # the bytes it saves.
        ws_per_message_deflate=False,
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


def _raise_fd_limit() -> None:
    """Up to the hard limit: a listener holds a websocket and ICE sockets, and the C fan-out a dup of one.

    At the common soft limit of 1,024, some 300 listeners would leave a node out of fds.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard and hard != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as e:
            log.warning("could not raise the open-files limit from %d: %s", soft, e)


async def serve(settings: Settings) -> None:
    """Run the SFU until interrupted; ``ConfigError`` if it may not start (its node id is live elsewhere)."""
    native = fanout.configure(settings.sfu_fanout)
    _raise_fd_limit()
    app = create_app(settings)
    sfu: Sfu = app.state.sfu
    # Started before uvicorn so a refusal is one clear error, not a lifespan traceback.
    await sfu.start()
    server = uvicorn.Server(uvicorn_config(app, settings))
    log.info(
        "SFU node %s listening on %s:%d (fan-out in %s)",
        settings.node_id,
        settings.sfu_host,
        settings.sfu_port,
        "C" if native else "Python",
    )
    try:
        await server.serve()
    finally:
        await sfu.stop()  # a no-op after the lifespan's own (e.g. when the port was taken)
