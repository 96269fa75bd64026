"""Signed, expiring tokens for joining live rooms and reading private spaces.

One scheme for both sides (JWT, HS256, secret shared by the API and the SFU):
the claims name the space, the role and the participant. Every token has its
own id (``jti``): a live room binds a participant's name to the token that
first used it, so another token with the same name cannot take it over.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt

from spaces.exceptions import TokenError

ALGORITHM = "HS256"
T = TypeVar("T")
ISSUER = "audio-spaces"


class Role(enum.StrEnum):
    HOST = "host"
    SPEAKER = "speaker"
    LISTENER = "listener"
    AGENT = "agent"
    """The room agent (live captions): hears every speaker, is never listed, publishes no audio.
    Its tokens are signed by the workers, never issued through the API."""

    @property
    def can_publish(self) -> bool:
        return self in (Role.HOST, Role.SPEAKER)


@dataclass(frozen=True)
class Claims:
    space_id: str
    role: Role
    identity: str
    expires_at: int
    token_id: str = ""
    """The token's own id (``jti``), unique per issued token."""


def new_token_id() -> str:
    return secrets.token_urlsafe(12)


def issue(secret: str, *, space_id: str, role: Role, identity: str, ttl: int, token_id: str | None = None) -> str:
    """A signed token; ``token_id`` (the ``jti``) defaults to a fresh random one."""
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "sub": identity,
        "space": space_id,
        "role": str(role),
        "iat": now,
        "exp": now + ttl,
        "jti": token_id or new_token_id(),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str, *, space_id: str | None = None) -> Claims:
    """Decode and check a token; ``space_id`` must match when given.

    Raises ``TokenError`` for anything wrong: forged, expired, malformed,
    or issued for another space.
    """
    claims = decode(
        secret,
        token,
        lambda payload: Claims(
            space_id=str(payload["space"]),
            role=Role(payload["role"]),
            identity=str(payload["sub"]),
            expires_at=int(payload["exp"]),
            token_id=str(payload["jti"]),
        ),
    )
    if space_id is not None and claims.space_id != space_id:
        raise TokenError("token is for another space")
    return claims


def decode(
    secret: str, token: str, claims: Callable[[dict[str, Any]], T], *, audience: str | None = None, what: str = "token"
) -> T:
    """A token of ours checked (signature, expiry, issuer, ``audience``) and its payload made ``claims``.

    ``TokenError`` naming ``what`` for anything wrong, a payload ``claims``
    cannot read included.
    """
    required = ["exp", "sub", "iss", "jti", *(["aud"] if audience else [])]
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER, audience=audience, options={"require": required}
        )
        return claims(payload)
    except jwt.ExpiredSignatureError as e:
        raise TokenError(f"{what} expired") from e
    except (jwt.InvalidTokenError, KeyError, ValueError) as e:
        raise TokenError(f"invalid {what}") from e
