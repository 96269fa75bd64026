"""A live room: who is in it, the forwarding slots, control, the end.

Room state lives here; the packet path does not, nor what participants ask
of the room (``control``), what everyone is told (``roster``) and what the
room has recorded (``room_recording``). Each speaker's
published track has one owner, a ``publication.Publication`` (its slot and
its recorder), which the receiver feeds directly; the room creates it when
someone may publish, switches it on and off, and reads its figures. File
work goes to the room's writer thread (``writer.ThreadWriter``), blocking
calls (catalog, blob store) to threads: the event loop never waits on disk.

The room is opened by the first join (``rooms.Rooms``), records every
publisher from their first packet, and ends when the host ends it or no
host or speaker has been in it for ``empty_timeout`` seconds (listeners
alone do not keep a room live; they are told it ended). Its state is a
``SpaceState``: ``LIVE``, then ``ENDED`` while it hands over, ``RECORDED``
once handed over (or ``CREATED`` again if nobody ever spoke). Who holds
which name is ``membership``'s business; a participant whose media is not
connected ``setup_timeout`` seconds after joining is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.archive import SpaceArchive, mark_live, reopen
from ingest.control import Control
from ingest.exceptions import Forbidden, ListenOnHls, SetupTimeout, SpaceEnded, TooMany
from ingest.forward import Slot
from ingest.ice import CandidatePolicy
from ingest.membership import Names
from ingest.participant import Channel, Participant
from ingest.publication import Publication
from ingest.recorder import RecorderOptions
from ingest.room_recording import RoomRecording
from ingest.roster import Announcer
from ingest.signaling import ClientMessage, error
from ingest.spool import RoomRecord, SpaceSpool
from ingest.writer import ThreadWriter
from spaces.catalog import Catalog
from spaces.exceptions import NotFound
from spaces.models import Space, SpaceState
from spaces.tokens import Claims, Role

log = logging.getLogger(__name__)

LEVELS_INTERVAL = 0.25


@dataclass(frozen=True)
class RoomOptions:
    max_participants: int = 500
    """Listeners are refused once this many are in the room; hosts and speakers never are."""
    hls_past_cap: bool = False
    """Listeners past the cap are sent to the room's HLS (a room agent writes it) rather than refused."""
    empty_timeout: float = 60.0
    """A room without a host or speaker in it ends after this many seconds."""
    setup_timeout: float = 10.0
    """A participant whose media is not connected this long after joining is dropped."""
    candidates: CandidatePolicy = field(default_factory=CandidatePolicy)
    ice_servers: list[str] = field(default_factory=list)
    opus_bitrate: int = 64000
    """Opus bit/s speakers are asked to send at (``ingest.bitrate``); 0: the browser's own."""
    recorder: RecorderOptions = field(default_factory=RecorderOptions)
    deletion_poll: float = 1.0
    """Seconds between checks that the host has not deleted the space (through the API)."""


