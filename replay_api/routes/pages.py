"""The web pages: the home page (spaces and search) and the replay player.

Server-rendered, so they read well without JavaScript; ``static/replay.js``
adds the synced transcript, seeking and keyboard control on top.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from replay_api import transcripts
from replay_api.deps import (
    BlobsDep,
    CallerDep,
    CatalogDep,
    ReadableSpace,
    SettingsDep,
    TokenDep,
    remember_token,
    seconds,
    servable,
    visible_private,
)
from replay_api.errors import html_errors
from replay_api.limits import RateLimited
from replay_api.paging import MAX_OFFSET, decode_cursor, encode_cursor
from replay_api.schemas import hls_url, replay_link, space_links
from replay_api.security import page_headers, store_media
from replay_api.sweep import sweep_unjoined
from replay_api.templating import templates
from spaces.catalog import SpaceFilter
from spaces.languages import main_language
from spaces.models import SpaceState, Visibility
from spaces.settings import Settings

router = APIRouter(tags=["pages"], dependencies=[Depends(html_errors)], include_in_schema=False)

PAGE_SIZE = 20
#: The home page counts live spaces up to this many per state ("100+" beyond).
LIVE_COUNT_CAP = 100
#: Speaker colours are assigned in join order from this many CSS classes.
PALETTE_SIZE = 6


@router.get(
    "/",
    response_class=HTMLResponse,
    dependencies=[Depends(RateLimited("search", only_with="q")), Depends(sweep_unjoined)],
)
def home(
    request: Request,
    catalog: CatalogDep,
    settings: SettingsDep,
    caller: CallerDep,
    token: TokenDep,
    q: Annotated[str | None, Query(max_length=500)] = None,
    speaker: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Every space, newest first; with ``?q=``, search hits across all of them."""
    visible = visible_private(caller)
    context: dict[str, Any] = {"q": q or "", "speaker": speaker or "", "hits": None, "spaces": []}
    # Live spaces on every SFU node: the catalog records them all, whichever node holds them.
    context["live_count"] = sum(
        len(catalog.list_spaces(SpaceFilter(state=state, visible=visible), limit=LIVE_COUNT_CAP))
        for state in (SpaceState.CREATED, SpaceState.LIVE)
    )
    extra = {"token": token} if token else {}
    if q:
        hits = catalog.search(q, limit=PAGE_SIZE, offset=offset, speaker=speaker or None, visible=visible)
        context["hits"] = [{"hit": h, "link": _with(replay_link(h.space_id, h.start), extra)} for h in hits]
        if len(hits) == PAGE_SIZE:
            context["next_page"] = _with("/", {"q": q, "speaker": speaker or "", "offset": offset + PAGE_SIZE, **extra})
    else:
        rows = catalog.list_spaces(
            SpaceFilter(speaker=speaker or None, visible=visible),
            limit=PAGE_SIZE,
            cursor=decode_cursor(cursor),
        )
        context["spaces"] = [{"space": s, "link": _with(f"/spaces/{s.space_id}/replay", extra)} for s in rows]
        if len(rows) == PAGE_SIZE:
            next_cursor = encode_cursor(rows[-1].created_at, rows[-1].space_id)
            context["next_page"] = _with("/", {"cursor": next_cursor, "speaker": speaker or "", **extra})
    return _page(request, settings, "home.html", context)


@router.get("/spaces/{space_id}/replay", response_class=HTMLResponse)
def replay_page(
    request: Request,
    space: ReadableSpace,
    blobs: BlobsDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    token: TokenDep,
    t: Annotated[float | None, seconds("Start playback here (seconds), e.g. from a search hit")] = None,
) -> Response:
    """The replay player with its word-synced transcript."""
    auth = {"token": token} if token else {}
    links = {name: _with(url, auth) for name, url in space_links(space.space_id).items()}
    context: dict[str, Any] = {
        "space": space,
        "links": links,
        "private": space.visibility is Visibility.PRIVATE,
        "live_url": _with(f"/spaces/{space.space_id}/live", auth),
        "token": token or "",
    }
    if not servable(space, blobs):
        # An ended space plays its live HLS (the instant replay) until its replay is ready;
        # the player sends the cookie, not the token.
        if space.state is not SpaceState.LIVE:
            context["hls_url"] = hls_url(settings, blobs, space)
        waiting = _page(request, settings, "processing.html", context)
        remember_token(request, waiting, token, space.space_id)
        return waiting
    transcript = transcripts.load(blobs, space.space_id)
    talk = catalog.talk_times(space.space_id)
    names = list(dict.fromkeys([*space.speakers, *transcript.speakers, *talk]))
    colour = {name: i % PALETTE_SIZE for i, name in enumerate(names)}
    duration = space.duration or transcript.duration
    context.update(
        transcript=transcript,
        speakers=[
            {"name": n, "talk": talk.get(n, 0.0), "colour": colour[n], "language": space.languages.get(n)}
            for n in names
        ],
        # The captions' language: the one most of the words are in.
        caption_language=main_language(list(transcript.turns)),
        colour=colour,
        duration=duration,
        # A deep link past the end starts at the end rather than failing.
        start_at=min(t, duration) if t is not None else None,
        clip_base=f"/spaces/{space.space_id}/clip",
    )
    response = _page(request, settings, "replay.html", context)
    remember_token(request, response, token, space.space_id)
    return response


def _with(path: str, params: dict[str, Any]) -> str:
    params = {k: v for k, v in params.items() if v not in (None, "")}
    if not params:
        return path
    return path + ("&" if "?" in path else "?") + urlencode(params)


def _page(request: Request, settings: Settings, name: str, context: dict[str, Any]) -> Response:
    response = templates.TemplateResponse(request, name, context)
    response.headers.update(page_headers(media=store_media(settings)))
    return response
