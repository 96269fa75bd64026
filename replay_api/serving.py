"""Responses for stored blobs: ETags, conditional requests, ranges, HEAD.

Works on any ``BlobStore`` through ``stat`` and ``get_range``, so the local
directory and S3 serve alike; large ranges are streamed in chunks instead of
being read into memory at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from replay_api.errors import error_response
from replay_api.ranges import ByteRange, RangeNotSatisfiable, etag_matches, parse_range
from spaces.blobstore import BlobStore

#: Ranges up to this size are read at once; larger ones are streamed.
INLINE_BYTES = 1 << 20
#: Chunk size when streaming a large range.
CHUNK_BYTES = 256 << 10
#: A multi-range response is built in memory, so its total is capped.
MAX_MULTIPART_BYTES = 8 << 20


@dataclass(frozen=True)
class BlobMeta:
    """What the response headers say about a blob."""

    key: str
    size: int
    etag: str
    media_type: str
    cache_control: str
    filename: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": self.etag,
            "Cache-Control": self.cache_control,
            "Vary": "Authorization",
        }
        if self.filename:
            headers["Content-Disposition"] = f'inline; filename="{self.filename}"'
        return headers


def blob_meta(
    blobs: BlobStore, key: str, *, media_type: str, cache_control: str, filename: str | None = None
) -> BlobMeta:
    """Size and a strong ETag from one metadata request, without reading the blob.

    The store's own tag (S3's ETag, or the local file's identity) changes
    whenever the bytes do, so a range request costs a stat, not a read of
    the blob's ends as a content fingerprint would.
    """
    stat = blobs.stat(key)
    return BlobMeta(key, stat.size, f'"{stat.etag}"', media_type, cache_control, filename)


def content_etag(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def not_modified(request: Request, etag: str, headers: dict[str, str]) -> Response | None:
    """A 304 when the client's cached copy (``If-None-Match``) is current."""
    if etag_matches(request.headers.get("if-none-match"), etag, weak=True):
        return Response(status_code=304, headers=headers)
    return None


def blob_response(request: Request, blobs: BlobStore, meta: BlobMeta) -> Response:
    """200, 206 (single or multipart), 304 or 416 for one blob; HEAD gets the headers only."""
    headers = meta.headers()
    cached = not_modified(request, meta.etag, headers)
    if cached is not None:
        return cached
    ranges = _requested_ranges(request, meta)
    if isinstance(ranges, Response):
        return ranges
    if ranges is None:
        return _single(request, blobs, meta, ByteRange(0, meta.size - 1), 200, headers)
    if len(ranges) == 1:
        headers["Content-Range"] = ranges[0].content_range(meta.size)
        return _single(request, blobs, meta, ranges[0], 206, headers)
    return _multipart(request, blobs, meta, ranges, headers)


def _requested_ranges(request: Request, meta: BlobMeta) -> list[ByteRange] | None | Response:
    header = request.headers.get("range")
    if not header:
        return None
    # If-Range: the client's partial copy is stale, so it gets the whole blob.
    if_range = request.headers.get("if-range")
    if if_range is not None and not etag_matches(if_range, meta.etag, weak=False):
        return None
    try:
        return parse_range(header, meta.size)
    except RangeNotSatisfiable as e:
        return error_response(416, str(e), headers={"Content-Range": f"bytes */{meta.size}", "Accept-Ranges": "bytes"})


def _single(
    request: Request, blobs: BlobStore, meta: BlobMeta, rng: ByteRange, status: int, headers: dict[str, str]
) -> Response:
    length = max(rng.length, 0)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD" or length == 0:
        return Response(status_code=status, headers=headers, media_type=meta.media_type)
    if length <= INLINE_BYTES:
        data = blobs.get_range(meta.key, rng.start, rng.end)
        return Response(data, status_code=status, headers=headers, media_type=meta.media_type)
    return StreamingResponse(
        _chunks(blobs, meta.key, rng), status_code=status, headers=headers, media_type=meta.media_type
    )


def _chunks(blobs: BlobStore, key: str, rng: ByteRange) -> Iterator[bytes]:
    for start in range(rng.start, rng.end + 1, CHUNK_BYTES):
        yield blobs.get_range(key, start, min(start + CHUNK_BYTES - 1, rng.end))


def _multipart(
    request: Request, blobs: BlobStore, meta: BlobMeta, ranges: list[ByteRange], headers: dict[str, str]
) -> Response:
    if sum(r.length for r in ranges) > MAX_MULTIPART_BYTES:
        return error_response(
            416,
            f"multi-range requests may ask for at most {MAX_MULTIPART_BYTES} bytes in all",
            headers={"Content-Range": f"bytes */{meta.size}", "Accept-Ranges": "bytes"},
        )
    boundary = secrets.token_hex(16)
    media_type = f"multipart/byteranges; boundary={boundary}"
    if request.method == "HEAD":
        return Response(status_code=206, headers=headers, media_type=media_type)
    parts: list[bytes] = []
    for r in ranges:
        content_range = r.content_range(meta.size)
        part_head = f"--{boundary}\r\nContent-Type: {meta.media_type}\r\nContent-Range: {content_range}\r\n\r\n"
        parts += [part_head.encode(), blobs.get_range(meta.key, r.start, r.end), b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return Response(b"".join(parts), status_code=206, headers=headers, media_type=media_type)
