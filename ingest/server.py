"""The SFU's HTTP face: the signaling WebSocket, health and stats.

``create_app(settings)`` builds the Starlette app (tests run it in-process
with uvicorn); ``serve(settings)`` runs it until SIGINT/SIGTERM. At start-up
the spool is locked (one SFU per spool) and spaces a previous process left
unfinished are recovered in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import resource
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ingest import recovery, udp
from ingest.exceptions import BadMessage, IngestError, OutOfOrder, TooMany, Unauthorized, UnknownSpace
from ingest.ice import restrict_host_addresses, split_list
from ingest.limits import RateLimiter
from ingest.loopwatch import LoopWatch
from ingest.participant import Participant
from ingest.recorder import RecorderOptions
from ingest.room import Room, RoomOptions
from ingest.rooms import Rooms
from ingest.signaling import JOIN_TIMEOUT, MAX_MESSAGE_BYTES, Join, error, parse
from ingest.spool import unfinished_spaces
from spaces import keys, tokens
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.exceptions import ConfigError, TokenError
from spaces.settings import Settings

log = logging.getLogger(__name__)

#: Messages that may queue for one slow client before it is dropped.
OUTBOX_LIMIT = 256
#: Protocol errors tolerated from one client before it is disconnected.
MAX_STRIKES = 20
#: Seconds a graceful stop waits for rooms to be handed over.
SHUTDOWN_GRACE = 30.0


@dataclass(frozen=True)
class SfuOptions:
    room: RoomOptions = field(default_factory=RoomOptions)
    join_rate: float = 5.0
    """Join attempts per second allowed from one address, after the burst."""
    join_burst: int = 50
    ice_addresses: list[str] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> SfuOptions:
        return cls(
            room=RoomOptions(
                max_participants=settings.sfu_max_participants,
                empty_timeout=float(settings.sfu_empty_timeout),
                ice_servers=split_list(settings.sfu_ice_servers),
                recorder=RecorderOptions(segment_seconds=float(settings.sfu_segment_seconds)),
            ),
            join_burst=settings.sfu_join_burst,
            ice_addresses=split_list(settings.sfu_ice_addresses),
        )


class WsChannel:
    """A participant's socket: queued sends, so the room never waits on a client."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[dict[str, Any] | tuple[int, str]] = asyncio.Queue(OUTBOX_LIMIT)
        self._closing = False
        self._writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, message: dict[str, Any]) -> None:
        if self._closing:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("client too slow to read; disconnecting")
            self._closing = True
            self._writer.cancel()
            asyncio.get_running_loop().create_task(self._close_now(1008, "too slow"))

    def close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait((code, reason))

    async def drain(self) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._writer), 5.0)

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, tuple):
                await self._close_now(*item)
                return
            try:
                await self.ws.send_text(json.dumps(item))
            except Exception:  # noqa: BLE001 - the client went away; the reader notices
                return

    async def _close_now(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code, reason[:120])


class Sfu:
    def __init__(self, settings: Settings, options: SfuOptions | None = None) -> None:
        self.settings = settings
        self.options = options or SfuOptions.from_settings(settings)
        self.blobs = open_blob_store(settings)
        self.catalog = open_catalog(settings)
        self.rooms = Rooms(settings=settings, options=self.options.room, blobs=self.blobs, catalog=self.catalog)
        self.limiter = RateLimiter(rate=self.options.join_rate, burst=self.options.join_burst)
        self.started = time.monotonic()
        self._lock_fd: int | None = None
        self._recovery: asyncio.Task[list[str]] | None = None
        self.loop_watch = LoopWatch()

    # --- start and stop -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
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
        self._lock_spool()
        await asyncio.to_thread(self.catalog.create_schema)
        unfinished = unfinished_spaces(self.settings.spool_dir)
        if unfinished:
            self.rooms.recovering.update(unfinished)
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> list[str]:
        try:
            return await recovery.recover_all(settings=self.settings, blobs=self.blobs, catalog=self.catalog)
        finally:
            self.rooms.recovering.clear()

    async def wait_recovered(self) -> None:
        if self._recovery is not None:
            await self._recovery

    async def stop(self) -> None:
        self.loop_watch.stop()
        try:
            # Bounded: what cannot be handed over now stays on the spool for recovery.
            await asyncio.wait_for(self.rooms.end_all("the server is shutting down"), SHUTDOWN_GRACE)
        except TimeoutError:
            log.warning("shutdown: rooms not finalized in %.0f s are left to recovery", SHUTDOWN_GRACE)
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
        self.catalog.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _lock_spool(self) -> None:
        spool = self.settings.spool_dir
        spool.mkdir(parents=True, exist_ok=True)
        fd = os.open(spool / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise ConfigError(f"another SFU is using the spool {spool}") from e
        self._lock_fd = fd

    # --- HTTP --------------------------------------------------------------------------

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "rooms": len(self.rooms.rooms)})

    async def stats(self, request: Request) -> JSONResponse:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return JSONResponse(
            {
                "uptime": round(time.monotonic() - self.started, 3),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 4),
                "loop": self.loop_watch.snapshot(),
                **self.rooms.stats(),
            }
        )

    # --- the signaling socket ----------------------------------------------------------

    async def rtc(self, ws: WebSocket) -> None:
        space_id = ws.path_params["space_id"]
        address = ws.client.host if ws.client else "?"
        await ws.accept()
        channel = WsChannel(ws)
        try:
            room, participant = await self._join(ws, channel, space_id, address)
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
            room.participant_gone(participant, reason="disconnected")
            await channel.drain()

    async def _join(self, ws: WebSocket, channel: WsChannel, space_id: str, address: str) -> tuple[Room, Participant]:
        if not keys.is_valid_id(space_id):
            raise UnknownSpace("invalid space id")
        if not self.limiter.allow(address):
            raise TooMany("too many join attempts from this address; try again shortly")
        try:
            raw = await asyncio.wait_for(_receive(ws), JOIN_TIMEOUT)
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
        room = await self.rooms.open(space_id)
        return room, room.admit(claims, channel)

    async def _serve(self, ws: WebSocket, channel: WsChannel, room: Room, participant: Participant) -> None:
        strikes = 0
        while True:
            raw = await _receive(ws)
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


async def _receive(ws: WebSocket) -> str | bytes | None:
    try:
        message = await ws.receive()
    except (WebSocketDisconnect, RuntimeError):
        return None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    return bytes(data) if data is not None else b""


def create_app(settings: Settings | None = None, options: SfuOptions | None = None) -> Starlette:
    settings = settings or Settings.from_env()
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
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


async def serve(settings: Settings) -> None:
    """Run the SFU until interrupted."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings))
    log.info("SFU listening on %s:%d", settings.sfu_host, settings.sfu_port)
    await server.serve()
