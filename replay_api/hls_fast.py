"""The live HLS's hot path: a crowd's playlist and segment GETs answered before the app's stack.

An HLS listener is a GET of ``audio.m3u8`` every target duration and one of
each new segment: 2,000 listeners are about 2,000 requests a second at one
route. Through FastAPI each cost about 1 ms of CPU (``bench/hls.py``):
middleware, dependency solving, two thread-pool hops (the catalog lookup
and the route), a fresh JWT verification, and ``FileResponse`` reading the
file through more thread hops. This pure-ASGI middleware answers the same
requests with what it keeps in memory:

* each space's catalog row, for a second (the playlists' own ``max-age``):
  a space made private, or deleted, is still served for up to a second;
* valid tokens' claims until they expire (a token never becomes valid
  later, nor invalid sooner: only tokens that verified are kept, so
  nobody fills the cache with junk);
* the objects' bytes, in an LRU bounded by size. Segments are written once
  and never change; a playlist is checked against its file's stat on every
  request (each write is a new file renamed into place), so a new playlist
  is served the moment it is stored, never a second late.

It answers only plain successes: a GET, from the local store, with no
Range, body or query parameter other than ``token``, of an object that
exists, in a space the caller may read. Everything else (a bad name, a bad
or missing token, a missing object, ranges, HEAD, S3) goes on to the route
in ``routes.hls``, whose answers and error bodies are therefore unchanged.
What it does answer is the route's answer, header for header (the tests
compare them), through the same functions: ``deps`` picks the token and
decides access, ``routes.hls`` renders playlists and their headers.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from replay_api import deps
from replay_api.ranges import etag_matches
from replay_api.routes import hls as route
from spaces import hls, keys, tokens
from spaces.blobstore import BlobStore
from spaces.blobstore.local import file_etag
from spaces.catalog import Catalog
from spaces.exceptions import InvalidInput, NotFound, SpacesError, TokenError
from spaces.models import Space, SpaceState, Visibility

_PATH = re.compile(rf"^/spaces/({keys.ID_PATTERN.pattern.strip('^$')})/hls/([^/]+)$")

#: How long a space's row (its access rules and state) is kept.
SPACE_SECONDS = 1.0
#: Bytes of objects kept: about 2,000 segments of 2 s (64 kbit/s AAC in MPEG-TS).
CACHE_BYTES = 64 << 20
#: Spaces, tokens and paths kept at most; past this the table starts again (a bound, not a policy).
MAX_ENTRIES = 10_000
#: ``?token=`` longer than this is the route's 422.
MAX_QUERY_TOKEN = 4096
#: Request headers that send a request to the route.
_ROUTE_HEADERS = {b"range", b"if-range", b"content-length", b"transfer-encoding"}


@dataclass(frozen=True)
class _Served:
    """An answer ready to send: its ETag, the 304's headers, the 200's headers and body."""

    etag: str
    not_modified: list[tuple[bytes, bytes]]
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True)
class _Object:
    identity: tuple[int, int, int, int]
    """Inode, device, size, mtime: a rewrite changes it."""
    data: bytes
    etag: str
    last_modified: str
    served: dict[Visibility, _Served] = field(default_factory=dict)
    """Its answers without ``?token=``, by the space's visibility (which sets Cache-Control)."""


_Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class HlsFastPath:
    """ASGI middleware answering live HLS GETs the route would answer 200 or 304 (module docstring)."""

    def __init__(self, app: ASGIApp, *, catalog: Catalog, blobs: BlobStore, secret: str) -> None:
        self.app = app
        self.catalog = catalog
        self.blobs = blobs
        self.secret = secret
        self._spaces: dict[str, tuple[float, Space | None]] = {}
        self._lookups: dict[str, asyncio.Future[Space | None]] = {}
        self._claims: dict[str, tokens.Claims] = {}
        self._paths: dict[str, Path | None] = {}
        self._objects: OrderedDict[str, _Object] = OrderedDict()
        self._bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _PATH.match(scope["path"])
            answer = await self._answer(scope, match.group(1), match.group(2)) if match else None
            if answer is not None:
                status, headers, body = answer
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, space_id: str, name: str) -> _Answer | None:
        """The response, or None for the route to answer."""
        try:
            key = hls.key(space_id, name)
        except InvalidInput:
            return None
        query: str | None = None
        if scope["query_string"]:
            params = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            if len(params) != 1 or params[0][0] != "token" or len(params[0][1]) > MAX_QUERY_TOKEN:
                return None
            query = params[0][1]
        request: dict[bytes, bytes] = {}
        for header, value in scope["headers"]:
            request.setdefault(header.lower(), value)
        if _ROUTE_HEADERS.intersection(request):
            return None
        path = self._path(key)
        space = await self._space(space_id)
        if path is None or space is None or space.state is SpaceState.DELETING:
            return None
        token = deps.pick_token(
            request.get(b"authorization", b"").decode("latin-1"),
            query,
            lambda: deps.readable_cookie(
                cookie_parser(request.get(b"cookie", b"").decode("latin-1")).get(deps.TOKEN_COOKIE),
                space_id,
                "GET",
                self._verify,
            ),
        )
        try:
            caller = None if token is None else self._verify(token, None)
        except TokenError:
            return None
        if not deps.opens(space, caller):
            return None
        obj = self._object(key, path, playlist=name.endswith(".m3u8"))
        if obj is None:
            return None
        # Only a ?token= changes the body (carried into the playlist's URIs): other answers are kept.
        served = obj.served.get(space.visibility) if query is None else None
        if served is None:
            served = self._serve(space, obj, name, query)
            if query is None:
                obj.served[space.visibility] = served
        if etag_matches(request.get(b"if-none-match", b"").decode("latin-1") or None, served.etag, weak=True):
            return 304, served.not_modified, b""
        return 200, served.headers, served.body

    def _serve(self, space: Space, obj: _Object, name: str, query: str | None) -> _Served:
        """The route's headers and body for this object."""
        if name.endswith(".m3u8"):
            data, cache = route.render_playlist(space, self.blobs, obj.data, name, query)
            headers = route.playlist_headers(data, cache)
            extra = {}
        else:
            data = obj.data
            headers = {
                "ETag": f'"{obj.etag}"',
                "Cache-Control": route.cache_for(space, hls.SEGMENT_CACHE),
                "Vary": "Authorization",
                "Accept-Ranges": "bytes",
            }
            extra = {"Last-Modified": obj.last_modified}
        full = {**headers, **extra, "Content-Length": str(len(data)), "Content-Type": hls.media_type(name)}
        return _Served(headers["ETag"], _encode(headers), _encode(full), data)

    def _path(self, key: str) -> Path | None:
        """The object's file (None with S3): ``local_path`` builds a ``Path`` each time, the costliest step here."""
        if key not in self._paths:
            if len(self._paths) >= MAX_ENTRIES:
                self._paths.clear()
            self._paths[key] = self.blobs.local_path(key)
        return self._paths[key]

    async def _space(self, space_id: str) -> Space | None:
        """The space's row as of at most a second ago; None if there is none (or it could not be read)."""
        kept = self._spaces.get(space_id)
        if kept is not None and time.monotonic() < kept[0]:
            return kept[1]
        # One lookup per space at a time, off the event loop; the crowd waiting for it shares it.
        lookup = self._lookups.get(space_id)
        if lookup is None:
            lookup = asyncio.ensure_future(anyio.to_thread.run_sync(self._lookup, space_id))
            self._lookups[space_id] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(space_id, None))
        try:
            return await asyncio.shield(lookup)
        except SpacesError:
            return None  # the route meets the same error and answers it

    def _lookup(self, space_id: str) -> Space | None:
        try:
            space: Space | None = self.catalog.get_space(space_id)
        except NotFound:
            space = None
        if len(self._spaces) >= MAX_ENTRIES:
            self._spaces.clear()
        self._spaces[space_id] = (time.monotonic() + SPACE_SECONDS, space)
        return space

    def _verify(self, token: str, space_id: str | None) -> tokens.Claims:
        """``tokens.verify``, remembering the claims of a valid token until it expires."""
        claims = self._claims.get(token)
        if claims is None or time.time() >= claims.expires_at:
            claims = tokens.verify(self.secret, token)
            if len(self._claims) >= MAX_ENTRIES:
                self._claims.clear()
            self._claims[token] = claims
        if space_id is not None and claims.space_id != space_id:
            raise TokenError("token is for another space")
        return claims

    def _object(self, key: str, path: Path, *, playlist: bool) -> _Object | None:
        """The stored object, from memory while its file is the same; None if there is none."""
        kept = self._objects.get(key)
        if kept is not None and not playlist:
            self._objects.move_to_end(key)
            return kept
        try:
            st = os.stat(path)
            if kept is not None and kept.identity == _identity(st):
                self._objects.move_to_end(key)
                return kept
            # A few KB from the page cache, once per object: not worth a thread hop.
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            return None
        obj = _Object(_identity(st), data, file_etag(st), formatdate(st.st_mtime, usegmt=True))
        if kept is not None:
            self._bytes -= len(kept.data)
        self._objects[key] = obj
        self._objects.move_to_end(key)
        self._bytes += len(data)
        while self._bytes > CACHE_BYTES:
            _, dropped = self._objects.popitem(last=False)
            self._bytes -= len(dropped.data)
        return obj


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
