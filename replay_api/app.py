"""The API and web pages: ``uvicorn --factory replay_api.app:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from replay_api import accesslog, errors
from replay_api.hls_fast import HlsFastPath
from replay_api.limits import Limiter
from replay_api.middleware import BodySizeLimit, RememberLanguage
from replay_api.routes import clips, docs, hls, live, live_captions, pages, privacy, replay, search, spaces
from replay_api.templating import STATIC_DIR
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.placement import resolve_selector
from spaces.router import NodeRouter
from spaces.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    settings.validate()
    # Links carry ?token=: never into the access log (whoever runs uvicorn).
    accesslog.install()
    catalog = open_catalog(settings)
    catalog.create_schema()
    limiter = Limiter.from_settings(settings)
    router = NodeRouter.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await limiter.store.close()
        catalog.close()
        router.close()

    app = FastAPI(
        lifespan=lifespan,
        title="audio-spaces",
        summary="Replays, transcripts, captions and search of recorded audio spaces.",
        version="0.1.0",
        # Ours instead, without a CDN (routes/docs.py); ReDoc has no offline bundle.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.catalog = catalog
    app.state.blobs = open_blob_store(settings)
    app.state.limiter = limiter
    app.state.router = router
    app.state.select_node = resolve_selector(settings.sfu_selector)
    errors.install(app)
    # Outside routing and the error handlers, so an oversized body is refused
    # before any route (or its dependencies) runs.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RememberLanguage)
    # Outermost: a crowd of HLS listeners' plain GETs skip the rest (hls_fast.py).
    app.add_middleware(HlsFastPath, catalog=catalog, blobs=app.state.blobs, secret=settings.secret_key)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(pages.router)
    app.include_router(spaces.router)
    app.include_router(replay.router)
    app.include_router(clips.router)
    app.include_router(search.router)
    app.include_router(live.router)
    app.include_router(live_captions.router)
    app.include_router(hls.router)
    app.include_router(privacy.router)
    docs.install(app)
    return app
