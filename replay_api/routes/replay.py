"""A ready space's replay: audio with Range requests, captions, the transcript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from replay_api import serving, transcripts
from replay_api.deps import BlobsDep, ReadySpace, seconds
from replay_api.schemas import TranscriptOut
from spaces import keys
from spaces.blobstore import BlobStore
from spaces.exceptions import InvalidInput
from spaces.formats import AudioFormat
from spaces.models import Space

router = APIRouter(prefix="/spaces", tags=["replay"])

#: Lifetime of the presigned S3 URLs the audio route redirects to. Short, so
#: a leaked URL soon stops working; long enough for a paused player to resume.
PRESIGNED_SECONDS = 900


_AUDIO_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"audio/ogg": {}, "audio/mp4": {}}, "description": "The whole replay"},
    206: {"description": "The requested byte range(s)"},
    304: {"description": "Not modified (If-None-Match)"},
    307: {"description": "Redirect to a short-lived presigned URL (S3 blob store)"},
    416: {"description": "Range not satisfiable; Content-Range: bytes */size"},
}


@router.head("/{space_id}/audio", response_class=Response, include_in_schema=False)
@router.get(
    "/{space_id}/audio",
    response_class=Response,
    responses=_AUDIO_RESPONSES,
    summary="Replay audio (Ogg/Opus or AAC in MP4), with Range requests",
)
def get_audio(
    request: Request,
    space: ReadySpace,
    blobs: BlobsDep,
    format: Annotated[AudioFormat, Query(description="ogg (Opus) or m4a (AAC, for Safari)")] = AudioFormat.OGG,
) -> Response:
    return serving.blob_response(
        request,
        blobs,
        keys.replay(space.space_id, format),
        media_type=format.media_type,
        cache_control=serving.cache_control(space),
        filename=f"{space.space_id}.{format.value}",
        presign_seconds=PRESIGNED_SECONDS,
    )


@router.get("/{space_id}/captions.vtt", response_class=Response, responses={200: {"content": {"text/vtt": {}}}})
def get_captions_vtt(request: Request, space: ReadySpace, blobs: BlobsDep) -> Response:
    return _text_blob(request, space, blobs, keys.captions(space.space_id, "vtt"), "text/vtt; charset=utf-8")


@router.get(
    "/{space_id}/captions.srt",
    response_class=Response,
    responses={200: {"content": {"application/x-subrip": {}}}},
)
def get_captions_srt(request: Request, space: ReadySpace, blobs: BlobsDep) -> Response:
    return _text_blob(
        request, space, blobs, keys.captions(space.space_id, "srt"), "application/x-subrip; charset=utf-8"
    )


@router.get("/{space_id}/transcript", response_model=TranscriptOut)
def get_transcript(
    space: ReadySpace,
    blobs: BlobsDep,
    start: Annotated[float | None, seconds("Window start, seconds", alias="from")] = None,
    end: Annotated[float | None, seconds("Window end, seconds", alias="to")] = None,
) -> TranscriptOut:
    """The word-level transcript, whole or the words overlapping ``[from, to)``."""
    transcript = transcripts.load(blobs, space.space_id)
    if start is None and end is None:
        return TranscriptOut.of(transcript)
    lo = start if start is not None else 0.0
    hi = end if end is not None else max(transcript.duration, lo) + 1.0
    if hi <= lo:
        raise InvalidInput("'to' must be after 'from'")
    return TranscriptOut.of(transcripts.window(transcript, lo, hi), start=lo, end=hi)


def _text_blob(request: Request, space: Space, blobs: BlobStore, key: str, media_type: str) -> Response:
    data = blobs.get(key)
    headers = {
        "ETag": serving.content_etag(data),
        "Cache-Control": serving.cache_control(space),
        "Vary": "Authorization",
    }
    cached = serving.not_modified(request, headers["ETag"], headers)
    return cached or Response(data, media_type=media_type, headers=headers)
