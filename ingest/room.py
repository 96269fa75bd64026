"""A live room: who is in it, the forwarding slots, recording, control, the end.

Everything here runs on the event loop; blocking work (catalog, blob store)
goes to threads. The room is opened by the first join (``rooms.Rooms``),
records every publisher from their first packet, and ends when the host
ends it or nobody has been in it for ``empty_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiortc.rtp import RtpPacket

from ingest.archive import SpaceArchive, mark_live, reopen
from ingest.exceptions import Forbidden, IdentityTaken, OutOfOrder, SpaceEnded, TooMany
from ingest.forward import Slot
from ingest.participant import Channel, Participant
from ingest.recorder import RecorderOptions, TrackRecorder
from ingest.signaling import Answer, ClientMessage, Demote, End, Hand, Join, Mute, Ping, Promote, Remove
from ingest.spool import RoomRecord, SpaceSpool
from spaces.catalog import Catalog
from spaces.models import Space
from spaces.tokens import Claims, Role

log = logging.getLogger(__name__)

#: Who may take over a connection of the same identity (a reconnect): a token
#: of the same role or a higher one.
_RANK = {Role.LISTENER: 0, Role.SPEAKER: 1, Role.HOST: 2}

#: Who-is-speaking: louder than this (dBov, RFC 6464) counts as talking.
SPEAKING_DBOV = 50
#: A level older than this no longer counts (the speaker stopped sending).
LEVEL_TTL = 0.5
LEVELS_INTERVAL = 0.25
STATE_DEBOUNCE = 0.25


@dataclass(frozen=True)
class RoomOptions:
    max_participants: int = 500
    empty_timeout: float = 60.0
    ice_servers: list[str] = field(default_factory=list)
    recorder: RecorderOptions = field(default_factory=RecorderOptions)


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
        resume: RoomRecord | None = None,
    ) -> None:
        self.space_id = space.space_id
        self.title = space.title
        self.options = options
        self.spool = spool
        self.archive = archive
        self.catalog = catalog
        self._on_closed = on_closed
        self.state = "open"
        self.started_at = time.time()
        self._mono0 = time.monotonic()
        self.record = RoomRecord(
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
            self.record = replace(resume, phase="live")
        self.participants: dict[str, Participant] = {}
        self.slots: list[Slot] = []
        self.recorders: dict[str, TrackRecorder] = {}
        self.banned: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._empty_timer: asyncio.TimerHandle | None = None
        self._state_pending = False
        self._last_levels: dict[str, float] = {}
        self._levels_task: asyncio.Task[None] | None = None

    # --- life cycle --------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.spool.write_room, self.record)
        await asyncio.to_thread(mark_live, self.catalog, self.space_id)
        self._spawn(self.archive.put_manifest(self.record, ended_at=None, partial=False))
        self._levels_task = asyncio.get_running_loop().create_task(self._levels_loop())
        self._arm_empty_timer()
        log.info("room %s open", self.space_id, extra={"space_id": self.space_id})

    def room_time(self) -> float:
        return time.monotonic() - self._mono0

    async def end(self, reason: str) -> None:
        """Stop the room, close every recording, hand the space over."""
        if self.state != "open":
            return
        self.state = "ending"
        log.info("room %s ending: %s", self.space_id, reason, extra={"space_id": self.space_id})
        if self._empty_timer is not None:
            self._empty_timer.cancel()
        if self._levels_task is not None:
            self._levels_task.cancel()
        people = list(self.participants.values())
        self.participants.clear()
        for p in people:
            p.channel.send({"type": "ended", "reason": reason})
            p.channel.close(1000, "space ended")
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)
        for recorder in self.recorders.values():
            recorder.close()
        self.record = replace(self.record, phase="ended")
        await asyncio.to_thread(self.spool.write_room, self.record)
        try:
            await self.archive.finish(self.record, partial=False)
        finally:
            self.state = "ended"
            self._on_closed(self)

    def _arm_empty_timer(self) -> None:
        if self._empty_timer is not None:
            self._empty_timer.cancel()
        self._empty_timer = asyncio.get_running_loop().call_later(
            self.options.empty_timeout, lambda: self._spawn(self._end_if_empty())
        )

    async def _end_if_empty(self) -> None:
        if self.participants:
            return
        if not self.record.tracks:
            await self.abandon()
        else:
            await self.end("everyone left")

    async def abandon(self) -> None:
        """Nobody ever spoke and everyone left: forget the room, the space is not over."""
        if self.state != "open":
            return
        self.state = "ended"
        if self._levels_task is not None:
            self._levels_task.cancel()
        await asyncio.to_thread(self.spool.remove)
        await asyncio.to_thread(reopen, self.catalog, self.space_id)
        log.info("room %s closed with nothing recorded", self.space_id, extra={"space_id": self.space_id})
        self._on_closed(self)

    # --- membership --------------------------------------------------------------

    def admit(self, claims: Claims, channel: Channel) -> Participant:
        if self.state != "open":
            raise SpaceEnded("the space has ended")
        if claims.identity in self.banned:
            raise SpaceEnded("you were removed from this space by the host")
        old = self.participants.get(claims.identity)
        if old is None and len(self.participants) >= self.options.max_participants:
            raise TooMany(f"the space is full ({self.options.max_participants} participants)")
        if old is not None and _RANK[claims.role] < _RANK[old.joined_as]:
            # Anyone may get a listener token with any name: it must not take
            # a speaker's or the host's place in the room.
            raise IdentityTaken(f"{claims.identity!r} is already in the space")
        if old is not None:
            # Same identity again: a reconnect. The new connection wins.
            old.channel.send({"type": "error", "code": "replaced", "message": "joined from another connection"})
            old.channel.close(4000, "replaced")
            self.participant_gone(old, reason="replaced")
        p = Participant(
            self,
            identity=claims.identity,
            role=claims.role,
            channel=channel,
            ice_servers=self.options.ice_servers,
        )
        self.participants[p.identity] = p
        if self._empty_timer is not None:
            self._empty_timer.cancel()
            self._empty_timer = None
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
            self._assign_slot(p)
        self._spawn(p.negotiate())
        self._schedule_state()
        return p

    def participant_ready(self, p: Participant) -> None:
        """``p`` connected or answered: let it hear every slot it has negotiated."""
        if p.sink is None or self.participants.get(p.identity) is not p:
            return
        for index in p.negotiated_slots:
            slot = self.slots[index]
            if not slot.has_sink(p.identity):
                slot.add_sink(p.identity, p.sink)

    def participant_gone(self, p: Participant, *, reason: str) -> None:
        if self.participants.get(p.identity) is not p:
            self._spawn(p.close())
            return
        del self.participants[p.identity]
        log.info("%s left %s: %s", p.identity, self.space_id, reason, extra={"space_id": self.space_id})
        for slot in self.slots:
            slot.remove_sink(p.identity)
        self._release_slot(p)
        p.channel.close(1000, reason)
        self._spawn(p.close())
        self._schedule_state()
        if not self.participants and self.state == "open":
            self._arm_empty_timer()

    def _assign_slot(self, p: Participant) -> None:
        if p.slot is not None:
            return
        slot = next((s for s in self.slots if s.publisher is None), None)
        if slot is None:
            slot = Slot(len(self.slots))
            self.slots.append(slot)
            # A new slot is a new m-line for everyone: server-driven renegotiation.
            for other in self.participants.values():
                if other is not p:
                    self._spawn(other.negotiate())
        slot.occupy(p.identity)
        p.slot = slot

    def _release_slot(self, p: Participant) -> None:
        if p.slot is None:
            return
        p.slot.vacate()
        p.slot = None
        recorder = self.recorders.get(p.identity)
        if recorder is not None:
            recorder.pause()

    # --- media -------------------------------------------------------------------

    def on_rtp(self, p: Participant, packet: RtpPacket) -> None:
        slot = p.slot
        if slot is None or p.muted or self.state != "open":
            return
        level = slot.forward_packet(packet)
        if level is not None:
            p.level = level
            p.level_at = time.monotonic()
        recorder = self.recorders.get(p.identity) or self._new_recorder(p)
        recorder.write(ssrc=packet.ssrc, timestamp=packet.timestamp, payload=packet.payload, arrival=self.room_time())

    def _new_recorder(self, p: Participant) -> TrackRecorder:
        track_id = f"{len(self.record.tracks):02d}-{_slug(p.identity)}"
        self.record = self.record.with_track(track_id, p.identity)
        self.spool.write_room(self.record)
        recorder = TrackRecorder(
            self.spool,
            track_id=track_id,
            speaker=p.identity,
            options=self.options.recorder,
            on_closed=self.archive.segment_closed,
        )
        self.recorders[p.identity] = recorder
        speakers = tuple(s for _, s in self.record.tracks)
        self._spawn(asyncio.to_thread(mark_live, self.catalog, self.space_id, speakers=speakers))
        log.info("recording %s as track %s", p.identity, track_id, extra={"space_id": self.space_id})
        return recorder

    # --- control -----------------------------------------------------------------

    async def handle(self, p: Participant, msg: ClientMessage) -> None:
        if isinstance(msg, Answer):
            await p.on_answer(msg.rev, msg.sdp)
        elif isinstance(msg, Ping):
            p.channel.send({"type": "pong"})
        elif isinstance(msg, Hand):
            p.hand_raised = msg.raised
            self._schedule_state()
        elif isinstance(msg, Mute):
            if msg.identity is None or msg.identity == p.identity:
                self._set_muted(p, msg.muted, by=p.identity)
            else:
                self._require_host(p, "mute others")
                self._set_muted(self._target(msg.identity), msg.muted, by=p.identity)
        elif isinstance(msg, Promote):
            self._require_host(p, "promote")
            self._set_role(self._target(msg.identity), Role.SPEAKER)
        elif isinstance(msg, Demote):
            self._require_host(p, "demote")
            target = self._target(msg.identity)
            if target.role is Role.HOST:
                raise Forbidden("the host cannot be demoted")
            self._set_role(target, Role.LISTENER)
        elif isinstance(msg, Remove):
            self._require_host(p, "remove participants")
            target = self._target(msg.identity)
            if target is p:
                raise Forbidden("the host cannot remove themselves; end the space instead")
            self.banned.add(target.identity)
            target.channel.send({"type": "error", "code": "removed", "message": "removed by the host"})
            target.channel.close(4409, "removed")
            self.participant_gone(target, reason="removed by the host")
        elif isinstance(msg, End):
            self._require_host(p, "end the space")
            self._spawn(self.end(f"ended by {p.identity}"))
        elif isinstance(msg, Join):
            raise OutOfOrder("already joined")

    def _require_host(self, p: Participant, what: str) -> None:
        if p.role is not Role.HOST:
            raise Forbidden(f"only the host may {what}")

    def _target(self, identity: str) -> Participant:
        target = self.participants.get(identity)
        if target is None:
            raise Forbidden(f"{identity!r} is not in the space")
        return target

    def _set_muted(self, p: Participant, muted: bool, *, by: str) -> None:
        if p.muted == muted:
            return
        p.muted = muted
        if muted:
            recorder = self.recorders.get(p.identity)
            if recorder is not None:
                recorder.pause()
        p.channel.send({"type": "muted", "muted": muted, "by": by})
        self._schedule_state()

    def _set_role(self, p: Participant, role: Role) -> None:
        if p.role is role:
            return
        p.role = role
        p.hand_raised = False
        if role.can_publish:
            self._assign_slot(p)
        else:
            self._release_slot(p)
        p.channel.send({"type": "role", "role": str(role)})
        self._spawn(p.negotiate())
        self._schedule_state()

    # --- room events ---------------------------------------------------------------

    def state_message(self) -> dict[str, Any]:
        people = list(self.participants.values())
        host = next((p.identity for p in people if p.role is Role.HOST), None)
        return {
            "type": "state",
            "host": host,
            "speakers": [
                {
                    "identity": p.identity,
                    "role": str(p.role),
                    "slot": p.slot.index if p.slot is not None else None,
                    "muted": p.muted,
                }
                for p in people
                if p.can_publish
            ],
            "hands": [p.identity for p in people if p.hand_raised and not p.can_publish],
            "listeners": sum(1 for p in people if not p.can_publish),
        }

    def _schedule_state(self) -> None:
        # Joins come in bursts; one state message per burst, not one per join.
        if self._state_pending or self.state != "open":
            return
        self._state_pending = True

        async def _send() -> None:
            await asyncio.sleep(STATE_DEBOUNCE)
            self._state_pending = False
            self.broadcast(self.state_message())

        self._spawn(_send())

    def broadcast(self, message: dict[str, Any]) -> None:
        for p in list(self.participants.values()):
            p.channel.send(message)

    def speaking_levels(self) -> dict[str, float]:
        now = time.monotonic()
        out = {}
        for p in self.participants.values():
            if p.slot is not None and not p.muted and now - p.level_at < LEVEL_TTL and p.level < SPEAKING_DBOV:
                # Three steps only: listeners need "who is talking", and a finer
                # level would mean a message to everyone several times a second.
                loudness = math.pow(10, -p.level / 20)
                out[p.identity] = 1.0 if loudness > 0.1 else 0.6 if loudness > 0.03 else 0.3
        return out

    async def _levels_loop(self) -> None:
        while True:
            await asyncio.sleep(LEVELS_INTERVAL)
            levels = self.speaking_levels()
            if levels != self._last_levels:
                self._last_levels = levels
                self.broadcast({"type": "speaking", "levels": levels})

    # --- housekeeping ----------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
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
            "state": self.state,
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
                {"track_id": r.track_id, "packets": r.packets, "dropped": r.dropped} for r in self.recorders.values()
            ],
        }


def _slug(identity: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", identity)[:40] or "speaker"
