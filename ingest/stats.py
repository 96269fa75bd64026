"""The SFU's load figures for ``/stats``: totals for anyone, per-room detail only for the operator."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request


def operator_credential(request: Request, operator_token: str) -> bool | None:
    """True for the operator's bearer token, False for any other credential, None for none."""
    header = request.headers.get("authorization", "")
    if not header:
        return None
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not operator_token:
        return False
    return hmac.compare_digest(given.strip().encode(), operator_token.encode())


def totals(detail: dict[str, Any]) -> dict[str, int]:
    """Sums over every room: the load, with nothing that names a space or a person."""
    rooms = detail["rooms"]
    return {
        "rooms": len(rooms),
        "participants": sum(r["participants"] for r in rooms),
        "publishers": sum(1 for r in rooms for s in r["slots"] if s["publisher"]),
        "forwarded": sum(s["forwarded"] for r in rooms for s in r["slots"]),
        "sent": sum(s["sent"] for r in rooms for s in r["slots"]),
        "recorded_packets": sum(t["packets"] for r in rooms for t in r["tracks"]),
        "dropped": sum(t["dropped"] for r in rooms for t in r["tracks"]),
        "recovering": len(detail["recovering"]),
    }
