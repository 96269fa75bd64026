"""The blob store seam: where audio, transcripts and captions live.

Two implementations with one contract (one test suite runs over both):
``LocalBlobStore`` (a directory, the embedded default) and ``S3BlobStore``
(S3 or any S3-compatible store through boto3). ``open_blob_store`` picks one
from the settings.

Keys are ``/``-separated paths (see the storage layout in DESIGN.md). Writes
are atomic: a reader sees the old object or the new one, never half of one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from spaces.settings import Settings


@dataclass(frozen=True)
class BlobStat:
    """What one metadata request says about a stored object."""

    size: int
    """Size in bytes."""

    etag: str
    """An opaque tag, without quotes, that changes whenever the object's bytes
    do: S3's own ETag; for the local directory a hash of the file's identity
    (size, mtime, inode). HTTP responses use it as their strong ETag."""


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, *, content_type: str | None = None, cache_control: str | None = None) -> None:
        """Store ``data`` under ``key``, replacing any previous object.

        ``cache_control`` is kept with the object where the store serves it
        itself (S3, and a CDN in front of it); the local store ignores it.
        """

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Store a local file (streamed; multipart when large)."""

    def get(self, key: str) -> bytes:
        """Return the object's bytes; raise ``NotFound`` if missing."""

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` inclusive (HTTP Range semantics)."""

    def download(self, key: str, path: Path) -> None:
        """Copy the object into a local file."""

    def size(self, key: str) -> int:
        """Size in bytes; raise ``NotFound`` if missing."""

    def stat(self, key: str) -> BlobStat:
        """Size and ETag in one metadata request; raise ``NotFound`` if missing."""

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix``, sorted."""

    def delete(self, key: str) -> None:
        """Remove one object; missing objects are not an error."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under ``prefix``."""

    def presigned_url(self, key: str, *, expires: int) -> str | None:
        """A URL a browser can fetch directly, or None if the store has none."""

    def local_path(self, key: str) -> Path | None:
        """The file that holds the object, if the store keeps objects as files (None on S3).

        Files are replaced whole by a rename, so an open file stays one
        version of the object while it is read.
        """


def open_blob_store(settings: Settings) -> BlobStore:
    if settings.s3_bucket:
        from spaces.blobstore.s3 import S3BlobStore

        return S3BlobStore.from_settings(settings)
    from spaces.blobstore.local import LocalBlobStore

    return LocalBlobStore(settings.blob_dir)


def validate_key(key: str) -> str:
    """Refuse keys that could escape the store's root or be ambiguous."""
    from spaces.exceptions import InvalidInput

    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"invalid blob key {key!r}")
    return key
