"""Spaces: the newest-first listing and one space's metadata."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from replay_api.deps import BlobsDep, CallerDep, CatalogDep, ReadableSpace, SettingsDep, visible_private
from replay_api.limits import RESPONSES, RateLimited
from replay_api.paging import decode_cursor, encode_cursor
from replay_api.schemas import SpaceDetail, SpaceList, SpaceOut, hls_url
from replay_api.sweep import sweep_unjoined
from spaces.catalog import SpaceFilter
from spaces.models import SpaceState

router = APIRouter(prefix="/spaces", tags=["spaces"])


# ``q`` searches every transcript, so it costs (and is limited) like a search.
@router.get(
    "",
    response_model=SpaceList,
    responses=RESPONSES,
    dependencies=[Depends(RateLimited("search", only_with="q")), Depends(sweep_unjoined)],
)
def list_spaces(
    catalog: CatalogDep,
    caller: CallerDep,
    state: SpaceState | None = None,
    speaker: Annotated[str | None, Query(max_length=200, description="Only spaces this person spoke in")] = None,
    since: Annotated[dt.datetime | None, Query(description="Created at or after (ISO 8601 or Unix seconds)")] = None,
    until: Annotated[dt.datetime | None, Query(description="Created before (ISO 8601 or Unix seconds)")] = None,
    q: Annotated[
        str | None, Query(max_length=500, description="Text in the title or anywhere in the transcript")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")] = None,
) -> SpaceList:
    flt = SpaceFilter(
        state=state,
        speaker=speaker,
        since=_timestamp(since),
        until=_timestamp(until),
        text=q,
        visible=visible_private(caller),
    )
    rows = catalog.list_spaces(flt, limit=limit, cursor=decode_cursor(cursor))
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].space_id) if len(rows) == limit else None
    return SpaceList(items=[SpaceOut.of(s) for s in rows], next_cursor=next_cursor)


@router.get("/{space_id}", response_model=SpaceDetail)
def get_space(space: ReadableSpace, catalog: CatalogDep, blobs: BlobsDep, settings: SettingsDep) -> SpaceDetail:
    detail = SpaceDetail.of(space, catalog.talk_times(space.space_id), catalog.erasures(space.space_id))
    detail.hls_url = hls_url(settings, blobs, space)
    return detail


def _timestamp(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    # A date without a zone is read as UTC, the zone every stored time is in.
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
