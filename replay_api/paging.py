"""Paging shared by the JSON API and the pages: keyset cursors of listings, the deepest search page."""

from __future__ import annotations

import base64
import json
import math

from spaces.exceptions import InvalidInput

#: Deeper search pages than this are refused: ranking them costs the whole result set.
MAX_OFFSET = 10_000


def encode_cursor(created_at: float, space_id: str) -> str:
    """An opaque keyset cursor: the (created_at, id) of the last row shown."""
    return base64.urlsafe_b64encode(json.dumps([created_at, space_id]).encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[float, str] | None:
    if cursor is None:
        return None
    try:
        created_at, space_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        value = float(created_at)
        if not math.isfinite(value) or not isinstance(space_id, str):
            raise ValueError(cursor)
        return value, space_id
    except (ValueError, TypeError) as e:
        raise InvalidInput("invalid cursor: pass next_cursor from the previous page unchanged") from e
