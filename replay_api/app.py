"""The API and web pages: ``uvicorn --factory replay_api.app:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from replay_api import errors
from replay_api.routes import search, spaces
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    catalog = open_catalog(settings)
    catalog.create_schema()
    app = FastAPI(
        title="audio-spaces",
        summary="Replays, transcripts, captions and search of recorded audio spaces.",
        version="0.1.0",
    )
    app.state.settings = settings
    app.state.catalog = catalog
    app.state.blobs = open_blob_store(settings)
    errors.install(app)
    app.include_router(spaces.router)
    app.include_router(search.router)
    return app
