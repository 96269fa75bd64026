"""One JSON error shape everywhere: ``{"error": {"status": 404, "message": "..."}}``.

The core's errors (``spaces.exceptions``) become HTTP statuses here and
nowhere else (``_STATUS``): modules below the routes raise them, not
``HTTPException``.

Web pages (routes that depend on ``html_errors``), and any request from a
browser (``Accept`` prefers ``text/html``: an unknown path, an API link opened
in a tab), get the same status with a small HTML page instead, in plain words
(``replay_api.messages``), since a person, not a program, reads those.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from replay_api import messages
from replay_api.i18n import negotiate
from spaces.exceptions import Busy, InvalidInput, NotFound, SpacesError, StorageError, TokenError

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[SpacesError], int]] = [
    (NotFound, 404),
    (InvalidInput, 400),
    (TokenError, 401),
    (Busy, 429),
    (StorageError, 503),
]


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status, headers=headers)


def html_errors(request: Request) -> None:
    """Router dependency of the web pages: errors on them render as HTML.

    Router dependencies are solved before the route's own parameters are
    validated, so even a malformed ``?t=`` gets the HTML page.
    """
    request.state.html_errors = True


def wants_html(request: Request) -> bool:
    """Whether a person reads the error: a web page, or a browser's request.

    Browsers ask for ``text/html`` first; programs (curl, fetch, httpx) send
    ``*/*`` or ask for JSON, and keep the JSON error.
    """
    if getattr(request.state, "html_errors", False):
        return True
    return _quality(request.headers.get("accept", ""), "text/html") > _quality(
        request.headers.get("accept", ""), "application/json"
    )


def _quality(accept: str, media_type: str) -> float:
    """The q-value ``accept`` gives ``media_type`` itself (wildcards do not count)."""
    for item in accept.split(","):
        kind, _, params = item.strip().partition(";")
        if kind.strip().lower() != media_type:
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    return float(value)
                except ValueError:
                    return 0.0
        return 1.0
    return 0.0


def _respond(
    request: Request,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    plain: str | None = None,
    title: str | None = None,
    details: bool = True,
) -> Response:
    """The JSON error, or for a person the HTML page with ``plain`` words (default: by status)."""
    if not wants_html(request):
        return error_response(status, message, headers)
    from replay_api.templating import templates

    tr = negotiate(request).gettext
    text = plain or messages.plain(status)
    context = {
        "status": status,
        "title": tr(title or messages.title(status)),
        "message": tr(text),
        "details": message if details and message != text else "",
    }
    return templates.TemplateResponse(request, "error.html", context, status_code=status, headers=dict(headers or {}))


def install(app: FastAPI) -> None:
    @app.exception_handler(SpacesError)
    async def _spaces_error(request: Request, exc: SpacesError) -> Response:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        headers: dict[str, str] | None = None
        if isinstance(exc, TokenError):
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        elif isinstance(exc, Busy):
            headers = {"Retry-After": str(exc.retry_after)}
        return _respond(request, status, str(exc), headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and "endpoint" not in request.scope:
            # No route matched: a mistyped or stale address, not a missing space.
            plain, title = messages.UNKNOWN_PAGE, messages.UNKNOWN_PAGE_TITLE
            return _respond(request, 404, str(exc.detail), exc.headers, plain=plain, title=title, details=False)
        return _respond(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _respond(
            request,
            422,
            problems or "invalid request",
            plain=messages.invalid(exc.errors(), negotiate(request).gettext),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Still JSON (or the HTML page) for a bug; the traceback goes to the log only.
        log.exception("%s %s failed", request.method, request.url.path)
        return _respond(request, 500, "internal error")
