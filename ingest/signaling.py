"""The signaling protocol on ``/spaces/{space_id}/rtc``: JSON text messages with a ``type``.

The SFU always makes the offers and the client only answers, so there is
never glare: a speaker joining, a listener promoted, a new speaker slot all
come to the client as a new ``offer`` with a higher ``rev``.

Client -> SFU::

    {"type": "join", "token": "<jwt>"}                  first message, within JOIN_TIMEOUT
    {"type": "answer", "rev": 3, "sdp": "v=0..."}       answer to offer ``rev`` (non-trickle ICE)
    {"type": "mute", "muted": true}                     self-mute (publishers)
    {"type": "mute", "identity": "bob", "muted": true}  host mutes a speaker
    {"type": "hand", "raised": true}                    raise / lower a hand
    {"type": "promote", "identity": "carol"}            host: listener -> speaker
    {"type": "demote", "identity": "carol"}             host: speaker -> listener
    {"type": "remove", "identity": "bob"}               host: remove a participant
    {"type": "end"}                                     host: end the space
    {"type": "ping"}                                    -> {"type": "pong"}

SFU -> client::

    {"type": "welcome", "identity", "role", "space_id", "title", "room_time"}
    {"type": "offer", "rev", "sdp", "publish_mid": "0" | null, "slots": {"<mid>": <slot>}}
    {"type": "state", "speakers": [{"identity", "role", "slot", "muted"}], "hands": [...],
     "listeners": <count>, "host": "<identity>"}
    {"type": "speaking", "levels": {"<identity>": <0..1>}}   who is talking, ~4 Hz while it changes
    {"type": "role", "role": "speaker"}                 promoted / demoted
    {"type": "muted", "muted": true, "by": "<identity>"}
    {"type": "ended", "reason": "..."}                  the space is over; the socket closes
    {"type": "error", "code": "...", "message": "..."}  see ingest.exceptions
    {"type": "pong"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ingest.exceptions import BadMessage

#: Bigger messages close the socket (the server's frame limit, before parsing).
MAX_MESSAGE_BYTES = 64 * 1024
#: An SDP answer from a browser for a few dozen m-lines stays far below this.
MAX_SDP_CHARS = 60 * 1024
MAX_IDENTITY_CHARS = 200
JOIN_TIMEOUT = 10.0


@dataclass(frozen=True)
class Join:
    token: str


@dataclass(frozen=True)
class Answer:
    rev: int
    sdp: str


@dataclass(frozen=True)
class Mute:
    muted: bool
    identity: str | None = None


@dataclass(frozen=True)
class Hand:
    raised: bool


@dataclass(frozen=True)
class Promote:
    identity: str


@dataclass(frozen=True)
class Demote:
    identity: str


@dataclass(frozen=True)
class Remove:
    identity: str


@dataclass(frozen=True)
class End:
    pass


@dataclass(frozen=True)
class Ping:
    pass


ClientMessage = Join | Answer | Mute | Hand | Promote | Demote | Remove | End | Ping


def parse(raw: str | bytes) -> ClientMessage:
    """Validate one client message; raise ``BadMessage`` saying what is wrong."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError as e:
            raise BadMessage("messages must be UTF-8 JSON text") from e
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadMessage("message too large")
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise BadMessage(f"not JSON: {e}") from e
    except RecursionError as e:
        # "[[[[..." within the size limit: the parser's recursion runs out
        # long before the bytes do.
        raise BadMessage("JSON nested too deeply") from e
    if not isinstance(data, dict):
        raise BadMessage("a message must be a JSON object")
    kind = data.get("type")
    if kind == "join":
        return Join(token=_str(data, "token", 4096))
    if kind == "answer":
        rev = data.get("rev")
        if not isinstance(rev, int) or isinstance(rev, bool) or rev < 0:
            raise BadMessage("answer.rev must be the offer's rev (an integer)")
        return Answer(rev=rev, sdp=_str(data, "sdp", MAX_SDP_CHARS))
    if kind == "mute":
        identity = data.get("identity")
        return Mute(
            muted=_bool(data, "muted"),
            identity=None if identity is None else _str(data, "identity", MAX_IDENTITY_CHARS),
        )
    if kind == "hand":
        return Hand(raised=_bool(data, "raised"))
    if kind == "promote":
        return Promote(identity=_str(data, "identity", MAX_IDENTITY_CHARS))
    if kind == "demote":
        return Demote(identity=_str(data, "identity", MAX_IDENTITY_CHARS))
    if kind == "remove":
        return Remove(identity=_str(data, "identity", MAX_IDENTITY_CHARS))
    if kind == "end":
        return End()
    if kind == "ping":
        return Ping()
    if kind == "offer":
        raise BadMessage("the SFU makes the offers; answer its offer instead")
    raise BadMessage(f"unknown message type {kind!r}")


def _str(data: dict[str, Any], name: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise BadMessage(f"{data.get('type')}.{name} must be a non-empty string")
    if len(value) > limit:
        raise BadMessage(f"{data.get('type')}.{name} is longer than {limit} characters")
    return value


def _bool(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if not isinstance(value, bool):
        raise BadMessage(f"{data.get('type')}.{name} must be true or false")
    return value


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
