"""Live captions in Redis: one capped stream per live space.

The room agent appends each caption event (interim and final) as it makes
it, and an end marker when the room is over; the API's Server-Sent Events
route reads from any point, so a client that reconnects with
``Last-Event-ID`` misses nothing and sees nothing twice. A Redis stream
suits both: entries are ordered and addressable by id, and ``XREAD BLOCK``
lets a reader wait without polling.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from spaces.models import Caption

MAXLEN = 5000
"""Entries kept per space (about an hour of busy talk); older ones are trimmed."""
TTL_SECONDS = 24 * 3600
"""A stream outlives its last write by this long, then Redis drops it."""

_END = "end"


def stream_key(prefix: str, space_id: str) -> str:
    """The stream of a space, under the deployment's key prefix (the queue name)."""
    return f"{prefix}:captions:{space_id}"


async def publish(redis: Redis, key: str, caption: Caption) -> str:
    """Append one caption event; returns its id (the SSE event id)."""
    return await _add(redis, key, {"caption": json.dumps(caption.to_dict())})


async def publish_end(redis: Redis, key: str) -> str:
    """Mark the stream finished: readers stop after this entry."""
    return await _add(redis, key, {_END: "1"})


async def _add(redis: Redis, key: str, fields: dict[str, str]) -> str:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(key, fields, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.expire(key, TTL_SECONDS)
        entry_id, _ = await pipe.execute()
    return _text(entry_id)


async def read(redis: Redis, key: str, *, after: str, block: float) -> list[tuple[str, dict[str, Any] | None]]:
    """Entries after id ``after`` (``"0"``: from the start), waiting up to ``block`` seconds for one.

    Each entry is ``(id, caption dict)``, or ``(id, None)`` for the end marker.
    """
    answer: Any = await redis.xread({key: after}, count=100, block=max(1, int(block * 1000)))
    streams = answer.items() if isinstance(answer, dict) else answer or ()  # RESP3 answers a map
    out: list[tuple[str, dict[str, Any] | None]] = []
    for _, entries in streams:
        for entry_id, fields in entries:
            data = {_text(k): _text(v) for k, v in fields.items()}
            out.append((_text(entry_id), None if _END in data else json.loads(data["caption"])))
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
