"""The HLS fast path (``replay_api.hls_fast``): the route's answers, from memory, for plain GETs only.

The objects are stored as the agent stores them (``spaces.hls`` names and
playlists, in the app's local blob store); the route's own behaviour is
``test_hls.py``'s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from replay_api.app import create_app
from replay_api.deps import TOKEN_COOKIE
from replay_api.hls_fast import SPACE_SECONDS, HlsFastPath
from spaces import hls
from spaces.models import Space, SpaceState, Visibility
from spaces.settings import Settings
from tests.support.replay import token_for

SEGMENTS = ("000000.ts", "000001.ts", "000000.vtt")


def store(app: FastAPI, space_id: str, *, visibility: Visibility = Visibility.PUBLIC, entries: int = 2) -> None:
    """A live space with what its agent writes: master, media playlists and segments."""
    catalog, blobs = app.state.catalog, app.state.blobs
    catalog.put_space(Space(space_id=space_id, title="On air", host="a", created_at=time.time(), visibility=visibility))
    catalog.set_state(space_id, SpaceState.LIVE)
    master = hls.master(bandwidth=52800, codecs="mp4a.40.2", language="en")
    blobs.put(hls.key(space_id, hls.MASTER), master.encode())
    for ext, playlist in (("ts", hls.AUDIO), ("vtt", hls.SUBS)):
        media = hls.MediaPlaylist(ext=ext, target=2, clock0=time.time())
        for seq in range(entries):
            media = media.add(hls.Entry(seq, 2.0 * seq, 2.0))
        blobs.put(hls.key(space_id, playlist), media.render(window=6).encode())
    for seq, name in enumerate(SEGMENTS):
        body = b"WEBVTT\n\n" if name.endswith(".vtt") else bytes([seq]) * 188 * 40
        blobs.put(hls.key(space_id, name), body)


@pytest.fixture
def clients(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """The app, and the same app without the fast path (the route answers everything)."""
    fast, slow = create_app(settings), create_app(settings)
    slow.user_middleware = [m for m in slow.user_middleware if m.cls is not HlsFastPath]
    store(fast, "onair")
    store(fast, "hidden", visibility=Visibility.PRIVATE)
    with TestClient(fast, follow_redirects=False) as f, TestClient(slow, follow_redirects=False) as s:
        yield f, s


def test_answers_are_the_route_s(clients: tuple[TestClient, TestClient], settings: Settings) -> None:
    fast, slow = clients
    token = token_for(settings, "hidden")
    asks: list[tuple[str, dict[str, str], dict[str, str]]] = []
    for name in (hls.MASTER, hls.AUDIO, hls.SUBS, *SEGMENTS):
        asks += [
            (f"/spaces/onair/hls/{name}", {}, {}),
            (f"/spaces/hidden/hls/{name}", {"Authorization": f"Bearer {token}"}, {}),
            (f"/spaces/hidden/hls/{name}?token={token}", {}, {}),
            (f"/spaces/hidden/hls/{name}", {}, {TOKEN_COOKIE: token}),
        ]
    for url, headers, cookies in asks:
        fast.cookies.clear()
        slow.cookies.clear()
        fast.cookies.update(cookies)
        slow.cookies.update(cookies)
        want = slow.get(url, headers=headers)
        assert want.status_code == 200, url
        got = fast.get(url, headers=headers)
        assert (got.status_code, got.content, dict(got.headers)) == (200, want.content, dict(want.headers)), url
        again = {**headers, "If-None-Match": want.headers["etag"]}
        want304, got304 = slow.get(url, headers=again), fast.get(url, headers=again)
        assert want304.status_code == got304.status_code == 304, url
        assert dict(got304.headers) == dict(want304.headers), url


async def _route(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands in for the app behind the fast path: a 599, so a test sees what was passed on."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def fast_path(settings: Settings) -> tuple[TestClient, FastAPI]:
    app = create_app(settings)
    store(app, "onair")
    store(app, "hidden", visibility=Visibility.PRIVATE)
    store(app, "going")
    app.state.catalog.set_state("going", SpaceState.DELETING)
    middleware = HlsFastPath(_route, catalog=app.state.catalog, blobs=app.state.blobs, secret=settings.secret_key)
    return TestClient(middleware), app  # no lifespan: the stand-in has none


def test_only_plain_successes_are_answered_here(fast_path: tuple[TestClient, FastAPI], settings: Settings) -> None:
    client, _ = fast_path
    token = token_for(settings, "hidden")
    expired = token_for(settings, "onair", ttl=-10)
    forged = token_for(settings, "onair", secret="not-the-secret")
    answered = [
        ("GET", "/spaces/onair/hls/audio.m3u8", {}),
        ("GET", "/spaces/onair/hls/000001.ts", {}),
        ("GET", f"/spaces/hidden/hls/000001.ts?token={token}", {}),
        ("GET", "/spaces/hidden/hls/audio.m3u8", {"Authorization": f"Bearer {token}"}),
    ]
    for method, url, headers in answered:
        assert client.request(method, url, headers=headers).status_code == 200, url
    passed_on = [
        ("HEAD", "/spaces/onair/hls/audio.m3u8", {}),
        ("GET", "/spaces/onair/hls/000001.ts", {"Range": "bytes=0-99"}),
        ("GET", "/spaces/onair/hls/000001.ts", {"Range": "bytes=999999-"}),
        ("GET", "/spaces/onair/hls/099999.ts", {}),  # not stored
        ("GET", "/spaces/onair/hls/..%2Fmanifest.json", {}),
        ("GET", "/spaces/onair/hls/000001.ts.bak", {}),
        ("GET", "/spaces/onair/hls/audio.m3u8?lang=fr", {}),
        ("GET", "/spaces/onair/hls/audio.m3u8?token=" + "x" * 5000, {}),
        ("GET", "/spaces/onair/hls/audio.m3u8", {"Authorization": f"Bearer {expired}"}),
        ("GET", "/spaces/onair/hls/audio.m3u8", {"Authorization": f"Bearer {forged}"}),
        ("GET", "/spaces/onair/hls/audio.m3u8", {"Content-Length": "5"}),
        ("GET", "/spaces/hidden/hls/audio.m3u8", {}),  # no token
        ("GET", "/spaces/hidden/hls/audio.m3u8", {"Authorization": f"Bearer {token_for(settings, 'onair')}"}),
        ("GET", "/spaces/hidden/hls/audio.m3u8", {"Cookie": f"{TOKEN_COOKIE}={token_for(settings, 'onair')}"}),
        ("GET", "/spaces/going/hls/audio.m3u8", {}),
        ("GET", "/spaces/nosuchspace/hls/audio.m3u8", {}),
    ]
    for method, url, headers in passed_on:
        kwargs = {"content": b"12345"} if "Content-Length" in headers else {}
        assert client.request(method, url, headers=headers, **kwargs).status_code == 599, (method, url, headers)


def test_a_new_playlist_at_once_and_a_deletion_within_a_second(fast_path: tuple[TestClient, FastAPI]) -> None:
    client, app = fast_path
    url = "/spaces/onair/hls/audio.m3u8"
    first = client.get(url)
    assert hls.segment_name(2, "ts") not in first.text
    store(app, "onair", entries=3)  # the agent's next playlist
    second = client.get(url)
    assert hls.segment_name(2, "ts") in second.text and second.headers["etag"] != first.headers["etag"]
    # Being deleted: the row kept for a second still says live, then the route decides (a 404).
    app.state.catalog.mark_deleting("onair")
    changed = time.monotonic()
    while client.get(url).status_code == 200:
        assert time.monotonic() - changed < SPACE_SECONDS + 0.5, "still served a second after"
    assert client.get(url).status_code == 599
