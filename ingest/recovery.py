"""Crash recovery: finalize the spaces a previous SFU process left on the spool.

Runs at start-up, before the SFU accepts connections. A space directory
still on the spool was not finalized: its segments are checked (cut back to
their last whole Ogg page), uploaded, and the space is finalized as
*partial* unless the previous process had already closed every segment
(phase ``ended``), in which case nothing was lost.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path

from ingest.archive import SpaceArchive
from ingest.oggwriter import repair
from ingest.opus import CLOCK_RATE
from ingest.retry import retry_forever
from ingest.spool import RoomRecord, SegmentMeta, SpaceSpool, unfinished_spaces
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.models import SpaceState
from spaces.settings import Settings

log = logging.getLogger(__name__)


def salvage_segments(spool: SpaceSpool, track_id: str) -> list[SegmentMeta]:
    """Close every segment of a track the crash left open; drop empty ones."""
    out = []
    for meta in spool.segments(track_id):
        audio = spool.segment_audio(track_id, meta.seq)
        if meta.uploaded or (meta.closed and not audio.exists()):
            out.append(meta)
            continue
        if not audio.exists():
            spool.segment_meta_path(track_id, meta.seq).unlink(missing_ok=True)
            continue
        result = repair(audio)
        if result.audio_packets == 0:
            audio.unlink(missing_ok=True)
            spool.segment_meta_path(track_id, meta.seq).unlink(missing_ok=True)
            continue
        if result.truncated:
            log.warning("segment %s kept its first %d bytes", audio, result.valid_bytes)
        fixed = replace(meta, duration=round(result.audio_samples / CLOCK_RATE, 6), closed=True)
        spool.write_meta(fixed)
        out.append(fixed)
    return out


#: Where a space's spool goes when a sweep finalized it while this node was
#: away: kept for an operator, never finalized again. A dot-name is no space id.
SUPERSEDED = ".superseded"


def salvage(spool: SpaceSpool) -> RoomRecord:
    """Close every segment the crash left open; the room record, with every track found."""
    record = spool.read_room()
    for track_id in spool.track_ids():
        metas = salvage_segments(spool, track_id)
        if metas and all(t != track_id for t, _ in record.tracks):
            record = record.with_track(track_id, metas[0].speaker)
    return record


async def recover_space(
    space_id: str,
    *,
    settings: Settings,
    blobs: BlobStore,
    catalog: Catalog,
    claim: Callable[[str], bool] | None = None,
    on_finished: Callable[[str], None] | None = None,
) -> bool:
    """Finalize one space left on the spool.

    ``claim`` (the node's, through the router) says whether the space is
    still this node's to finalize: it is not once a sweep finalized it from
    the blob store while the node was down, and then the spool is set aside.
    """
    spool = SpaceSpool(settings.spool_dir, space_id)
    if not spool.exists():
        log.error("spool %s has no room.json; left in place for an operator", spool.dir)
        return False
    if claim is not None and not await retry_forever(lambda: claim(space_id), what=f"claim {space_id}"):
        aside = settings.spool_dir / SUPERSEDED / space_id
        log.warning(
            "space %s was finalized without this node while it was down; its spool is kept in %s",
            space_id,
            aside,
            extra={"space_id": space_id},
        )
        await asyncio.to_thread(_set_aside, spool, aside)
        return False
    record = await asyncio.to_thread(salvage, spool)
    partial = record.phase is not SpaceState.ENDED
    log.warning(
        "recovering space %s left unfinished (%s)",
        space_id,
        "partial" if partial else "complete",
        extra={"space_id": space_id},
    )
    archive = SpaceArchive(settings=settings, spool=spool, blobs=blobs, catalog=catalog, on_finished=on_finished)
    await archive.finish(record, partial=partial)
    return True


def _set_aside(spool: SpaceSpool, aside: Path) -> None:
    aside.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(aside, ignore_errors=True)
    spool.dir.rename(aside)


async def recover_all(
    *,
    settings: Settings,
    blobs: BlobStore,
    catalog: Catalog,
    claim: Callable[[str], bool] | None = None,
    on_finished: Callable[[str], None] | None = None,
    spaces: Collection[str] | None = None,
) -> list[str]:
    """Finalize every unfinished space on the spool (or these of them); returns their ids."""
    done = []
    for space_id in unfinished_spaces(settings.spool_dir) if spaces is None else sorted(spaces):
        if await recover_space(
            space_id, settings=settings, blobs=blobs, catalog=catalog, claim=claim, on_finished=on_finished
        ):
            done.append(space_id)
    return done
