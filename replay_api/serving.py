"""Responses for stored blobs: ETags, conditional requests, ranges, HEAD.

A blob the store keeps as a file (the local directory) is served by
Starlette's ``FileResponse``, which streams it from disk and handles single
and multipart ranges, ``If-Range`` and HEAD. ``BlobFileResponse`` puts our
rules on top: the Range header read by ``ranges.parse_range`` (at most
``MAX_RANGES``, coalesced, other units ignored), refusals as our JSON 416,
the store's strong ETag and a 304 for ``If-None-Match``. A blob in S3 is a
redirect to a short-lived presigned URL: S3 serves the ranges itself.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import starlette.responses
from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from replay_api.errors import error_response
from replay_api.ranges import RangeNotSatisfiable, etag_matches, parse_range
from spaces.blobstore import BlobStore
from spaces.exceptions import NotFound, StorageError
from spaces.models import Space, Visibility

#: A multi-range response (download managers) may ask for this many bytes in
#: all; a player seeking asks for one range, which has no such cap.
MAX_MULTIPART_BYTES = 8 << 20


def cache_control(space: Space) -> str:
    # Private replays must not sit in shared caches; public ones may, briefly.
    return "private, no-cache" if space.visibility is Visibility.PRIVATE else "public, max-age=300"


def content_etag(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def not_modified(request: Request, etag: str, headers: dict[str, str]) -> Response | None:
    """A 304 when the client's cached copy (``If-None-Match``) is current."""
    if etag_matches(request.headers.get("if-none-match"), etag, weak=True):
        return Response(status_code=304, headers=headers)
    return None


def blob_response(
    request: Request,
    blobs: BlobStore,
    key: str,
    *,
    media_type: str,
    cache_control: str,
    filename: str | None = None,
    presign_seconds: int,
) -> Response:
    """200, 206 (single or multipart), 304 or 416 for one blob, or 307 to the store; HEAD gets headers only.

    ``NotFound`` for a missing blob (checked before any redirect, so it is our 404).
    """
    path = blobs.local_path(key)
    if path is None:
        blobs.size(key)
        url = blobs.presigned_url(key, expires=presign_seconds)
        if url is None:
            raise StorageError(f"the blob store can neither hand out {key!r} nor its file", retryable=False)
        # no-store, so the player asks us again (and gets a fresh URL) rather
        # than reusing an expired one.
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    # The store's tag, from a stat: it changes whenever the bytes do (a write
    # is a new file renamed into place), without reading the file.
    etag = f'"{blobs.stat(key).etag}"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Authorization", "Accept-Ranges": "bytes"}
    if filename:
        headers["Content-Disposition"] = f'inline; filename="{filename}"'
    cached = not_modified(request, etag, headers)
    if cached is not None:
        return cached
    try:
        stat = os.stat(path)
    except FileNotFoundError as e:  # deleted since the stat above
        raise NotFound(f"no blob {key!r}") from e
    return BlobFileResponse(path, stat_result=stat, headers=headers, media_type=media_type)


class BlobFileResponse(FileResponse):
    """Starlette's ``FileResponse`` with our Range rules and JSON 416 refusals.

    Starlette answers a malformed Range with a plain-text 400, more than
    100 ranges with the whole file, and an unknown unit with a 400; we
    answer 416 with a JSON body saying why (``Content-Range: bytes */size``),
    refuse more than ``MAX_RANGES`` ranges or ``MAX_MULTIPART_BYTES`` in all,
    and ignore units other than bytes (RFC 9110).
    """

    def __init__(self, path: Path, *, stat_result: os.stat_result, headers: dict[str, str], media_type: str) -> None:
        super().__init__(path, stat_result=stat_result, headers=headers, media_type=media_type)
        self.size = stat_result.st_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(Headers(scope=scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _refusal(self, headers: Headers) -> Response | None:
        """Our 416 for a Range that this file cannot satisfy; None to serve it."""
        header = headers.get("range")
        if_range = headers.get("if-range")
        # A stale If-Range gets the whole file: nothing to refuse.
        if header is None or (if_range is not None and not self._should_use_range(if_range)):
            return None
        try:
            ranges = parse_range(header, self.size)
        except RangeNotSatisfiable as e:
            return _unsatisfiable(str(e), self.size)
        if ranges and len(ranges) > 1 and sum(r.length for r in ranges) > MAX_MULTIPART_BYTES:
            return _unsatisfiable(
                f"multi-range requests may ask for at most {MAX_MULTIPART_BYTES} bytes in all", self.size
            )
        return None

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        # Starlette's (start, end exclusive) pairs from ours; [] = the whole file.
        try:
            ranges = parse_range(http_range, file_size)
        except RangeNotSatisfiable as e:
            # Refused in _refusal already, unless the file changed size since.
            raise starlette.responses.RangeNotSatisfiable(file_size) from e
        return [] if ranges is None else [(r.start, r.end + 1) for r in ranges]


def _unsatisfiable(message: str, size: int) -> Response:
    return error_response(416, message, headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
