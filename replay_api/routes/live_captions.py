"""Live captions as Server-Sent Events: ``GET /spaces/{id}/live/captions``.

Third-party clients get the same caption events the live page gets over the
SFU's socket, with the space's access rules. Each event's id is its Redis
stream id: a client that reconnects with ``Last-Event-ID`` (browsers'
``EventSource`` does it by itself) continues where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from replay_api.deps import CatalogDep, ReadableSpace, SettingsDep
from spaces import live_captions
from spaces.catalog import Catalog
from spaces.models import SpaceState

log = logging.getLogger(__name__)

router = APIRouter(tags=["live"])

#: Seconds between keep-alive comments (proxies close idle streams) and re-checks that the space is live.
KEEPALIVE = 15.0
_STREAM_ID = r"^(\d{1,20}-\d{1,20}|0|\$)$"
_LIVE = (SpaceState.CREATED, SpaceState.LIVE)


@router.get(
    "/spaces/{space_id}/live/captions",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "caption events"}},
)
async def live_captions_stream(
    request: Request,
    space: ReadableSpace,
    settings: SettingsDep,
    catalog: CatalogDep,
    since: Annotated[
        str, Query(pattern=_STREAM_ID, description="Event id to continue after: `0` from the start, `$` only new")
    ] = "0",
    last_event_id: Annotated[str | None, Header(pattern=_STREAM_ID)] = None,
) -> StreamingResponse:
    """Caption events ``{speaker, text, start, end, final, seq, utterance, words, settled}`` while the space is live.

    Interim events of an utterance are replaced by the next event of the
    same speaker and utterance; the final one stays until a ``settled`` one
    (seconds later, a higher ``seq``) replaces it. The stream ends with an
    ``end`` event when the space does.
    """
    # Reads block for up to KEEPALIVE seconds: the socket must wait longer than that.
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=KEEPALIVE + 10)
    key = live_captions.stream_key(settings.queue_name, space.space_id)
    try:
        await redis.ping()
    except RedisError as e:
        await redis.aclose()
        raise HTTPException(503, "live captions are unavailable right now (the queue's Redis is unreachable)") from e
    live = space.state in _LIVE
    events = _events(request, redis, key, catalog, space.space_id, after=last_event_id or since, live=live)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def _events(
    request: Request, redis: Redis, key: str, catalog: Catalog, space_id: str, *, after: str, live: bool
) -> AsyncIterator[str]:
    """The stream's entries after ``after``; for a space that is over, only what is there, at once."""
    try:
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            entries = await live_captions.read(redis, key, after=after, block=KEEPALIVE if live else 0.001)
            for entry_id, caption in entries:
                after = entry_id
                if caption is None:
                    yield f"id: {entry_id}\nevent: end\ndata: {{}}\n\n"
                    return
                yield f"id: {entry_id}\nevent: caption\ndata: {json.dumps(caption)}\n\n"
            if not entries:
                live = live and (await asyncio.to_thread(catalog.get_space, space_id)).state in _LIVE
                if not live:
                    yield "event: end\ndata: {}\n\n"
                    return
                yield ": keep-alive\n\n"
    except RedisError:
        log.warning("live captions of %s: Redis went away", space_id, extra={"space_id": space_id}, exc_info=True)
    finally:
        await redis.aclose()
