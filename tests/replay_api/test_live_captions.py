"""Live captions over Server-Sent Events, from the real Redis stream the room agent writes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from spaces import live_captions
from spaces.models import Caption, Space, SpaceState, Visibility, Word
from spaces.settings import Settings
from tests.replay_api.server import LiveServer
from tests.support.replay import token_for


def caption(seq: int, text: str, *, final: bool, speaker: str = "alice") -> Caption:
    words = tuple(Word(1.0 + i * 0.4, 1.3 + i * 0.4, t, speaker) for i, t in enumerate(text.split()))
    return Caption(speaker, text, words[0].start, words[-1].end, final, seq, 0, words)


def publish(settings: Settings, space_id: str, *captions: Caption | None) -> list[str]:
    """Append captions (None: the end marker) as the agent does; their event ids."""

    async def _go() -> list[str]:
        redis = Redis.from_url(settings.redis_url)
        key = live_captions.stream_key(settings.queue_name, space_id)
        try:
            return [
                await (live_captions.publish_end(redis, key) if c is None else live_captions.publish(redis, key, c))
                for c in captions
            ]
        finally:
            await redis.aclose()

    return asyncio.run(_go())


def events(response: httpx.Response, *, until: str = "end") -> list[tuple[str | None, str, dict[str, object]]]:
    """(id, event, data) of each SSE event, up to and including the first ``until`` event."""
    out: list[tuple[str | None, str, dict[str, object]]] = []
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in current:
                out.append((current.get("id"), current.get("event", "message"), json.loads(current["data"])))
                if out[-1][1] == until:
                    return out
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return out


@pytest.fixture
def server(local_app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(local_app) as s:
        yield s


def live_space(app: FastAPI, space_id: str, *, visibility: Visibility = Visibility.PUBLIC) -> Space:
    space = Space(space_id, "Live talk", "alice", time.time(), state=SpaceState.LIVE, visibility=visibility)
    app.state.catalog.put_space(space)
    return space


def test_events_arrive_in_order_and_the_stream_ends_with_the_space(local_app: FastAPI, server: LiveServer) -> None:
    settings: Settings = local_app.state.settings
    live_space(local_app, "livecap-aaaa")
    publish(settings, "livecap-aaaa", caption(1, "good", final=False), caption(2, "good evening all", final=True))
    with httpx.stream("GET", f"{server.url}/spaces/livecap-aaaa/live/captions", timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        publish(settings, "livecap-aaaa", caption(3, "thanks", final=True, speaker="bob"), None)
        got = events(r)
    kinds = [(e, d.get("speaker"), d.get("text"), d.get("final")) for _, e, d in got]
    assert kinds == [
        ("caption", "alice", "good", False),
        ("caption", "alice", "good evening all", True),
        ("caption", "bob", "thanks", True),
        ("end", None, None, None),
    ]
    first = got[1][2]
    assert first["seq"] == 2 and first["start"] == 1.0 and len(first["words"]) == 3  # type: ignore[arg-type]


def test_a_client_that_reconnects_continues_after_its_last_event(local_app: FastAPI, server: LiveServer) -> None:
    settings: Settings = local_app.state.settings
    live_space(local_app, "livecap-bbbb")
    ids = publish(settings, "livecap-bbbb", *(caption(i, f"word{i}", final=True) for i in range(1, 5)), None)
    url = f"{server.url}/spaces/livecap-bbbb/live/captions"
    with httpx.stream("GET", url, headers={"Last-Event-ID": ids[1]}, timeout=20) as r:
        texts = [d.get("text") for _, e, d in events(r) if e == "caption"]
    assert texts == ["word3", "word4"]


def test_a_private_space_needs_its_token(local_app: FastAPI, server: LiveServer) -> None:
    settings: Settings = local_app.state.settings
    live_space(local_app, "livecap-cccc", visibility=Visibility.PRIVATE)
    publish(settings, "livecap-cccc", caption(1, "secret plans", final=True), None)
    url = f"{server.url}/spaces/livecap-cccc/live/captions"
    assert httpx.get(url, timeout=20).status_code == 404
    other = token_for(settings, "livecap-dddd")
    assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}, timeout=20).status_code in (403, 404)
    own = token_for(settings, "livecap-cccc")
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {own}"}, timeout=20) as r:
        assert [d.get("text") for _, e, d in events(r) if e == "caption"] == ["secret plans"]


def test_a_space_that_is_over_ends_the_stream_without_an_end_marker(local_app: FastAPI, server: LiveServer) -> None:
    """The agent died before writing its end marker: the route notices the space is over."""
    live_space(local_app, "livecap-eeee")
    catalog = local_app.state.catalog
    catalog.put_space(replace(catalog.get_space("livecap-eeee"), state=SpaceState.RECORDED))
    started = time.monotonic()
    with httpx.stream("GET", f"{server.url}/spaces/livecap-eeee/live/captions", timeout=40) as r:
        got = events(r)
    assert [e for _, e, _ in got] == ["end"]
    assert time.monotonic() - started < 30  # one keep-alive period, with headroom


def test_bad_event_ids_and_a_missing_redis_are_clear_errors(local_app: FastAPI, settings: Settings) -> None:
    live_space(local_app, "livecap-ffff")
    with LiveServer(local_app) as s:
        r = httpx.get(f"{s.url}/spaces/livecap-ffff/live/captions?since=../../x", timeout=20)
        assert r.status_code == 422
    from replay_api.app import create_app

    down = create_app(replace(settings, redis_url="redis://127.0.0.1:1/0"))
    live_space(down, "livecap-ffff")
    with LiveServer(down) as s:
        r = httpx.get(f"{s.url}/spaces/livecap-ffff/live/captions", timeout=20)
    assert r.status_code == 503
    assert "live captions are unavailable" in r.json()["error"]["message"]
