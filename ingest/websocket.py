"""A participant's signaling socket (Starlette's WebSocket): sends queued, so the room never waits on a client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

log = logging.getLogger(__name__)

#: Messages that may queue for one slow client before it is dropped.
OUTBOX_LIMIT = 256


class WsChannel:
    """A participant's socket: queued sends, so the room never waits on a client."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[dict[str, Any] | str | tuple[int, str]] = asyncio.Queue(OUTBOX_LIMIT)
        self._closing = False
        self._writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, message: dict[str, Any] | str) -> None:
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
                await self.ws.send_text(item if isinstance(item, str) else json.dumps(item))
            except Exception:  # noqa: BLE001 - the client went away; the reader notices
                return

    async def _close_now(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code, reason[:120])


async def receive(ws: WebSocket) -> str | bytes | None:
    """The next message, text or bytes; None once the client is gone."""
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
