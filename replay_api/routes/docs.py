"""Interactive API docs (``/docs``), served whole from this app under a strict CSP.

FastAPI's own ``/docs`` and ``/redoc`` load their scripts from a public CDN
(and run an inline script): whoever serves that CDN could run code on our
origin, where tokens live. Swagger UI's files come from the
``swagger-ui-py`` package instead (Swagger UI 5, which reads OpenAPI 3.1),
mounted at ``/docs/assets``, and the page allows scripts from this server
only. ``/redoc`` is off: no Python package ships ReDoc's bundle.
"""

from __future__ import annotations

import html
import importlib.util
import logging
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from replay_api.security import DOCS_CSP, with_policy

log = logging.getLogger(__name__)

ASSETS = "/docs/assets"


def swagger_ui_dir() -> Path | None:
    """Swagger UI's dist files, from the ``swagger-ui-py`` package (not imported: only its files)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def install(app: FastAPI) -> None:
    """Serve ``/docs`` if Swagger UI's files are installed (create the app with ``docs_url=None``)."""
    dist = swagger_ui_dir()
    if dist is None:
        log.warning("swagger-ui-py is not installed: no /docs (the OpenAPI schema is at %s)", app.openapi_url)
        return
    app.mount(ASSETS, StaticFiles(directory=dist), name="docs-assets")
    router = APIRouter(include_in_schema=False)

    @router.get("/docs", response_class=HTMLResponse)
    async def docs(request: Request) -> HTMLResponse:
        title = html.escape(f"{app.title} - API docs")
        page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg">
</head>
<body data-openapi="{html.escape(app.openapi_url or "/openapi.json")}">
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""
        return HTMLResponse(
            page,
            headers=with_policy(DOCS_CSP),
        )

    app.include_router(router)
