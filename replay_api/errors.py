"""One JSON error shape everywhere: ``{"error": {"status": 404, "message": "..."}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from spaces.exceptions import InvalidInput, NotFound, SpacesError, StorageError, TokenError

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[SpacesError], int]] = [
    (NotFound, 404),
    (InvalidInput, 400),
    (TokenError, 401),
    (StorageError, 503),
]


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status, headers=dict(headers or {})
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(SpacesError)
    async def _spaces_error(request: Request, exc: SpacesError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(status, str(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return error_response(422, problems or "invalid request")
