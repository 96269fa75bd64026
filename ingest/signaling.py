"""The signaling protocol on ``/spaces/{space_id}/rtc``: JSON text messages with a ``type``.

The SFU always makes the offers and the client only answers, so there is
never glare: a speaker joining, a listener promoted, a new speaker slot all
come to the client as a new ``offer`` with a higher ``rev``.

Client -> SFU::

    {"type": "join", "token": "<jwt>"}                  first message, within JOIN_TIMEOUT
    {"type": "join", "token": "<jwt>", "record": false}  ... speaking without being recorded (default: recorded)
    {"type": "consent", "record": false}                a publisher's choice, before the microphone goes live
    {"type": "recording", "all_or_none": true}          host: record everyone or no one (declining = listening)
    {"type": "answer", "rev": 3, "sdp": "v=0..."}       answer to offer ``rev`` (non-trickle ICE)
    {"type": "mute", "muted": true}                     self-mute (publishers)
    {"type": "mute", "identity": "bob", "muted": true}  host mutes a speaker
    {"type": "hand", "raised": true}                    raise / lower a hand
    {"type": "hand", "raised": true, "name": "Carol"}   ... offering the name to speak under (taken on promotion)
    {"type": "name", "name": "Carol"}                   go by this name (only before anything is recorded under yours)
    {"type": "promote", "identity": "carol"}            host: listener -> speaker
    {"type": "demote", "identity": "carol"}             host: speaker -> listener
    {"type": "remove", "identity": "bob"}               host: remove a participant
    {"type": "end"}                                     host: end the space
    {"type": "ping"}                                    -> {"type": "pong"}
    {"type": "caption", "speaker", "text", "start", "end", "final", "seq", "utterance", "words": [...], "settled"}
                                                        the room agent only: relayed to everyone

SFU -> client::

    {"type": "queued", "position": 3}                   joins are paced: in line for media setup (3rd); welcome follows
    {"type": "welcome", "identity", "role", "space_id", "title", "room_time"}
    {"type": "offer", "rev", "sdp", "publish_mid": "0" | null, "slots": {"<mid>": <slot>}}
    {"type": "state", "speakers": [{"identity", "role", "slot", "muted"}], "hands": [...],
     "hand_names": {"<identity>": "<offered name>"}, "listeners": <count>, "host": "<identity>"}
    {"type": "speaking", "levels": {"<identity>": <0..1>}}   who is talking, ~4 Hz while it changes
    {"type": "role", "role": "speaker", "identity": "Carol"}   promoted / demoted (under this name)
    {"type": "renamed", "identity": "Carol"}            you go by this name now
    {"type": "muted", "muted": true, "by": "<identity>"}
    {"type": "caption", ...}                            live captions, as the room agent sent them
    {"type": "ended", "reason": "..."}                  the space is over; the socket closes
    {"type": "error", "code": "...", "message": "..."}  see ingest.exceptions
    {"type": "pong"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ingest.exceptions import BadMessage
from spaces.models import Caption, Word

#: Bigger messages close the socket (the server's frame limit, before parsing).
MAX_MESSAGE_BYTES = 64 * 1024
#: An SDP answer from a browser for a few dozen m-lines stays far below this.
MAX_SDP_CHARS = 60 * 1024
MAX_IDENTITY_CHARS = 200
#: A caption is one utterance: Whisper makes at most about 450 characters of a 30 s window.
MAX_CAPTION_CHARS = 2000
MAX_CAPTION_WORDS = 400
#: Lines of the cue a caption shows now (``spaces.captions``: 2 by the replay's rules).
MAX_CAPTION_LINES = 4
JOIN_TIMEOUT = 10.0


@dataclass(frozen=True)
class Join:
    token: str
    record: bool = True
    """Whether a publisher's audio is recorded (the live page asks before the microphone goes live)."""


@dataclass(frozen=True)
class Consent:
    record: bool


@dataclass(frozen=True)
class RecordingPolicy:
    all_or_none: bool


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
    name: str | None = None


@dataclass(frozen=True)
class Name:
    name: str


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


@dataclass(frozen=True)
class CaptionEvent:
    caption: Caption


ClientMessage = (
    Join
    | Answer
    | Mute
    | Hand
    | Name
    | Promote
    | Demote
    | Remove
    | End
    | Ping
    | CaptionEvent
    | Consent
    | RecordingPolicy
)


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
        return Join(token=_str(data, "token", 4096), record=_bool(data, "record") if "record" in data else True)
    if kind == "consent":
        return Consent(record=_bool(data, "record"))
    if kind == "recording":
        return RecordingPolicy(all_or_none=_bool(data, "all_or_none"))
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
        name = data.get("name")
        return Hand(
            raised=_bool(data, "raised"),
            name=None if name is None else _str(data, "name", MAX_IDENTITY_CHARS),
        )
    if kind == "name":
        return Name(name=_str(data, "name", MAX_IDENTITY_CHARS))
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
    if kind == "caption":
        return CaptionEvent(_caption(data))
    if kind == "offer":
        raise BadMessage("the SFU makes the offers; answer its offer instead")
    raise BadMessage(f"unknown message type {kind!r}")


def _caption(data: dict[str, Any]) -> Caption:
    words = data.get("words", [])
    if not isinstance(words, list) or len(words) > MAX_CAPTION_WORDS:
        raise BadMessage(f"caption.words must be a list of at most {MAX_CAPTION_WORDS} words")
    try:
        parsed = tuple(Word.from_dict(w) for w in words)
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise BadMessage("caption.words: each word needs start, end, text and speaker") from e
    lines = data.get("lines", [])
    if (
        not isinstance(lines, list)
        or len(lines) > MAX_CAPTION_LINES
        or not all(isinstance(line, str) and len(line) <= MAX_CAPTION_CHARS for line in lines)
    ):
        raise BadMessage(f"caption.lines must be a list of at most {MAX_CAPTION_LINES} strings")
    return Caption(
        speaker=_str(data, "speaker", MAX_IDENTITY_CHARS),
        text=_str(data, "text", MAX_CAPTION_CHARS),
        start=_number(data, "start"),
        end=_number(data, "end"),
        final=_bool(data, "final"),
        seq=int(_number(data, "seq")),
        utterance=int(_number(data, "utterance")),
        words=parsed,
        lines=tuple(lines),
        settled=_bool(data, "settled") if "settled" in data else False,
    )


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1e9:
        raise BadMessage(f"{data.get('type')}.{name} must be a non-negative number")
    return float(value)


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
