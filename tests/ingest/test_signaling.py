"""The signaling message schema and the join limiter."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.exceptions import BadMessage
from ingest.limits import RateLimiter
from ingest.signaling import Answer, Hand, Join, Mute, Name, Promote, parse


def test_valid_messages() -> None:
    assert parse('{"type": "join", "token": "abc"}') == Join("abc")
    assert parse(b'{"type": "answer", "rev": 2, "sdp": "v=0"}') == Answer(2, "v=0")
    assert parse('{"type": "mute", "muted": true}') == Mute(True)
    assert parse('{"type": "mute", "muted": false, "identity": "bob"}') == Mute(False, "bob")
    assert parse('{"type": "promote", "identity": "c"}') == Promote("c")
    assert parse('{"type": "hand", "raised": true}') == Hand(True)
    assert parse('{"type": "hand", "raised": true, "name": "Carol"}') == Hand(True, "Carol")
    assert parse('{"type": "name", "name": "Carol"}') == Name("Carol")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("nope", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "answer", "rev": true, "sdp": "v=0"}', "rev"),
        ('{"type": "answer", "rev": 1}', "sdp"),
        ('{"type": "join", "token": ""}', "token"),
        ('{"type": "mute", "muted": "yes"}', "muted"),
        ('{"type": "offer", "sdp": "v=0"}', "SFU makes the offers"),
        ('{"type": "warp"}', "unknown"),
        (b"\xff\xfe", "UTF-8"),
        (json.dumps({"type": "promote", "identity": "x" * 500}), "longer"),
        ('{"type": "hand", "raised": true, "name": 7}', "hand.name"),
        ('{"type": "name"}', "name.name"),
        ("[" * 60_000, "nested too deeply"),
        ('{"type": "mute", "muted": ' + '{"a": ' * 5_000 + "1" + "}" * 5_001, "nested too deeply"),
    ],
)
def test_invalid_messages_say_why(raw: str | bytes, says: str) -> None:
    with pytest.raises(BadMessage, match=says):
        parse(raw)


@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        st.dictionaries(st.text(max_size=8), st.text(max_size=8)).map(json.dumps),
    )
)
def test_parse_only_raises_bad_message(raw: str | bytes) -> None:
    try:
        parse(raw)
    except BadMessage:
        pass


def test_rate_limiter_allows_a_burst_then_a_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.allow("a", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", now=0.0)
    assert not limiter.allow("a", now=0.2)
    assert limiter.allow("a", now=0.6)
