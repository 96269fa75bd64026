from __future__ import annotations

import time

import jwt
import pytest

from spaces import tokens
from spaces.exceptions import TokenError
from spaces.tokens import Role

SECRET = "a-test-secret-of-at-least-32-bytes!!"


def test_round_trip() -> None:
    token = tokens.issue(SECRET, space_id="abc", role=Role.SPEAKER, identity="bob", ttl=60)
    claims = tokens.verify(SECRET, token, space_id="abc")
    assert (claims.space_id, claims.role, claims.identity) == ("abc", Role.SPEAKER, "bob")
    assert claims.role.can_publish and not Role.LISTENER.can_publish
    # Every token has its own id, so a room can tell two tokens for one name apart.
    other = tokens.verify(SECRET, tokens.issue(SECRET, space_id="abc", role=Role.SPEAKER, identity="bob", ttl=60))
    assert claims.token_id and other.token_id and claims.token_id != other.token_id


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (tokens.issue("other", space_id="abc", role=Role.HOST, identity="x", ttl=3600), "invalid"),
        (tokens.issue(SECRET, space_id="abc", role=Role.HOST, identity="x", ttl=-5), "expired"),
        (tokens.issue(SECRET, space_id="zzz", role=Role.HOST, identity="x", ttl=3600), "another space"),
        ("not.a.token", "invalid"),
        (
            jwt.encode(
                {"sub": "x", "space": "abc", "role": "god", "iss": "audio-spaces", "exp": int(time.time()) + 3600},
                SECRET,
                algorithm="HS256",
            ),
            "invalid",
        ),
        (
            jwt.encode(
                {"sub": "x", "space": "abc", "role": "host", "iss": "audio-spaces", "exp": int(time.time()) + 3600},
                "",
                algorithm="none",
            ),
            "invalid",
        ),
        # Without its own id (jti) a token cannot be bound to a name in a room.
        (
            jwt.encode(
                {"sub": "x", "space": "abc", "role": "host", "iss": "audio-spaces", "exp": int(time.time()) + 3600},
                SECRET,
                algorithm="HS256",
            ),
            "invalid",
        ),
    ],
)
def test_rejected(token: str, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        tokens.verify(SECRET, token, space_id="abc")
