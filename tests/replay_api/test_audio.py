"""GET /spaces/{id}/audio: ranges, ETags, content types; S3 redirects to a presigned URL."""

from __future__ import annotations

import re
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from replay_api.routes.replay import PRESIGNED_SECONDS
from spaces.models import Space
from tests.support.replay import Recording, publish


@pytest.fixture
def audio_url(local_published: Space) -> str:
    return f"/spaces/{local_published.space_id}/audio"


def test_whole_file(local_client: TestClient, audio_url: str, recording: Recording) -> None:
    response = local_client.get(audio_url)
    assert response.status_code == 200
    assert response.content == recording.ogg.read_bytes()
    assert response.headers["content-type"] == "audio/ogg"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(recording.ogg.stat().st_size)
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])


def test_m4a_rendition(local_client: TestClient, audio_url: str, recording: Recording) -> None:
    response = local_client.get(audio_url, params={"format": "m4a"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mp4"
    assert response.content == recording.m4a.read_bytes()
    ogg_tag = local_client.get(audio_url, headers={"Range": "bytes=0-0"}).headers["etag"]
    assert response.headers["etag"] != ogg_tag


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, None),
        ("bytes=-500", None, None),
        ("bytes=50-99999999", 50, None),
    ],
)
def test_single_ranges(
    local_client: TestClient,
    audio_url: str,
    recording: Recording,
    header: str,
    first: int | None,
    last: int | None,
) -> None:
    data = recording.ogg.read_bytes()
    size = len(data)
    start = first if first is not None else size - 500
    end = last if last is not None else size - 1
    response = local_client.get(audio_url, headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.content == data[start : end + 1]


def test_large_ranges_stream_in_chunks(local_app: FastAPI, local_client: TestClient, recording: Recording) -> None:
    """A range above the inline limit is streamed from the store chunk by chunk."""
    big = recording.ogg.parent / "big.ogg"
    big.write_bytes(recording.ogg.read_bytes() * 40)  # ~4 MB: several 256 KiB chunks
    space = publish(local_app.state.catalog, local_app.state.blobs, recording, space_id="big")
    local_app.state.blobs.put_file("spaces/big/replay.ogg", big)
    data = big.read_bytes()
    response = local_client.get(f"/spaces/{space.space_id}/audio", headers={"Range": "bytes=100-"})
    assert response.status_code == 206
    assert response.content == data[100:]
    assert local_client.get(f"/spaces/{space.space_id}/audio").content == data


def test_multiple_ranges_are_multipart(local_client: TestClient, audio_url: str, recording: Recording) -> None:
    data = recording.ogg.read_bytes()
    response = local_client.get(audio_url, headers={"Range": "bytes=0-9, 100-109, 105-119"})
    assert response.status_code == 206
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + response.content)
    parts = [(p["Content-Range"], p.get_payload(decode=True)) for p in message.iter_parts()]
    # Overlapping ranges are coalesced: no byte is sent twice.
    assert parts == [
        (f"bytes 0-9/{len(data)}", data[0:10]),
        (f"bytes 100-119/{len(data)}", data[100:120]),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "bytes=999999999-",
        "bytes=-0",
        "bytes=abc",
        "bytes=10-5",
        "bytes=",
        "bytes 0-10",
        "bytes=" + ",".join(f"{i * 100}-{i * 100 + 1}" for i in range(9)),
    ],
)
def test_unsatisfiable_ranges(local_client: TestClient, audio_url: str, recording: Recording, header: str) -> None:
    response = local_client.get(audio_url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{recording.ogg.stat().st_size}"
    assert response.json()["error"]["status"] == 416


def test_unknown_range_unit_gets_the_whole_file(local_client: TestClient, audio_url: str) -> None:
    response = local_client.get(audio_url, headers={"Range": "seconds=1-2"})
    assert response.status_code == 200


def test_etag_and_conditional_requests(local_client: TestClient, audio_url: str, recording: Recording) -> None:
    etag = local_client.get(audio_url, headers={"Range": "bytes=0-0"}).headers["etag"]
    cached = local_client.get(audio_url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
    assert local_client.get(audio_url, headers={"If-None-Match": f'W/{etag}, "zzz"'}).status_code == 304
    assert local_client.get(audio_url, headers={"If-None-Match": '"other"'}).status_code == 200
    # If-Range: a matching tag gets the range, a stale one the whole (new) file.
    fresh = local_client.get(audio_url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206
    stale = local_client.get(audio_url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200 and len(stale.content) == recording.ogg.stat().st_size


def test_etag_changes_with_the_content(
    local_app: FastAPI, local_client: TestClient, audio_url: str, recording: Recording
) -> None:
    before = local_client.get(audio_url).headers["etag"]
    key = audio_url.removeprefix("/").replace("/audio", "/replay.ogg")
    local_app.state.blobs.put(key, recording.m4a.read_bytes())
    assert local_client.get(audio_url).headers["etag"] != before


def test_etag_of_same_size_content_changes(
    local_app: FastAPI, local_client: TestClient, audio_url: str, recording: Recording
) -> None:
    before = local_client.get(audio_url, headers={"Range": "bytes=0-0"}).headers["etag"]
    key = audio_url.removeprefix("/").replace("/audio", "/replay.ogg")
    data = bytearray(recording.ogg.read_bytes())
    data[-1] ^= 0xFF  # same size, different last byte
    local_app.state.blobs.put(key, bytes(data))
    # The tag comes from the store's stat, so it changes at once: no cache to expire.
    assert local_client.get(audio_url, headers={"Range": "bytes=0-0"}).headers["etag"] != before


def test_head(local_client: TestClient, audio_url: str, recording: Recording) -> None:
    response = local_client.head(audio_url, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.headers["content-length"] == "100"
    assert response.content == b""
    whole = local_client.head(audio_url)
    assert whole.status_code == 200 and whole.headers["content-length"] == str(recording.ogg.stat().st_size)


def test_unknown_format(local_client: TestClient, audio_url: str) -> None:
    response = local_client.get(audio_url, params={"format": "flac"})
    assert response.status_code == 422
    assert "format" in response.json()["error"]["message"]


def test_missing_rendition_is_404(local_app: FastAPI, local_client: TestClient, audio_url: str) -> None:
    local_app.state.blobs.delete(audio_url.removeprefix("/").replace("/audio", "/replay.m4a"))
    response = local_client.get(audio_url, params={"format": "m4a"})
    assert response.status_code == 404
    assert "error" in response.json()


def test_s3_redirects_to_a_presigned_url_that_serves_ranges(
    s3_app: FastAPI, s3_client: TestClient, recording: Recording
) -> None:
    space = publish(s3_app.state.catalog, s3_app.state.blobs, recording)
    client = s3_client
    response = client.get(f"/spaces/{space.space_id}/audio")
    assert response.status_code == 307
    assert response.headers["cache-control"] == "no-store"
    url = response.headers["location"]
    query = parse_qs(urlsplit(url).query)
    # SigV4, which AWS requires (moto would accept SigV2 too), valid for what we sign.
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(PRESIGNED_SECONDS)]
    assert "Signature" not in query and "AWSAccessKeyId" not in query
    data = recording.ogg.read_bytes()
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    m4a = client.get(f"/spaces/{space.space_id}/audio", params={"format": "m4a"})
    assert m4a.status_code == 307 and "replay.m4a" in m4a.headers["location"]
