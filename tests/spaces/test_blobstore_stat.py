"""``BlobStore.stat``: size and ETag in one metadata request, on every store."""

from __future__ import annotations

import hashlib

import pytest

from spaces.blobstore import BlobStat, BlobStore
from spaces.blobstore.s3 import S3BlobStore
from spaces.exceptions import NotFound
from spaces.settings import Settings
from tests.support.services import MotoServer


def test_stat_gives_size_and_a_tag(blob_store: BlobStore) -> None:
    blob_store.put("spaces/a/replay.ogg", b"OggS" + bytes(1000))
    stat = blob_store.stat("spaces/a/replay.ogg")
    assert isinstance(stat, BlobStat)
    assert stat.size == 1004 == blob_store.size("spaces/a/replay.ogg")
    assert stat.etag and '"' not in stat.etag
    # Nothing changed, nothing changes: caches and If-Range stay valid.
    assert blob_store.stat("spaces/a/replay.ogg") == stat


def test_tag_changes_with_the_bytes_even_at_the_same_size(blob_store: BlobStore) -> None:
    key = "spaces/a/replay.ogg"
    blob_store.put(key, b"a" * 100)
    before = blob_store.stat(key)
    blob_store.put(key, b"b" * 100)
    after = blob_store.stat(key)
    assert after.size == before.size and after.etag != before.etag


def test_tags_differ_between_objects(blob_store: BlobStore) -> None:
    blob_store.put("spaces/a/one", b"one")
    blob_store.put("spaces/a/two", b"two")
    assert blob_store.stat("spaces/a/one").etag != blob_store.stat("spaces/a/two").etag


def test_stat_of_a_missing_blob(blob_store: BlobStore) -> None:
    with pytest.raises(NotFound):
        blob_store.stat("spaces/nope/replay.ogg")


def test_s3_tag_is_the_servers_etag(moto_server: MotoServer, s3_bucket: str) -> None:
    blob_store = S3BlobStore.from_settings(Settings(s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint))
    data = b"the ten of clubs"
    blob_store.put("spaces/a/x", data)
    head = blob_store.client.head_object(Bucket=blob_store.bucket, Key="spaces/a/x")
    assert blob_store.stat("spaces/a/x").etag == head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
