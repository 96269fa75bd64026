"""People in control of their voice: delete a space, erase a speaker, erasure links, export, retention.

Who may do what:

* ``DELETE /spaces/{id}``, ``PUT /spaces/{id}/retention``: the host's token of that space.
* ``DELETE /spaces/{id}/speakers/{speaker}``: the host's token, or that
  speaker's erasure token (``Authorization: Bearer`` or ``?token=``).
* ``POST /spaces/{id}/erasure-link``: a speaker's own join token (while it is
  valid: ask for it while speaking, or just after) gives their erasure
  link; the host's token gives anyone's (``?speaker=``).
* ``GET /spaces/{id}/export?speaker=NAME``: the host's token, that speaker's
  erasure token, or that speaker's own join token.

Without a token a private space is a 404 and a public one a 401; a token
for another space, or an erasure token for someone else, is a 403 (for an
erasure token of another space: 404, as if the space did not exist for it).
Nothing is changed by a refused request.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from replay_api.deps import BlobsDep, CatalogDep, SettingsDep, SpaceId, TokenDep
from replay_api.schemas import Accepted, ErasureLink, RetentionIn
from replay_api.transcripts import load as load_transcript
from spaces import keys, layout, queue, tokens
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.consent import is_erasure_token, issue_erasure, verify_erasure
from spaces.exceptions import NotFound
from spaces.models import Manifest, Space, SpaceState, Visibility
from spaces.settings import RETENTION_KINDS, Settings

router = APIRouter(prefix="/spaces", tags=["privacy"])

SpeakerName = Annotated[str, Path(min_length=1, max_length=64, description="The speaker's name in the space")]


class Caller:
    """Who a request's token says it is, for this space."""

    def __init__(self, *, host: bool = False, speaker: str | None = None, link: bool = False) -> None:
        self.host = host
        self.speaker = speaker
        self.link = link
        """Whether the token is an erasure link (``speaker`` is then whom it erases)."""

    def may_act_for(self, speaker: str) -> bool:
        return self.host or self.speaker == speaker

    def may_erase(self, speaker: str) -> bool:
        """The host, or the speaker's own erasure link (not their join token: that one
        could have been shared for the room; the link is theirs alone)."""
        return self.host or (self.link and self.speaker == speaker)


def _space(catalog: Catalog, space_id: str) -> Space:
    space = catalog.get_space(space_id)
    if space.state is SpaceState.DELETING:
        raise NotFound(f"no space {space_id!r}")
    return space


def _caller(settings: Settings, space: Space, token: str | None, *, erasure: bool) -> Caller:
    """Check the token against the space (rules in the module docstring)."""
    if token is None:
        if space.visibility is Visibility.PRIVATE:
            raise NotFound(f"no space {space.space_id!r}")
        raise HTTPException(401, "this needs the host's token (Authorization: Bearer)")
    if is_erasure_token(token):
        if not erasure:
            raise HTTPException(403, "an erasure link only erases (or exports) its speaker")
        link = verify_erasure(settings.secret_key, token)
        if link.space_id != space.space_id:
            raise NotFound(f"no space {space.space_id!r}")
        return Caller(speaker=link.speaker, link=True)
    claims = tokens.verify(settings.secret_key, token)
    if claims.space_id != space.space_id:
        raise HTTPException(403, "this token is for another space")
    if claims.role is tokens.Role.HOST:
        return Caller(host=True, speaker=claims.identity)
    return Caller(speaker=claims.identity if claims.role is tokens.Role.SPEAKER else None)


def _manifest(blobs: BlobStore, space_id: str) -> Manifest | None:
    try:
        return layout.read_manifest(blobs, space_id)
    except NotFound:
        return None


@router.delete("/{space_id}", status_code=202, response_model=Accepted)
def delete_space(space_id: SpaceId, catalog: CatalogDep, settings: SettingsDep, token: TokenDep) -> Accepted:
    """Delete the space: every object (every version) and row under its id, as jobs.

    From this answer on the space is a 404, and a live space ends within a
    second (its recording thrown away). A second deletion is a 404.
    """
    space = _space(catalog, space_id)
    if not _caller(settings, space, token, erasure=False).host:
        raise HTTPException(403, "only the host may delete a space")
    previous = catalog.mark_deleting(space_id)
    if previous is None:  # another request won the race
        raise NotFound(f"no space {space_id!r}")
    job = queue.enqueue_deletion(settings, space_id, was_live=previous in (SpaceState.LIVE, SpaceState.CREATED))
    return Accepted(space_id=space_id, state=str(SpaceState.DELETING), job_id=str(job.id))


