"""One JSON error shape everywhere: ``{"error": {"status": 404, "message": "..."}}``.

Web pages (routes that depend on ``html_errors``) get the same status with a
small HTML page instead, since a person, not a program, reads those.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from spaces.exceptions import InvalidInput, NotFound, SpacesError, StorageError, TokenError

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[SpacesError], int]] = [
    (NotFound, 404),
    (InvalidInput, 400),
    (TokenError, 401),
    (StorageError, 503),
]

_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Not ready yet",
    416: "Range not satisfiable",
    422: "Bad request",
    429: "Too many requests",
    503: "Unavailable",
}


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status, headers=headers)


def html_errors(request: Request) -> None:
    """Router dependency of the web pages: errors on them render as HTML.

    Router dependencies are solved before the route's own parameters are
    validated, so even a malformed ``?t=`` gets the HTML page.
    """
    request.state.html_errors = True


def _respond(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    if not getattr(request.state, "html_errors", False):
        return error_response(status, message, headers)
    from replay_api.templating import templates

    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "title": _TITLES.get(status, "Error"), "message": message},
        status_code=status,
        headers=dict(headers or {}),
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(SpacesError)
    async def _spaces_error(request: Request, exc: SpacesError) -> Response:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
        return _respond(request, status, str(exc), headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return _respond(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _respond(request, 422, problems or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Still JSON (or the HTML page) for a bug; the traceback goes to the log only.
        log.exception("%s %s failed", request.method, request.url.path)
        return _respond(request, 500, "internal error")