class Room:
    def __init__(
        self,
        space: Space,
        *,
        options: RoomOptions,
        spool: SpaceSpool,
        archive: SpaceArchive,
        catalog: Catalog,
        on_closed: Callable[[Room], None],
        summon_agent: Callable[[str, int], Awaitable[None]] | None = None,
        resume: RoomRecord | None = None,
    ) -> None:
        """``summon_agent(space_id, attempt)`` sends a room agent (live captions) in; None: no agent."""
        self.space_id = space.space_id
        self.title = space.title
        self.options = options
        self.spool = spool
        self.archive = archive
        self.catalog = catalog
        self._on_closed = on_closed
        self._summon_agent = summon_agent
        self._agent_attempts = 0
        self.state = SpaceState.LIVE
        self.started_at = time.time()
        self._mono0 = time.monotonic()
        record = RoomRecord(
            space_id=space.space_id,
            title=space.title,
            host=space.host,
            visibility=str(space.visibility),
            started_at=self.started_at,
        )
        if resume is not None:
            # Opened again by a node restarted mid-space: the same room clock, the tracks so far.
            self.started_at = resume.started_at
            self._mono0 = time.monotonic() - (time.time() - resume.started_at)
            record = replace(resume, phase=SpaceState.LIVE)
        self.participants: dict[str, Participant] = {}
        self.slots: list[Slot] = []
        self.writer = ThreadWriter(f"spool-{space.space_id}")
        self.recording = RoomRecording(
            record,
            spool=spool,
            writer=self.writer,
            options=options.recorder,
            on_segment_closed=archive.segment_closed,
            on_speakers=lambda speakers: self.spawn(
                asyncio.to_thread(mark_live, self.catalog, self.space_id, speakers=speakers)
            ),
        )
        self.control = Control(self)
        self.names = Names()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._empty_timer: asyncio.TimerHandle | None = None
        self.announce = Announcer(self)
        self._levels_task: asyncio.Task[None] | None = None
        self._deletion_task: asyncio.Task[None] | None = None
        self.all_or_none = False
        """The host's policy: everyone who speaks is recorded, or listens (declining = listening)."""

    # --- life cycle --------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.spool.write_room, self.recording.record)
        await asyncio.to_thread(mark_live, self.catalog, self.space_id)
        self.spawn(self.archive.put_manifest(self.recording.record, ended_at=None, partial=False))
        self._levels_task = asyncio.get_running_loop().create_task(self.announce.levels_loop(LEVELS_INTERVAL))
        self._deletion_task = asyncio.get_running_loop().create_task(self._deletion_watch())
        self._arm_empty_timer()
        self._call_agent()
        log.info("room %s open", self.space_id, extra={"space_id": self.space_id})

    def room_time(self) -> float:
        return time.monotonic() - self._mono0

    async def end(self, reason: str, *, deleted: bool = False) -> None:
        """Stop the room, close every recording, hand the space over.

        ``deleted``: the host deleted the space; its recording is thrown away
        (the spool removed), never handed over, so nothing lands after the
        deletion jobs and no finished room recreates the space in the catalog.
        """
        if self.state is not SpaceState.LIVE:
            return
        log.info("room %s ending: %s", self.space_id, reason, extra={"space_id": self.space_id})
        people = await self._close(SpaceState.ENDED, reason)
        for p in people:
            if p.publication is not None:
                p.publication.stop()
        self.recording.close_tracks()
        if deleted:
            await self.writer.close()
            await self.archive.abandon()
            await asyncio.to_thread(self.spool.remove)
            self.state = SpaceState.DELETING
            self._on_closed(self)
            return
        self.recording.mark_ended()
        # Every segment closed and synced, room.json saying so, before the hand-over reads the spool.
        await self.writer.close()
        try:
            await self.archive.finish(self.recording.record, partial=False)
        finally:
            self.state = SpaceState.RECORDED
            self._on_closed(self)

    def _attended(self) -> bool:
        return any(p.can_publish for p in self.participants.values())

    def _arm_empty_timer(self) -> None:
        """Start counting when no host or speaker is left (listeners alone do not keep a room)."""
        if self._empty_timer is not None or self.state is not SpaceState.LIVE:
            return
        self._empty_timer = asyncio.get_running_loop().call_later(
            self.options.empty_timeout, lambda: self.spawn(self._end_if_unattended())
        )

    def check_attended(self) -> None:
        if self._attended():
            if self._empty_timer is not None:
                self._empty_timer.cancel()
                self._empty_timer = None
        else:
            self._arm_empty_timer()

    async def _end_if_unattended(self) -> None:
        self._empty_timer = None
        if self._attended():
            return
        reason = "the host and speakers left" if self.participants else "everyone left"
        if not self.recording.record.tracks:
            await self.abandon(reason)
        else:
            await self.end(reason)

    async def abandon(self, reason: str = "everyone left") -> None:
        """Nobody ever spoke and the speakers left: forget the room, the space is not over."""
        if self.state is not SpaceState.LIVE:
            return
        await self._close(SpaceState.CREATED, reason)
        await self.writer.close()
        await asyncio.to_thread(self.spool.remove)
        await asyncio.to_thread(reopen, self.catalog, self.space_id)
        log.info("room %s closed with nothing recorded", self.space_id, extra={"space_id": self.space_id})
        self._on_closed(self)

    async def _close(self, state: SpaceState, reason: str) -> list[Participant]:
        """Stop the room's timer and watchers, send everyone away (the space ended); who they were."""
        self.state = state
        if self._empty_timer is not None:
            self._empty_timer.cancel()
        if self._levels_task is not None:
            self._levels_task.cancel()
        if self._deletion_task is not None and self._deletion_task is not asyncio.current_task():
            self._deletion_task.cancel()
        people = list(self.participants.values())
        self.participants.clear()
        for p in people:
            p.channel.send({"type": "ended", "reason": reason})
            p.channel.close(1000, "space ended")
        # Before the peer connections close: a sink's dup of its ICE socket would keep the socket (and its
        # UDP port, from a bounded range) open until the room is collected.
        for slot in self.slots:
            slot.clear()
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)
        return people

    # --- membership --------------------------------------------------------------

    def admit(self, claims: Claims, channel: Channel, *, address: str = "", record: bool = True) -> Participant:
        """Let a verified token in (``membership`` decides whose name is whose).

        The cap counts everyone but refuses only listeners: the host and the
        speakers the host invited always get in, so sockets that join and
        idle can never lock them out (and idle ones are dropped anyway after
        ``setup_timeout``).
        """
        if self.state is not SpaceState.LIVE:
            raise SpaceEnded("the space has ended")
        admission = self.names.resolve(claims)
        holder = admission.holder
        old = self.participants.get(admission.replaces) if admission.replaces is not None else None
        if old is None and holder.role is Role.LISTENER and len(self.participants) >= self.options.max_participants:
            if self.options.hls_past_cap:
                raise ListenOnHls(
                    f"the space's {self.options.max_participants} WebRTC seats are taken: listen over HLS"
                )
            raise TooMany(f"the space is full ({self.options.max_participants} participants)")
        self.names.bind(admission)
        if old is not None:
            # The holder again (a reconnect) or a higher role for the name: the new connection wins.
            old.channel.send({"type": "error", "code": "replaced", "message": "joined from another connection"})
            old.channel.close(4000, "replaced")
            self.participant_gone(old, reason="replaced")
        p = Participant(
            self,
            identity=holder.name,
            role=holder.role,
            channel=channel,
            ice_servers=self.options.ice_servers,
            candidates=self.options.candidates,
            opus_bitrate=self.options.opus_bitrate,
            holder=holder,
            address=address,
        )
        p.recorded = record
        if not record and p.can_publish and self.all_or_none:
            if p.role is Role.HOST:
                raise Forbidden("this space records everyone or no one; the host is recorded too")
            # Declining in an all-or-none space means listening.
            p.role = holder.role = Role.LISTENER
        self.participants[p.identity] = p
        if p.can_publish:
            self.recording.note_consent(p.identity, self.room_time(), p.recorded)
        self.check_attended()
        asyncio.get_running_loop().call_later(self.options.setup_timeout, self._setup_expired, p)
        channel.send(
            {
                "type": "welcome",
                "identity": p.identity,
                "role": str(p.role),
                "space_id": self.space_id,
                "title": self.title,
                "room_time": round(self.room_time(), 3),
            }
        )
        if p.can_publish:
            self.assign_slot(p)
        self.spawn(p.negotiate())
        self.announce.schedule_state()
        return p

    def _setup_expired(self, p: Participant) -> None:
        """Joined but never connected its media: it holds a place for nothing."""
        if self.participants.get(p.identity) is not p or p.pc.connectionState == "connected":
            return
        e = SetupTimeout(f"media not connected within {self.options.setup_timeout:g} s of joining")
        p.channel.send(error(e.code, e.message))
        p.channel.close(e.close_code or 4408, e.code)
        self.participant_gone(p, reason="media setup timed out")

    def participant_ready(self, p: Participant) -> None:
        """``p`` connected or answered: let it hear every slot it has negotiated."""
        if p.sink is None or self.participants.get(p.identity) is not p:
            return
        for index in p.negotiated_slots:
            slot = self.slots[index]
            if not slot.has_sink(p.identity):
                # The agent transcribes speech: silence would cost it CPU for nothing.
                slot.add_sink(p.identity, p.sink, speech_only=p.role is Role.AGENT)

    def participant_gone(self, p: Participant, *, reason: str) -> None:
        if self.participants.get(p.identity) is not p:
            self.spawn(p.close())
            return
        del self.participants[p.identity]
        log.info("%s left %s: %s", p.identity, self.space_id, reason, extra={"space_id": self.space_id})
        for slot in self.slots:
            slot.remove_sink(p.identity)
        self.release_slot(p)
        p.channel.close(1000, reason)
        self.spawn(p.close())
        self.announce.schedule_state()
        self.check_attended()
        if p.role is Role.AGENT and reason != "replaced":
            self._call_agent()  # the agent died or lost its connection: another one takes over

    def _call_agent(self) -> None:
        if self._summon_agent is None or self.state is not SpaceState.LIVE:
            return
        self._agent_attempts += 1
        self.spawn(self._summon_agent(self.space_id, self._agent_attempts))

    def assign_slot(self, p: Participant) -> None:
        if p.slot is not None:
            return
        slot = next((s for s in self.slots if s.publisher is None), None)
        if slot is None:
            slot = Slot(len(self.slots))
            self.slots.append(slot)
            # A new slot is a new m-line for everyone: server-driven renegotiation.
            for other in self.participants.values():
                if other is not p:
                    self.spawn(other.negotiate())
        slot.occupy(p.identity)
        p.slot = slot
        publication = Publication(
            p.identity,
            slot,
            open_recorder=self.recording.opener(p.identity) if p.recorded else None,
            clock=self.room_time,
        )
        publication.muted = p.muted
        p.publication = publication

    def release_slot(self, p: Participant) -> None:
        if p.slot is None:
            return
        if p.publication is not None:
            p.publication.stop()
            p.publication = None
        p.slot.vacate()
        p.slot = None

    async def handle(self, p: Participant, msg: ClientMessage) -> None:
        await self.control.handle(p, msg)

    async def _deletion_watch(self) -> None:
        """End the room, keeping nothing, once the host deleted the space through the API."""
        while self.state is SpaceState.LIVE:
            await asyncio.sleep(self.options.deletion_poll)
            try:
                space = await asyncio.to_thread(self.catalog.get_space, self.space_id)
            except NotFound:
                deleted = True
            except Exception:  # the catalog unreachable for a moment: ask again later
                log.warning("room %s: catalog check failed", self.space_id, exc_info=True)
                continue
            else:
                deleted = space.state is SpaceState.DELETING
            if deleted:
                await self.end("the host deleted the space", deleted=True)
                return

    # --- housekeeping ----------------------------------------------------------------

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("room %s task failed", self.space_id, exc_info=task.exception())

    def stats(self) -> dict[str, Any]:
        return {
            "space_id": self.space_id,
            "state": str(self.state),
            "writer_pending": self.writer.pending,
            "participants": len(self.participants),
            "slots": [
                {
                    "index": s.index,
                    "publisher": s.publisher,
                    "listeners": s.listeners,
                    "forwarded": s.forwarded,
                    "sent": s.sent,
                }
                for s in self.slots
            ],
            "tracks": [
                {"track_id": r.track_id, "packets": r.packets, "dropped": r.dropped}
                for r in self.recording.recorders.values()
            ],
        }