@router.delete("/{space_id}/speakers/{speaker}", status_code=202, response_model=Accepted)
def erase_speaker(
    space_id: SpaceId,
    speaker: SpeakerName,
    catalog: CatalogDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    token: TokenDep,
) -> Accepted:
    """Erase one speaker from an ended space (progress in ``GET /spaces/{id}``, stage ``erase:NAME``).

    Asking again while it runs, or after, is the same erasure (202, one job).
    """
    space = _space(catalog, space_id)
    if not _caller(settings, space, token, erasure=True).may_erase(speaker):
        raise HTTPException(403, "this token may not erase that speaker")
    if space.state not in (SpaceState.READY, SpaceState.FAILED):
        raise HTTPException(409, f"space {space_id!r} is {space.state}: a speaker is erased once it is processed")
    manifest = _manifest(blobs, space_id)
    known = {s for _, s in manifest.tracks + manifest.erased} if manifest else set()
    if speaker not in known:
        raise NotFound(f"no speaker {speaker!r} in space {space_id!r}")
    if catalog.request_erasure(space_id, speaker, now=time.time()):
        catalog.set_progress(space_id, f"erase:{speaker}", 0.0)
    job = queue.enqueue_erasure(settings, space_id, speaker)
    return Accepted(space_id=space_id, state="erasing", speaker=speaker, job_id=str(job.id))


@router.post("/{space_id}/erasure-link", response_model=ErasureLink)
def erasure_link(
    space_id: SpaceId,
    catalog: CatalogDep,
    settings: SettingsDep,
    token: TokenDep,
    speaker: Annotated[str | None, Query(max_length=64, description="Whose link (host only); default: yours")] = None,
) -> ErasureLink:
    """A speaker's erasure link, valid ``SPACES_ERASURE_TTL`` seconds (30 days by default)."""
    space = _space(catalog, space_id)
    caller = _caller(settings, space, token, erasure=False)
    name = speaker or caller.speaker
    if name is None or not caller.may_act_for(name):
        raise HTTPException(403, "only a speaker (for themselves) or the host gets an erasure link")
    link = issue_erasure(settings.secret_key, space_id=space_id, speaker=name, ttl=settings.erasure_ttl)
    url = f"{settings.api_url.rstrip('/')}/spaces/{space_id}/speakers/{quote(name, safe='')}?" + urlencode(
        {"token": link}
    )
    return ErasureLink(space_id=space_id, speaker=name, token=link, url=url, expires_in=settings.erasure_ttl)


@router.get(
    "/{space_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "words.json and the speaker's audio"}},
)
def export_speaker(
    space_id: SpaceId,
    catalog: CatalogDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    token: TokenDep,
    speaker: Annotated[str, Query(min_length=1, max_length=64, description="Whose words and audio")],
) -> Response:
    """One speaker's data in a space as a zip: ``words.json`` and their recorded segments."""
    space = _space(catalog, space_id)
    if not _caller(settings, space, token, erasure=True).may_act_for(speaker):
        raise HTTPException(403, "this token may not export that speaker")
    manifest = _manifest(blobs, space_id)
    tracks = [t for t, s in manifest.tracks if s == speaker] if manifest else []
    words: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    if blobs.exists(keys.transcript(space_id)):
        transcript = load_transcript(blobs, space_id)
        words = [w.to_dict() for t in transcript.turns if t.speaker == speaker for w in t.words]
        gaps = [g.to_dict() for g in transcript.gaps if g.speaker == speaker]
    if not tracks and not words:
        raise NotFound(f"nothing of {speaker!r} in space {space_id!r}")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        segments = []
        for track_id in tracks:
            try:
                track = layout.read_track(blobs, space_id, track_id)
            except NotFound:
                continue
            for seg in track.segments:
                name = f"audio/{track_id}/{seg.seq:06d}.ogg"
                archive.writestr(name, blobs.get(seg.key))
                segments.append({"file": name, "offset": round(seg.offset, 3), "duration": round(seg.duration, 3)})
        body = {
            "space_id": space_id,
            "title": space.title,
            "speaker": speaker,
            "words": words,
            "gaps": gaps,
            "audio": segments,
        }
        archive.writestr("words.json", json.dumps(body, ensure_ascii=False, indent=1))
    filename = f"{space_id}-{keys.is_valid_id(speaker) and speaker or 'speaker'}.zip"
    return Response(
        out.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store"},
    )


@router.put("/{space_id}/retention")
def set_retention(
    space_id: SpaceId, body: RetentionIn, catalog: CatalogDep, settings: SettingsDep, token: TokenDep
) -> dict[str, Any]:
    """The host sets how long this space is kept, and what outlives that (``keep``)."""
    space = _space(catalog, space_id)
    if not _caller(settings, space, token, erasure=False).host:
        raise HTTPException(403, "only the host sets a space's retention")
    unknown = set(body.keep) - RETENTION_KINDS
    if unknown:
        raise HTTPException(422, f"unknown kinds to keep: {sorted(unknown)}; choose among {sorted(RETENTION_KINDS)}")
    catalog.set_retention(space_id, body.days, body.keep)
    return {"space_id": space_id, "days": body.days, "keep": sorted(body.keep)}
