"""The live HLS of a space (``spaces/{id}/live/``): playlists and segments, with the space's access rules.

With the local store the API serves every object itself (ranges, ETags,
304s like the replay audio). With S3 the playlists still come from here,
their segment lines rewritten into presigned URLs (a player cannot sign a
relative URI), and segments are redirects to presigned URLs. A public
space with ``SPACES_HLS_BASE_URL`` set never touches the API after
``GET /spaces/{id}``: its ``hls_url`` points at the CDN or bucket, whose
objects carry their own Cache-Control (``spaces.hls``).

A private space's playlists need what the rest of it needs (a token by
header, ``?token=`` or the page's cookie); a ``?token=`` is carried into
the URIs of the playlists served, so a player that was given one URL can
fetch the rest.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from replay_api import serving
from replay_api.deps import BlobsDep, ReadableSpace
from spaces import hls
from spaces.blobstore import BlobStore
from spaces.models import Space, Visibility

router = APIRouter(prefix="/spaces", tags=["hls"])

#: Presigned segment URLs live this long: a paused player resumes, a leaked URL soon dies.
PRESIGNED_SECONDS = 900
#: States in which a space may have a live HLS: live, or over (the instant replay).

_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {hls.PLAYLIST_TYPE: {}, "video/mp2t": {}, "text/vtt": {}}},
    206: {"description": "The requested byte range of a segment"},
    307: {"description": "Redirect to a short-lived presigned URL (S3 blob store)"},
    400: {"description": "Not a name of a live playlist or segment"},
    404: {"description": "No such space (or private without its token), or no such object"},
    416: {"description": "Range not satisfiable"},
}


def cache_for(space: Space, public: str) -> str:
    """The object's Cache-Control for this space: a private space's must not sit in shared caches."""
    return public.replace("public", "private") if space.visibility is Visibility.PRIVATE else public


@router.head("/{space_id}/hls/{name}", response_class=Response, include_in_schema=False)
@router.get(
    "/{space_id}/hls/{name}",
    response_class=Response,
    responses=_RESPONSES,
    summary="The live HLS: master.m3u8, audio.m3u8, subs.m3u8 and their segments",
)
def get_hls(request: Request, name: str, space: ReadableSpace, blobs: BlobsDep) -> Response:
    # Plain GETs are answered before this by replay_api.hls_fast, the same way.
    key = hls.key(space.space_id, name)  # a bad name is a 400 before any lookup
    if name.endswith(".m3u8"):
        data, cache = render_playlist(space, blobs, blobs.get(key), name, request.query_params.get("token"))
        headers = playlist_headers(data, cache)
        cached = serving.not_modified(request, headers["ETag"], headers)
        return cached or Response(data, media_type=hls.PLAYLIST_TYPE, headers=headers)
    return serving.blob_response(
        request,
        blobs,
        key,
        media_type=hls.media_type(name),
        cache_control=cache_for(space, hls.SEGMENT_CACHE),
        presign_seconds=PRESIGNED_SECONDS,
    )


def render_playlist(space: Space, blobs: BlobStore, stored: bytes, name: str, token: str | None) -> tuple[bytes, str]:
    """A stored playlist as served (segments presigned with S3, ``?token=`` carried on) and its Cache-Control."""
    text = stored.decode()
    closed = name == hls.MASTER or "#EXT-X-ENDLIST" in text
    cache = cache_for(space, hls.CLOSED_PLAYLIST_CACHE if closed else hls.PLAYLIST_CACHE)
    signs = blobs.presigned_url(hls.key(space.space_id, name), expires=PRESIGNED_SECONDS) is not None
    if not (signs or token):
        return stored, cache
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#") and hls.segment_seq(line) is not None and signs:
            line = blobs.presigned_url(hls.key(space.space_id, line), expires=PRESIGNED_SECONDS) or line
        elif line and not line.startswith("#") and token:
            line = f"{line}?token={quote(token)}"
        elif token and 'URI="' in line:
            line = line.replace('.m3u8"', f'.m3u8?token={quote(token)}"')
        lines.append(line)
    # Signed URLs expire: no cache may keep them past a player's next poll.
    return ("\n".join(lines) + "\n").encode(), "private, max-age=1" if signs else cache


def playlist_headers(data: bytes, cache: str) -> dict[str, str]:
    return {"ETag": serving.content_etag(data), "Cache-Control": cache, "Vary": "Authorization, Cookie"}
