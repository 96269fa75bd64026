"""One contract, every blob store: the local directory and S3 (moto's server)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from spaces.blobstore import BlobStore
from spaces.blobstore.local import LocalBlobStore
from spaces.blobstore.s3 import MULTIPART_THRESHOLD
from spaces.exceptions import InvalidInput, NotFound


def test_put_get_replace(blob_store: BlobStore) -> None:
    blob_store.put("spaces/a/manifest.json", b'{"v": 1}', content_type="application/json")
    blob_store.put("spaces/a/manifest.json", b'{"v": 2}')
    assert blob_store.get("spaces/a/manifest.json") == b'{"v": 2}'
    assert blob_store.size("spaces/a/manifest.json") == 8
    assert blob_store.exists("spaces/a/manifest.json")


def test_missing(blob_store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        blob_store.get("spaces/nope/x")
    with pytest.raises(NotFound):
        blob_store.size("spaces/nope/x")
    with pytest.raises(NotFound):
        blob_store.download("spaces/nope/x", tmp_path / "x")
    assert not blob_store.exists("spaces/nope/x")
    blob_store.delete("spaces/nope/x")  # not an error


def test_ranges(blob_store: BlobStore) -> None:
    blob_store.put("r/data", bytes(range(256)))
    assert blob_store.get_range("r/data", 10, 19) == bytes(range(10, 20))
    assert blob_store.get_range("r/data", 250, 255) == bytes(range(250, 256))


def test_list_and_delete_prefix(blob_store: BlobStore) -> None:
    for key in [
        "spaces/a/tracks/t1/000001.ogg",
        "spaces/a/tracks/t1/000000.ogg",
        "spaces/a/x.json",
        "spaces/ab/y.json",
    ]:
        blob_store.put(key, b"1")
    assert list(blob_store.list("spaces/a/")) == [
        "spaces/a/tracks/t1/000000.ogg",
        "spaces/a/tracks/t1/000001.ogg",
        "spaces/a/x.json",
    ]
    assert list(blob_store.list("spaces/a")) == [
        "spaces/a/tracks/t1/000000.ogg",
        "spaces/a/tracks/t1/000001.ogg",
        "spaces/a/x.json",
        "spaces/ab/y.json",
    ]
    blob_store.delete_prefix("spaces/a/")
    assert list(blob_store.list("spaces/")) == ["spaces/ab/y.json"]


def test_large_file_round_trip(blob_store: BlobStore, tmp_path: Path) -> None:
    """Large enough to go up in parts on S3."""
    src = tmp_path / "big.bin"
    data = os.urandom(MULTIPART_THRESHOLD + 3 * 1024 * 1024)
    src.write_bytes(data)
    blob_store.put_file("spaces/big/replay.ogg", src, content_type="audio/ogg")
    out = tmp_path / "out.bin"
    blob_store.download("spaces/big/replay.ogg", out)
    assert out.read_bytes() == data
    assert blob_store.size("spaces/big/replay.ogg") == len(data)


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a/."])
def test_bad_keys_are_refused(blob_store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        blob_store.put(key, b"x")


def test_presigned_url_serves_the_object(blob_store: BlobStore) -> None:
    blob_store.put("spaces/p/replay.ogg", b"OggS-data")
    url = blob_store.presigned_url("spaces/p/replay.ogg", expires=60)
    if isinstance(blob_store, LocalBlobStore):
        assert url is None  # no URLs of its own: the API streams it
        return
    assert url is not None
    assert httpx.get(url).content == b"OggS-data"


def test_a_file_or_a_url_to_serve(blob_store: BlobStore) -> None:
    """The API serves a blob from its file (local directory) or sends the client to the store (S3)."""
    blob_store.put("spaces/a/replay.ogg", b"OggS")
    path = blob_store.local_path("spaces/a/replay.ogg")
    url = blob_store.presigned_url("spaces/a/replay.ogg", expires=60)
    if isinstance(blob_store, LocalBlobStore):
        assert path is not None and path.read_bytes() == b"OggS" and url is None
    else:
        assert path is None and url is not None and httpx.get(url).content == b"OggS"
