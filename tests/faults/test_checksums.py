"""Checksums: every upload carries the SHA-256 of what we sent, every read is verified.

Against moto's server, on loopback. What moto can model is tested here; what
it cannot is said: moto stores the ``x-amz-checksum-sha256`` an upload
declares without checking it against the body, so the server refusing a
damaged upload (S3's ``BadDigest``) cannot be shown with it. That same
leniency is what lets this test damage an object "at rest": the bytes are
replaced while the checksum recorded at upload stays.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from spaces.blobstore.s3 import MULTIPART_THRESHOLD, S3BlobStore
from spaces.exceptions import StorageError
from spaces.settings import Settings
from tests.support.services import MotoServer

KEY = "spaces/c0ffee/words/t0-alice.json"


@pytest.fixture
def store(moto_server: MotoServer, s3_bucket: str) -> S3BlobStore:
    return S3BlobStore.from_settings(Settings(s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint))


@pytest.fixture
def raw(moto_server: MotoServer) -> Any:
    """A plain boto3 client that sends exactly the checksum it is given."""
    return boto3.client(
        "s3",
        endpoint_url=moto_server.endpoint,
        region_name="us-east-1",
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
    )


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def stored_checksum(raw: Any, bucket: str, key: str) -> str | None:
    head = raw.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    value: str | None = head.get("ChecksumSHA256")
    return value


def test_uploads_carry_the_sha256_of_what_was_sent(
    store: S3BlobStore, raw: Any, s3_bucket: str, tmp_path: Path
) -> None:
    data = b'{"words": []}'
    store.put(KEY, data, content_type="application/json")
    assert stored_checksum(raw, s3_bucket, KEY) == sha256_b64(data)

    small = tmp_path / "replay.ogg"
    small.write_bytes(os.urandom(200_000))
    store.put_file("spaces/c0ffee/replay.ogg", small)
    assert stored_checksum(raw, s3_bucket, "spaces/c0ffee/replay.ogg") == sha256_b64(small.read_bytes())


def test_multipart_uploads_carry_a_checksum_of_every_part(
    store: S3BlobStore, raw: Any, s3_bucket: str, tmp_path: Path
) -> None:
    big = tmp_path / "replay.m4a"
    data = os.urandom(MULTIPART_THRESHOLD + 3 * 1024 * 1024)
    big.write_bytes(data)
    store.put_file("spaces/c0ffee/replay.m4a", big)
    # A multipart object's checksum is the checksum of its parts' checksums
    # (S3 appends "-<parts>"; moto leaves the suffix off).
    parts = [
        hashlib.sha256(data[i : i + MULTIPART_THRESHOLD]).digest() for i in range(0, len(data), MULTIPART_THRESHOLD)
    ]
    composite = sha256_b64(b"".join(parts))
    stored = stored_checksum(raw, s3_bucket, "spaces/c0ffee/replay.m4a")
    assert stored in (composite, f"{composite}-{len(parts)}")


def test_bytes_altered_in_the_store_are_refused_on_read(
    store: S3BlobStore, raw: Any, s3_bucket: str, tmp_path: Path
) -> None:
    original = b'{"speaker": "alice", "words": [{"text": "river", "start": 4.2}]}'
    store.put(KEY, original)
    recorded = stored_checksum(raw, s3_bucket, KEY)
    assert recorded == sha256_b64(original)

    # Behind our back: same length, one digit changed, the checksum recorded
    # at upload kept, as rot at rest or a faulty replica would leave it.
    altered = original.replace(b"4.2", b"9.2")
    raw.put_object(Bucket=s3_bucket, Key=KEY, Body=altered, ChecksumAlgorithm="SHA256", ChecksumSHA256=recorded)
    assert raw.get_object(Bucket=s3_bucket, Key=KEY)["Body"].read() == altered  # the damage is really there

    with pytest.raises(StorageError, match="checksum") as caught:
        store.get(KEY)
    assert caught.value.retryable

    target = tmp_path / "downloads" / "words.json"
    target.parent.mkdir()
    with pytest.raises(StorageError, match="checksum"):
        store.download(KEY, target)
    # Nothing half-written left beside the target either (s3transfer's temp file).
    assert list(target.parent.iterdir()) == []


def test_unverifiable_reads_are_ranges_only(store: S3BlobStore, raw: Any, s3_bucket: str) -> None:
    """A byte range cannot be checked against a whole-object checksum, so it is served as stored.

    This pins down the one read path without verification (HTTP Range
    serving of replays): if it ever starts verifying, or the others stop,
    this suite says so.
    """
    original = b"OggS" + bytes(range(200))
    store.put("spaces/c0ffee/replay.ogg", original)
    recorded = stored_checksum(raw, s3_bucket, "spaces/c0ffee/replay.ogg")
    altered = original[:-1] + b"\xff"
    raw.put_object(
        Bucket=s3_bucket,
        Key="spaces/c0ffee/replay.ogg",
        Body=altered,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=recorded,
    )
    assert store.get_range("spaces/c0ffee/replay.ogg", 0, 3) == b"OggS"
    with pytest.raises(StorageError, match="checksum"):
        store.get("spaces/c0ffee/replay.ogg")
