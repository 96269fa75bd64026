"""ASGI middleware guarding the API before any route runs."""

from __future__ import annotations

import logging

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from replay_api.errors import error_response

log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit.

    An ``HTTPException``, so FastAPI's body parsing passes it on unchanged and
    the app's one error handler answers with the usual JSON (or HTML) error.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes")


class BodySizeLimit:
    """413 for request bodies over ``max_bytes``, without reading them.

    A declared ``Content-Length`` over the limit is answered at once, before
    routing: the body is never read (and a client that sent
    ``Expect: 100-continue`` is never asked for it). A body without one
    (chunked) is counted as the app reads it and cut off at the first chunk
    past the limit. Either way the 413 carries ``Connection: close``, so the
    server drops the connection instead of draining what the client still
    sends.

    Pure ASGI rather than ``BaseHTTPMiddleware``, which would sit between
    every request and its body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if exceeded:
                    message = _with_connection_close(message)
            await send(message)

        try:
            await self.app(scope, limited_receive, closing_send)
        except BodyTooLarge:
            # Only if something between us and the error handler swallowed it.
            if started:
                log.info("%s %s: body over the limit after the response started", scope["method"], scope["path"])
                return
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_bytes)
        response = error_response(413, str(error.detail), headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            digits = bytes(value).strip()
            if not digits.isdigit():
                # The HTTP server refuses malformed lengths before we see them.
                return None
            # Python refuses to parse very long integers; any such length is too long.
            return int(digits) if len(digits) <= 18 else 10**18
    return None


def _with_connection_close(message: Message) -> Message:
    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
    return {**message, "headers": [*headers, (b"connection", b"close")]}


class RememberLanguage:
    """The page language switch (``?lang=fr``) sticks: a ``lang`` cookie on the answer.

    Pure ASGI, like :class:`BodySizeLimit`: it only looks at the query
    string and adds headers to the answer. Every HTML answer also says it
    varies with ``Accept-Language`` and ``Cookie``, so no cache hands a
    French page to an English reader.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from urllib.parse import parse_qs

        from replay_api.i18n import COOKIE, locales

        wanted = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang", [""])[0].lower()
        extra: list[tuple[bytes, bytes]] = []
        if wanted in locales():
            extra.append((b"set-cookie", f"{COOKIE}={wanted}; Path=/; Max-Age=31536000; SameSite=Lax".encode()))

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                vary = [(b"vary", b"Accept-Language, Cookie")] if html else []
                message = {**message, "headers": [*headers, *extra, *vary]}
            await send(message)

        await self.app(scope, receive, send_with_language)
