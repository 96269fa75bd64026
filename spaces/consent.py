"""Erasure links: a speaker's own right to be erased from a space, as a signed token.

Signed like join tokens (JWT, HS256, the shared secret) but with an audience
of their own (``erasure``): a join token is never an erasure token and an
erasure token never joins a room (PyJWT refuses a token with an audience
when none is expected, and one without when one is). The claims name the
space and the speaker; the token erases that speaker of that space and no
one else, and expires (``Settings.erasure_ttl``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from spaces.tokens import ALGORITHM, ISSUER, decode, new_token_id

AUDIENCE = "erasure"


@dataclass(frozen=True)
class ErasureClaims:
    space_id: str
    speaker: str
    expires_at: int


def issue_erasure(secret: str, *, space_id: str, speaker: str, ttl: int, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": speaker,
        "space": space_id,
        "iat": issued,
        "exp": issued + ttl,
        "jti": new_token_id(),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def is_erasure_token(token: str) -> bool:
    """Whether the token claims the erasure audience (unverified: only to pick the verifier)."""
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("aud") == AUDIENCE
    except jwt.InvalidTokenError:
        return False


def verify_erasure(secret: str, token: str) -> ErasureClaims:
    """Decode and check an erasure token; ``TokenError`` if forged, expired or not one."""
    return decode(
        secret,
        token,
        lambda payload: ErasureClaims(
            space_id=str(payload["space"]), speaker=str(payload["sub"]), expires_at=int(payload["exp"])
        ),
        audience=AUDIENCE,
        what="erasure link",
    )
