"""Past spaces: metadata, transcript, captions."""

from __future__ import annotations

import base64
import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from replay_api.deps import BlobsDep, CatalogDep, ReadableSpace, SettingsDep, TokenDep, visible_private
from replay_api.schemas import SpaceList, SpaceOut, TranscriptOut
from spaces import keys
from spaces.blobstore import BlobStore
from spaces.catalog import SpaceFilter
from spaces.exceptions import InvalidInput, NotFound
from spaces.models import Space, SpaceState, Transcript

router = APIRouter(prefix="/spaces", tags=["spaces"])


@router.get("", response_model=SpaceList)
def list_spaces(
    catalog: CatalogDep,
    settings: SettingsDep,
    token: TokenDep,
    state: SpaceState | None = None,
    speaker: Annotated[str | None, Query(max_length=200)] = None,
    since: float | None = None,
    until: float | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SpaceList:
    flt = SpaceFilter(
        state=state,
        speaker=speaker,
        since=since,
        until=until,
        text=q,
        visible=visible_private(settings, token),
    )
    rows = catalog.list_spaces(flt, limit=limit, cursor=_decode_cursor(cursor))
    next_cursor = _encode_cursor(rows[-1].created_at, rows[-1].space_id) if len(rows) == limit else None
    return SpaceList(items=[SpaceOut.of(s) for s in rows], next_cursor=next_cursor)


@router.get("/{space_id}", response_model=SpaceOut)
def get_space(space: ReadableSpace) -> SpaceOut:
    return SpaceOut.of(space)


@router.get("/{space_id}/transcript", response_model=TranscriptOut)
def get_transcript(space: ReadableSpace, blobs: BlobsDep) -> TranscriptOut:
    data = _ready_blob(space, blobs, keys.transcript(space.space_id))
    return TranscriptOut.of(Transcript.from_dict(json.loads(data)))


@router.get("/{space_id}/captions.vtt", response_class=Response)
def get_captions_vtt(space: ReadableSpace, blobs: BlobsDep) -> Response:
    data = _ready_blob(space, blobs, keys.captions(space.space_id, "vtt"))
    return Response(data, media_type="text/vtt; charset=utf-8")


def _ready_blob(space: Space, blobs: BlobStore, key: str) -> bytes:
    if space.state is not SpaceState.READY:
        raise NotFound(f"space {space.space_id!r} is {space.state}, not ready yet")
    return blobs.get(key)


def _encode_cursor(created_at: float, space_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, space_id]).encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[float, str] | None:
    if cursor is None:
        return None
    try:
        created_at, space_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(created_at), str(space_id)
    except (ValueError, TypeError) as e:
        raise InvalidInput("invalid cursor") from e
