"""Handing a space's recording over: uploads, track and space manifests, catalog, queue.

``SpaceArchive`` is used by a live room (segments upload as they close) and
by crash recovery (everything left on the spool is uploaded at once); both
end in ``finish``, which writes ``track.json`` and ``manifest.json``, marks
the space recorded and enqueues the pipeline. Every step is idempotent
(same keys, same bytes; ``enqueue_finalize`` dedupes by job id), so a
crash anywhere means the next start simply does it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from ingest.retry import retry_forever
from ingest.spool import RoomRecord, SegmentMeta, SpaceSpool
from spaces import keys, layout
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.exceptions import NotFound
from spaces.models import Manifest, Segment, Space, SpaceState, Track, Visibility
from spaces.queue import enqueue_finalize
from spaces.settings import Settings

log = logging.getLogger(__name__)

#: States a space may be in when the SFU marks it recorded; later states
#: (processing, ready) mean a previous run already handed it over. ``empty``:
#: swept as unjoined in the instant its room opened; the room won.
_BEFORE_RECORDED = {SpaceState.CREATED, SpaceState.LIVE, SpaceState.RECORDED, SpaceState.EMPTY}


class SpaceArchive:
    def __init__(
        self,
        *,
        settings: Settings,
        spool: SpaceSpool,
        blobs: BlobStore,
        catalog: Catalog,
        on_finished: Callable[[str], None] | None = None,
        resumed: bool = False,
    ) -> None:
        self.settings = settings
        #: The room was reopened after its node crashed: audio is missing, it is partial however it ends.
        self.resumed = resumed
        #: Called (in a thread, retried) once the space is handed over: the node releases it.
        self.on_finished = on_finished
        self.spool = spool
        self.blobs = blobs
        self.catalog = catalog
        self.space_id = spool.space_id
        self._uploads: set[asyncio.Task[None]] = set()
        self._track_locks: dict[str, asyncio.Lock] = {}

    # --- segments --------------------------------------------------------------

    def segment_closed(self, meta: SegmentMeta) -> None:
        """Recorder callback: upload the segment in the background."""
        task = asyncio.get_running_loop().create_task(self.upload_segment(meta))
        self._uploads.add(task)
        task.add_done_callback(self._uploads.discard)

    async def upload_segment(self, meta: SegmentMeta) -> None:
        path = self.spool.segment_audio(meta.track_id, meta.seq)
        if meta.uploaded or not path.exists():
            return
        key = keys.segment(self.space_id, meta.track_id, meta.seq)
        await retry_forever(lambda: self.blobs.put_file(key, path, content_type="audio/ogg"), what=f"upload {key}")
        # Confirmed: only now may the spool copy go.
        await asyncio.to_thread(self.spool.write_meta, replace(meta, uploaded=True))
        path.unlink(missing_ok=True)
        await self.put_track_manifest(meta.track_id, meta.speaker)

    async def put_track_manifest(self, track_id: str, speaker: str) -> None:
        lock = self._track_locks.setdefault(track_id, asyncio.Lock())
        async with lock:
            segments = tuple(
                Segment(
                    seq=m.seq,
                    key=keys.segment(self.space_id, track_id, m.seq),
                    offset=m.offset,
                    duration=m.duration,
                )
                for m in self.spool.segments(track_id)
                if m.uploaded and m.duration > 0
            )
            track = Track(track_id=track_id, speaker=speaker, segments=segments)
            key = keys.track_manifest(self.space_id, track_id)
            await retry_forever(lambda: layout.put_track(self.blobs, self.space_id, track), what=f"upload {key}")

    async def drain(self) -> None:
        """Wait for every segment upload started so far."""
        while self._uploads:
            await asyncio.gather(*list(self._uploads))

    async def abandon(self, *, grace: float = 10.0) -> None:
        """Let uploads in flight finish (up to ``grace`` s), cancel the rest: the space is being deleted.

        Waiting first means nothing lands after the room is gone (the deletion
        jobs would have to sweep again); the grace bounds it when the store is down.
        """
        pending = list(self._uploads)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    # --- the space ---------------------------------------------------------------

    async def put_manifest(self, record: RoomRecord, *, ended_at: float | None, partial: bool) -> None:
        manifest = Manifest(
            space_id=record.space_id,
            title=record.title,
            host=record.host,
            started_at=record.started_at,
            visibility=Visibility(record.visibility),
            tracks=record.tracks,
            ended_at=ended_at,
            partial=partial,
            consents=record.consents,
            unrecorded=record.unrecorded,
        )
        key = keys.manifest(self.space_id)
        await retry_forever(lambda: layout.put_manifest(self.blobs, manifest), what=f"upload {key}")

    async def finish(self, record: RoomRecord, *, partial: bool) -> None:
        """Upload what is left, write the manifests, mark recorded, enqueue, clear the spool."""
        partial = partial or self.resumed
        await self.drain()
        speakers: list[str] = []
        duration = 0.0
        for track_id, speaker in record.tracks:
            for meta in self.spool.segments(track_id):
                if meta.closed and not meta.uploaded:
                    await self.upload_segment(meta)
            await self.put_track_manifest(track_id, speaker)
            uploaded = [m for m in self.spool.segments(track_id) if m.uploaded and m.duration > 0]
            if uploaded:
                speakers.append(speaker)
                duration = max(duration, max(m.offset + m.duration for m in uploaded))
        ended_at = record.started_at + duration
        await self.put_manifest(record, ended_at=ended_at, partial=partial)
        await retry_forever(
            lambda: self._mark_recorded(
                record, duration=duration, speakers=list(dict.fromkeys(speakers)), partial=partial
            ),
            what=f"mark {self.space_id} recorded",
        )
        await retry_forever(
            lambda: enqueue_finalize(self.settings, self.space_id), what=f"enqueue finalize {self.space_id}"
        )
        await asyncio.to_thread(self.spool.remove)
        if self.on_finished is not None:
            on_finished = self.on_finished
            await retry_forever(lambda: on_finished(self.space_id), what=f"release {self.space_id}")
        log.info(
            "space %s recorded: %d track(s), %.1f s%s",
            self.space_id,
            len(speakers),
            duration,
            " (partial)" if partial else "",
            extra={"space_id": self.space_id},
        )

    def _mark_recorded(self, record: RoomRecord, *, duration: float, speakers: list[str], partial: bool) -> None:
        try:
            space = self.catalog.get_space(self.space_id)
        except NotFound:
            # Created elsewhere and lost from the catalog: keep the recording findable.
            space = Space(
                space_id=record.space_id,
                title=record.title,
                host=record.host,
                created_at=record.started_at,
                visibility=Visibility(record.visibility),
            )
        if space.state not in _BEFORE_RECORDED:
            log.info("space %s already %s; catalog left as is", self.space_id, space.state)
            return
        self.catalog.put_space(
            replace(
                space,
                state=SpaceState.RECORDED,
                duration=round(duration, 3),
                speakers=tuple(speakers),
                partial=partial or space.partial,
            )
        )


def mark_live(catalog: Catalog, space_id: str, *, speakers: tuple[str, ...] | None = None) -> None:
    """Room opened or its speakers changed: reflect it in the catalog."""
    space = catalog.get_space(space_id)
    # ``empty``: the unjoined sweep raced the room's opening; a room that opened wins.
    if space.state not in (SpaceState.CREATED, SpaceState.LIVE, SpaceState.EMPTY):
        return
    changed = replace(space, state=SpaceState.LIVE)
    if speakers is not None:
        changed = replace(changed, speakers=tuple(dict.fromkeys((*space.speakers, *speakers))))
    if changed != space:
        catalog.put_space(changed)


def reopen(catalog: Catalog, space_id: str) -> None:
    """A room closed before anyone spoke: the space is back to not started."""
    space = catalog.get_space(space_id)
    if space.state is SpaceState.LIVE and not space.speakers:
        catalog.put_space(replace(space, state=SpaceState.CREATED))
