"""The SFU's rooms: opening one on the first join, refusing spaces that are over."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from ingest.archive import SpaceArchive
from ingest.exceptions import SpaceEnded, UnknownSpace
from ingest.room import Room, RoomOptions
from ingest.spool import RoomRecord, SpaceSpool
from spaces import nodes, queue
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.exceptions import NotFound
from spaces.models import SpaceState
from spaces.settings import Settings

log = logging.getLogger(__name__)

#: Seconds between attempts to enqueue a room agent while the queue's Redis is away.
AGENT_RETRY = 5.0


class Rooms:
    def __init__(
        self,
        *,
        settings: Settings,
        options: RoomOptions,
        blobs: BlobStore,
        catalog: Catalog,
        on_finished: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        #: The node's release of a space it handed over (``SpaceArchive.on_finished``).
        self.on_finished = on_finished
        self.options = options
        self.blobs = blobs
        self.catalog = catalog
        self.rooms: dict[str, Room] = {}
        #: Spaces a previous process left unfinished; finalized by recovery, never reopened.
        self.recovering: set[str] = set()
        #: Rooms a previous process of this node left live: the first join opens them again
        #: (same room clock, tracks so far) until recovery takes them (``Sfu``).
        self.resumable: dict[str, RoomRecord] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    async def open(self, space_id: str) -> Room:
        room = self.rooms.get(space_id)
        if room is not None:
            if room.state is not SpaceState.LIVE:
                raise SpaceEnded("the space has ended")
            return room
        if space_id in self.recovering and space_id not in self.resumable:
            raise SpaceEnded("the space was interrupted by a server restart and is being saved")
        lock = self._opening.setdefault(space_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(space_id)
            if room is not None:
                return await self.open(space_id)
            try:
                space = await asyncio.to_thread(self.catalog.get_space, space_id)
            except NotFound as e:
                raise UnknownSpace(f"no space {space_id!r}") from e
            if space.state is SpaceState.CREATED and space.created_at < time.time() - self.settings.space_join_timeout:
                # Nobody joined in time (the API sweeps these too): over, as empty.
                await asyncio.to_thread(self.catalog.end_unjoined, time.time() - self.settings.space_join_timeout)
                raise SpaceEnded("nobody joined this space in time; it is over")
            if space.state not in (SpaceState.CREATED, SpaceState.LIVE):
                raise SpaceEnded(f"the space is {space.state}; it is no longer live")
            resume = self.resumable.pop(space_id, None)
            if resume is None and space_id in self.recovering:
                raise SpaceEnded("the space was interrupted by a server restart and is being saved")
            spool = SpaceSpool(self.settings.spool_dir, space_id)
            archive = SpaceArchive(
                settings=self.settings,
                spool=spool,
                blobs=self.blobs,
                catalog=self.catalog,
                on_finished=self.on_finished,
                resumed=resume is not None,
            )
            room = Room(
                space,
                options=self.options,
                spool=spool,
                archive=archive,
                catalog=self.catalog,
                on_closed=self._closed,
                summon_agent=self._summon_agent if self.settings.live_captions else None,
                resume=resume,
            )
            self.rooms[space_id] = room
            try:
                await room.start()
            except BaseException:
                del self.rooms[space_id]
                if resume is not None:
                    self.resumable[space_id] = resume
                raise
            if resume is not None:
                self.recovering.discard(space_id)
                log.warning("room %s opened again after a restart", space_id, extra={"space_id": space_id})
                # What the crash left closed but not uploaded goes up now, not at the end.
                for track_id, _ in resume.tracks:
                    for meta in spool.segments(track_id):
                        if meta.closed and not meta.uploaded:
                            archive.segment_closed(meta)
        self._opening.pop(space_id, None)
        return room

    async def _summon_agent(self, space_id: str, attempt: int) -> None:
        """Enqueue a room agent; while Redis is away the room runs and records, and captions start later."""
        while (room := self.rooms.get(space_id)) is not None and room.state is SpaceState.LIVE:
            try:
                url = nodes.rtc_url(self.settings.sfu_url, space_id)
                await asyncio.to_thread(queue.enqueue_live_room, self.settings, space_id, url, attempt=attempt)
                return
            except RedisError as e:
                log.warning("room agent for %s not enqueued (%s); trying again", space_id, e)
                await asyncio.sleep(AGENT_RETRY)

    def _closed(self, room: Room) -> None:
        if self.rooms.get(room.space_id) is room:
            del self.rooms[room.space_id]

    async def end_all(self, reason: str) -> None:
        await asyncio.gather(*(r.end(reason) for r in list(self.rooms.values())), return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        return {"rooms": [r.stats() for r in self.rooms.values()], "recovering": sorted(self.recovering)}
