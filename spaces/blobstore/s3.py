"""Blob store on S3 or any S3-compatible server, through boto3."""

from __future__ import annotations

import base64
import builtins
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from spaces.blobstore import BlobStat, validate_key
from spaces.exceptions import NotFound, StorageError
from spaces.settings import Settings

#: Objects larger than this go up in parts (S3's minimum part is 5 MiB).
MULTIPART_THRESHOLD = 8 * 1024 * 1024
#: The longest a SigV4 presigned URL may live (S3 refuses longer ones).
MAX_PRESIGNED_SECONDS = 7 * 24 * 3600

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3BlobStore:
    def __init__(self, client: Any, bucket: str, *, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            config=Config(
                # SigV4: AWS refuses SigV2 (botocore's default for presigned
                # URLs) on buckets created since mid-2020.
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 5},
                connect_timeout=5,
                read_timeout=30,
                # Checksums on every upload; verified by the server and by
                # botocore on the way back.
                request_checksum_calculation="when_supported",
                response_checksum_validation="when_supported",
            ),
        )
        return cls(client, settings.s3_bucket, prefix=settings.s3_prefix)

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def put(self, key: str, data: bytes, *, content_type: str | None = None, cache_control: str | None = None) -> None:
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if cache_control:
            extra["CacheControl"] = cache_control
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        with _converted(key):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=digest,
                **extra,
            )

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        extra: dict[str, Any] = {"ChecksumAlgorithm": "SHA256"}
        if content_type:
            extra["ContentType"] = content_type
        with _converted(key):
            self.client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs=extra, Config=self.transfer)

    def get(self, key: str) -> bytes:
        with _converted(key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
            data: bytes = response["Body"].read()
            return data

    def get_range(self, key: str, start: int, end: int) -> bytes:
        with _converted(key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end}")
            data: bytes = response["Body"].read()
            return data

    def download(self, key: str, path: Path) -> None:
        with _converted(key):
            self.client.download_file(self.bucket, self._key(key), str(path), Config=self.transfer)

    def size(self, key: str) -> int:
        with _converted(key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return int(head["ContentLength"])

    def stat(self, key: str) -> BlobStat:
        with _converted(key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        # S3 quotes its ETag (an MD5, or "md5-parts" for multipart uploads).
        return BlobStat(size=int(head["ContentLength"]), etag=str(head["ETag"]).strip('"'))

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        with _converted(prefix):
            pages = list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix))
        keys = [obj["Key"][len(self.prefix) :] for page in pages for obj in page.get("Contents", ())]
        yield from sorted(keys)

    def delete(self, key: str) -> None:
        # Every version: on a versioned bucket a plain delete only hides the
        # object behind a delete marker, and erased audio must not come back.
        self._delete_versions(key, exact=True)

    def delete_prefix(self, prefix: str) -> None:
        self._delete_versions(prefix, exact=False)

    def _delete_versions(self, prefix: str, *, exact: bool) -> None:
        """Remove every version and delete marker under ``prefix`` (or of exactly that key).

        An unversioned bucket lists each object once, as version ``null``, so
        one code path serves both.
        """
        full = self.prefix + prefix
        paginator = self.client.get_paginator("list_object_versions")
        with _converted(prefix):
            pages = list(paginator.paginate(Bucket=self.bucket, Prefix=full))
        doomed = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for page in pages
            for item in [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]
            if not exact or item["Key"] == full
        ]
        for start in range(0, len(doomed), 1000):
            with _converted(prefix):
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
                )
            errors = response.get("Errors", ())
            if errors:
                raise StorageError(f"S3 kept {len(errors)} objects under {prefix!r}: {errors[0]}")

    def versions(self, prefix: str) -> builtins.list[tuple[str, str]]:
        """(key, version id) of every version and delete marker under ``prefix``: what deletion must leave none of."""
        paginator = self.client.get_paginator("list_object_versions")
        with _converted(prefix):
            pages = list(paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix))
        return sorted(
            (item["Key"][len(self.prefix) :], item["VersionId"])
            for page in pages
            for item in [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]
        )

    def presigned_url(self, key: str, *, expires: int) -> str | None:
        if not 1 <= expires <= MAX_PRESIGNED_SECONDS:
            raise ValueError(f"a presigned URL lives 1 s to {MAX_PRESIGNED_SECONDS} s (7 days), not {expires} s")
        with _converted(key):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires,
            )
            return url

    def local_path(self, key: str) -> Path | None:
        return None


@contextmanager
def _converted(key: str) -> Iterator[None]:
    """Turn botocore errors into ours at the boundary."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise NotFound(f"no blob {key!r}") from exc
        retryable = code in {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"}
        raise StorageError(f"S3 error on {key!r}: {code}", retryable=retryable) from exc
    except FlexibleChecksumError as exc:
        # The bytes that came back are not the bytes that were stored: damaged
        # at rest or on the way. Retryable, since only the second heals.
        raise StorageError(f"S3 object {key!r} failed its checksum: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"S3 unreachable for {key!r}: {exc}") from exc
    except Boto3Error as exc:
        # upload_file/download_file wrap the errors above in boto3's own
        # (S3UploadFailedError, RetriesExceededError).
        raise StorageError(f"S3 transfer of {key!r} failed: {exc}") from exc
