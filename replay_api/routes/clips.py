"""Clips: a moment of a replay to share, as audio with its captions."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import Response

from replay_api import clips, transcripts
from replay_api.deps import BlobsDep, ReadySpace, seconds
from replay_api.schemas import ClipOut, TurnOut, replay_link
from replay_api.serving import cache_control
from spaces.formats import AudioFormat
from spaces.models import Space, join_words

router = APIRouter(prefix="/spaces", tags=["clips"])

Start = Annotated[float, seconds("Clip start, seconds on the space's clock")]
End = Annotated[float, seconds("Clip end, seconds (at most 300 s after start)")]


#: A word the clip touches for less than this (s) is not in its text: word
#: times are not that precise, and the page rounds clip bounds to the ms, so
#: a clip ending where the next word starts would otherwise take that word in.
WORD_MARGIN = 0.01


@router.get("/{space_id}/clip", response_model=ClipOut)
def get_clip(space: ReadySpace, blobs: BlobsDep, start: Start, end: End) -> ClipOut:
    """What is said in ``[start, end)``, with links to the clip's audio and captions."""
    start, end = clips.check_window(start, end, space.duration)
    window = transcripts.window(transcripts.load(blobs, space.space_id), start, end, margin=WORD_MARGIN)
    base = f"/spaces/{space.space_id}/clip"
    query = urlencode({"start": f"{start:.3f}", "end": f"{end:.3f}"})
    return ClipOut(
        space_id=space.space_id,
        start=start,
        end=end,
        text=join_words(w.text for t in window.turns for w in t.words),
        turns=[TurnOut.of(t) for t in window.turns],
        links={
            "audio": f"{base}/audio?{query}",
            "audio_m4a": f"{base}/audio?{query}&format=m4a",
            "captions": f"{base}/captions.vtt?{query}",
            "replay": replay_link(space.space_id, start),
        },
    )


@router.get(
    "/{space_id}/clip/audio",
    response_class=Response,
    responses={
        200: {"content": {"audio/ogg": {}, "audio/mp4": {}}},
        429: {"description": "Busy cutting other clips; retry after Retry-After"},
    },
)
def get_clip_audio(
    space: ReadySpace,
    blobs: BlobsDep,
    start: Start,
    end: End,
    format: Annotated[AudioFormat, Query(description="ogg (Opus) or m4a (AAC)")] = AudioFormat.OGG,
) -> Response:
    start, end = clips.check_window(start, end, space.duration)
    data = clips.cut(blobs, space.space_id, format, start, end)
    name = _clip_name(space, start, end, format.value)
    return Response(
        data,
        media_type=format.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": cache_control(space),
        },
    )


@router.get("/{space_id}/clip/captions.vtt", response_class=Response, responses={200: {"content": {"text/vtt": {}}}})
def get_clip_captions(space: ReadySpace, blobs: BlobsDep, start: Start, end: End) -> Response:
    """WebVTT for the clip, its times starting at zero like the clip's audio."""
    start, end = clips.check_window(start, end, space.duration)
    window = transcripts.window(transcripts.load(blobs, space.space_id), start, end, margin=WORD_MARGIN)
    return Response(
        transcripts.webvtt(window, offset=start),
        media_type="text/vtt; charset=utf-8",
        headers={"Cache-Control": cache_control(space)},
    )


def _clip_name(space: Space, start: float, end: float, ext: str) -> str:
    return f"{space.space_id}-{start:.0f}-{end:.0f}.{ext}"
