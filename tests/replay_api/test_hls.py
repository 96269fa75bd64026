"""The live HLS through the API: ``hls_url``, playlists and segments with the space's access rules.

The objects are the real writer's (``workers.hls``, fed speech on a test
clock), stored in the app's own blob store: the local directory (served by
the API) or S3 (playlists rewritten with presigned segment URLs).
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from replay_api.app import create_app
from spaces import hls
from spaces.models import Space, SpaceState, Visibility
from spaces.settings import Settings
from tests.support.clock import ManualClock
from tests.support.replay import token_for
from tests.support.services import MotoServer
from tests.workers.test_hls import feed, listed
from workers.hls import HlsOptions, LiveHls


def live_space(
    app: FastAPI, space_id: str, *, visibility: Visibility = Visibility.PUBLIC, seconds: float = 7.0
) -> Space:
    """A live space whose agent has written ``seconds`` of HLS (closed: the space then ended)."""
    catalog = app.state.catalog
    catalog.put_space(
        Space(space_id=space_id, title="On air", host="alice", created_at=time.time(), visibility=visibility)
    )
    catalog.set_state(space_id, SpaceState.LIVE)
    clock = ManualClock()
    writer = LiveHls(app.state.blobs, space_id, clock, clock0=time.time(), options=HlsOptions(tick=0.01))
    writer.start()
    feed(writer, clock, until=seconds)
    writer.stop()
    return catalog.get_space(space_id)


def test_hls_url_while_live_and_after_the_end(local_client: TestClient, local_app: FastAPI) -> None:
    catalog = local_app.state.catalog
    catalog.put_space(Space(space_id="quiet", title="Soon", host="alice", created_at=time.time()))
    assert local_client.get("/spaces/quiet").json()["hls_url"] is None  # nothing written yet
    live_space(local_app, "onair")
    url = local_client.get("/spaces/onair").json()["hls_url"]
    assert url == "/spaces/onair/hls/master.m3u8"
    catalog.set_state("onair", SpaceState.RECORDED)
    assert local_client.get("/spaces/onair").json()["hls_url"] == url


def test_a_player_walks_the_playlists_to_the_segments(local_client: TestClient, local_app: FastAPI) -> None:
    live_space(local_app, "onair")
    base = "/spaces/onair/hls/"
    master = local_client.get(base + "master.m3u8")
    assert master.status_code == 200 and master.headers["content-type"] == hls.PLAYLIST_TYPE
    assert listed(master.text) == ["audio.m3u8"] and 'URI="subs.m3u8"' in master.text
    audio = local_client.get(base + "audio.m3u8")
    assert audio.headers["cache-control"] == hls.CLOSED_PLAYLIST_CACHE  # closed: the space has ended
    segments = listed(audio.text)
    assert len(segments) >= 3
    blobs = local_app.state.blobs
    for name in segments:
        got = local_client.get(base + name)
        assert got.status_code == 200 and got.headers["content-type"] == "video/mp2t"
        assert got.headers["cache-control"] == hls.SEGMENT_CACHE
        assert got.content == blobs.get(hls.key("onair", name))
    subs = local_client.get(base + "subs.m3u8")
    first_vtt = local_client.get(base + listed(subs.text)[0])
    assert first_vtt.text.startswith("WEBVTT") and first_vtt.headers["content-type"].startswith("text/vtt")
    # Ranges: within the segment a 206, past its end a 416.
    size = len(blobs.get(hls.key("onair", segments[0])))
    part = local_client.get(base + segments[0], headers={"Range": "bytes=0-187"})
    assert part.status_code == 206 and len(part.content) == 188
    past = local_client.get(base + segments[0], headers={"Range": f"bytes={size + 10}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize(
    "name",
    ["..%2Fmanifest.json", "%2E%2E%2F%2E%2E%2Fsecret", "000001.ts%00", "000001.ts.bak", "1.ts", "master.m3u8x",
     "manifest.json", "0000001.ts", "audio.M3U8", "%5C..%5Cx.ts", "a" * 300],
)  # fmt: skip
def test_bad_names_are_4xx(local_client: TestClient, local_app: FastAPI, name: str) -> None:
    live_space(local_app, "onair", seconds=2.5)
    response = local_client.get(f"/spaces/onair/hls/{name}")
    assert 400 <= response.status_code < 500, (name, response.status_code)
    assert b"#EXTM3U" not in response.content and b"{" in response.content[:1]


def test_a_missing_segment_is_404(local_client: TestClient, local_app: FastAPI) -> None:
    live_space(local_app, "onair", seconds=2.5)
    assert local_client.get("/spaces/onair/hls/099999.ts").status_code == 404


def test_a_private_space_s_hls_needs_its_token(local_client: TestClient, local_app: FastAPI) -> None:
    live_space(local_app, "hidden", visibility=Visibility.PRIVATE)
    local_app.state.catalog.set_state("hidden", SpaceState.RECORDED)  # ended: the instant replay
    base = "/spaces/hidden/hls/"
    for name in ("master.m3u8", "audio.m3u8", "subs.m3u8", "000000.ts", "000000.vtt"):
        assert local_client.get(base + name).status_code == 404, name
        assert local_client.get(f"/spaces/nosuchspace/hls/{name}").status_code == 404
    token = token_for(local_app.state.settings, "hidden")
    other = token_for(local_app.state.settings, "onair")
    assert local_client.get(base + "master.m3u8", params={"token": other}).status_code == 404
    # A player given one URL with ?token= finds the token on every URI it is handed.
    master = local_client.get(base + "master.m3u8", params={"token": token})
    assert master.status_code == 200 and master.headers["cache-control"].startswith("private")
    audio_uri = listed(master.text)[0]
    assert audio_uri == f"audio.m3u8?token={token}" and f'URI="subs.m3u8?token={token}"' in master.text
    audio = local_client.get(base + audio_uri)
    segment = listed(audio.text)[0]
    assert segment.endswith(f"?token={token}")
    got = local_client.get(base + segment)
    assert got.status_code == 200 and got.headers["cache-control"].startswith("private")
    # The page's cookie opens it too (a native player sends no header).
    local_client.get("/spaces/hidden/replay", params={"token": token})
    assert local_client.get(base + "000000.ts").status_code == 200


@pytest.fixture
def s3_settings(settings: Settings, moto_server: MotoServer, s3_bucket: str) -> Settings:
    return replace(settings, s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint)


def test_with_s3_segments_are_presigned_and_expire(s3_settings: Settings, tmp_path: Path) -> None:
    app = create_app(s3_settings)
    with TestClient(app, follow_redirects=False) as client:
        live_space(app, "hidden", visibility=Visibility.PRIVATE)
        token = token_for(s3_settings, "hidden")
        assert client.get("/spaces/hidden/hls/audio.m3u8").status_code == 404
        audio = client.get("/spaces/hidden/hls/audio.m3u8", headers={"Authorization": f"Bearer {token}"})
        assert audio.status_code == 200 and audio.headers["cache-control"] == "private, max-age=1"
        uris = listed(audio.text)
        assert all("X-Amz-Signature=" in u and "X-Amz-Expires=900" in u for u in uris), uris[0]
        # The signed URL works from anywhere (a player), the bare object does not.
        with urllib.request.urlopen(uris[0]) as r:
            data = r.read()
        assert data == app.state.blobs.get(hls.key("hidden", "000000.ts"))
        (tmp_path / "seg.ts").write_bytes(data)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-f", "mpegts", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
             str(tmp_path / "seg.ts")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert set(probe.stdout.split()) == {"aac"}  # once per program and stream
        segment = client.get("/spaces/hidden/hls/000000.ts", headers={"Authorization": f"Bearer {token}"})
        assert segment.status_code == 307 and "X-Amz-Signature=" in segment.headers["location"]


def test_a_cdn_base_url_for_public_spaces(s3_settings: Settings) -> None:
    settings = replace(s3_settings, hls_base_url="https://cdn.example.com/")
    app = create_app(settings)
    with TestClient(app) as client:
        live_space(app, "onair", seconds=2.5)
        live_space(app, "hidden", visibility=Visibility.PRIVATE, seconds=2.5)
        assert client.get("/spaces/onair").json()["hls_url"] == "https://cdn.example.com/spaces/onair/live/master.m3u8"
        token = token_for(settings, "hidden")
        # Never a private space's: the CDN checks no tokens.
        private = client.get("/spaces/hidden", params={"token": token}).json()["hls_url"]
        assert private == "/spaces/hidden/hls/master.m3u8"
