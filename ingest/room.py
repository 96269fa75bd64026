"""A live room: who is in it, the forwarding slots, control, the end.

Room state and control live here; the packet path does not. Each speaker's
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
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.archive import SpaceArchive, mark_live, reopen
from ingest.exceptions import (
    Forbidden,
    ListenOnHls,
    NameTaken,
    NotAgent,
    OutOfOrder,
    SetupTimeout,
    SpaceEnded,
    TooMany,
)
from ingest.forward import Slot
from ingest.ice import CandidatePolicy
from ingest.membership import Names
from ingest.participant import Channel, Participant
from ingest.publication import Publication
from ingest.recorder import RecorderOptions, TrackRecorder
from ingest.signaling import (
    Answer,
    CaptionEvent,
    ClientMessage,
    Consent,
    Demote,
    End,
    Hand,
    Join,
    Mute,
    Name,
    Ping,
    Promote,
    RecordingPolicy,
    Remove,
    error,
)
from ingest.spool import RoomRecord, SpaceSpool
from ingest.writer import ThreadWriter
from spaces import layout
from spaces.catalog import Catalog
from spaces.exceptions import NotFound
from spaces.models import Space, SpaceState
from spaces.tokens import Claims, Role

log = logging.getLogger(__name__)

#: Speech of an unrecorded speaker closer than this to their previous stretch joins it.
UNRECORDED_JOIN = 1.5

#: Who-is-speaking: louder than this (dBov, RFC 6464) counts as talking.
SPEAKING_DBOV = 50
#: A level older than this no longer counts (the speaker stopped sending).
LEVEL_TTL = 0.5
LEVELS_INTERVAL = 0.25
STATE_DEBOUNCE = 0.25


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
            self.record = replace(resume, phase=SpaceState.LIVE)
        self.participants: dict[str, Participant] = {}
        self.slots: list[Slot] = []
        self.recorders: dict[str, TrackRecorder] = {}
        self.writer = ThreadWriter(f"spool-{space.space_id}")
        self.names = Names()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._empty_timer: asyncio.TimerHandle | None = None
        self._state_pending = False
        self._last_levels: dict[str, float] = {}
        self._levels_task: asyncio.Task[None] | None = None
        self._deletion_task: asyncio.Task[None] | None = None
        self.all_or_none = False
        """The host's policy: everyone who speaks is recorded, or listens (declining = listening)."""
        #: Per unrecorded speaker, [start, end] stretches of speech on the room clock.
        self._unrecorded: dict[str, list[list[float]]] = {}

    # --- life cycle --------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.spool.write_room, self.record)
        await asyncio.to_thread(mark_live, self.catalog, self.space_id)
        self._spawn(self.archive.put_manifest(self.record, ended_at=None, partial=False))
        self._levels_task = asyncio.get_running_loop().create_task(self._levels_loop())
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
        self.state = SpaceState.ENDED
        log.info("room %s ending: %s", self.space_id, reason, extra={"space_id": self.space_id})
        if self._empty_timer is not None:
            self._empty_timer.cancel()
        if self._levels_task is not None:
            self._levels_task.cancel()
        if self._deletion_task is not None and self._deletion_task is not asyncio.current_task():
            self._deletion_task.cancel()
        people = await self._dismiss_everyone(reason)
        for p in people:
            if p.publication is not None:
                p.publication.stop()
        for recorder in self.recorders.values():
            recorder.close()
        if deleted:
            await self.writer.close()
            await self.archive.abandon()
            await asyncio.to_thread(self.spool.remove)
            self.state = SpaceState.DELETING
            self._on_closed(self)
            return
        self.record = replace(self.record, phase=SpaceState.ENDED, unrecorded=self._unrecorded_events())
        self.writer.submit(self.spool.write_room, self.record)
        # Every segment closed and synced, room.json saying so, before the hand-over reads the spool.
        await self.writer.close()
        try:
            await self.archive.finish(self.record, partial=False)
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
            self.options.empty_timeout, lambda: self._spawn(self._end_if_unattended())
        )

    def _check_attended(self) -> None:
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
        if not self.record.tracks:
            await self.abandon(reason)
        else:
            await self.end(reason)

    async def abandon(self, reason: str = "everyone left") -> None:
        """Nobody ever spoke and the speakers left: forget the room, the space is not over."""
        if self.state is not SpaceState.LIVE:
            return
        self.state = SpaceState.CREATED
        if self._levels_task is not None:
            self._levels_task.cancel()
        if self._deletion_task is not None and self._deletion_task is not asyncio.current_task():
            self._deletion_task.cancel()
        await self._dismiss_everyone(reason)
        await self.writer.close()
        await asyncio.to_thread(self.spool.remove)
        await asyncio.to_thread(reopen, self.catalog, self.space_id)
        log.info("room %s closed with nothing recorded", self.space_id, extra={"space_id": self.space_id})
        self._on_closed(self)

    async def _dismiss_everyone(self, reason: str) -> list[Participant]:
        """Tell everyone the space ended, close their sockets and connections; who they were."""
        people = list(self.participants.values())
        self.participants.clear()
        for p in people:
            p.channel.send({"type": "ended", "reason": reason})
            p.channel.close(1000, "space ended")
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
            self._note_consent(p)
        self._check_attended()
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
            self._assign_slot(p)
        self._spawn(p.negotiate())
        self._schedule_state()
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
        self._check_attended()
        if p.role is Role.AGENT and reason != "replaced":
            self._call_agent()  # the agent died or lost its connection: another one takes over

    def _call_agent(self) -> None:
        if self._summon_agent is None or self.state is not SpaceState.LIVE:
            return
        self._agent_attempts += 1
        self._spawn(self._summon_agent(self.space_id, self._agent_attempts))

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
        publication = Publication(
            p.identity, slot, open_recorder=self._opener(p) if p.recorded else None, clock=self.room_time
        )
        publication.muted = p.muted
        p.publication = publication

    def _release_slot(self, p: Participant) -> None:
        if p.slot is None:
            return
        if p.publication is not None:
            p.publication.stop()
            p.publication = None
        p.slot.vacate()
        p.slot = None

    # --- recording -----------------------------------------------------------------

    def _recorder_for(self, identity: str) -> TrackRecorder:
        """A speaker's one track, opened at their first packet and kept across leave and rejoin."""
        recorder = self.recorders.get(identity)
        if recorder is not None:
            return recorder
        track_id = layout.track_id(len(self.record.tracks), identity)
        self.record = self.record.with_track(track_id, identity)
        self.writer.submit(self.spool.write_room, self.record)
        recorder = TrackRecorder(
            self.spool,
            track_id=track_id,
            speaker=identity,
            options=self.options.recorder,
            on_closed=self.archive.segment_closed,
            writer=self.writer,
        )
        self.recorders[identity] = recorder
        speakers = tuple(s for _, s in self.record.tracks)
        self._spawn(asyncio.to_thread(mark_live, self.catalog, self.space_id, speakers=speakers))
        log.info("recording %s as track %s", identity, track_id, extra={"space_id": self.space_id})
        return recorder

    # --- control -----------------------------------------------------------------

    async def handle(self, p: Participant, msg: ClientMessage) -> None:
        if isinstance(msg, Answer):
            await p.on_answer(msg.rev, msg.sdp)
        elif isinstance(msg, Ping):
            p.channel.send({"type": "pong"})
        elif isinstance(msg, Hand):
            if msg.raised and msg.name is not None and not p.can_publish:
                # The name the listener would speak under; taken on promotion.
                p.hand_name = await self._reserve_name(p, msg.name)
            p.hand_raised = msg.raised
            self._schedule_state()
        elif isinstance(msg, Name):
            name = await self._reserve_name(p, msg.name)
            if self._has_track(p.identity):
                raise Forbidden("your voice is already recorded under your name; it cannot change now")
            self._rename(p, name)
        elif isinstance(msg, Mute):
            if msg.identity is None or msg.identity == p.identity:
                self._set_muted(p, msg.muted, by=p.identity)
            else:
                self._require_host(p, "mute others")
                self._set_muted(self._target(msg.identity), msg.muted, by=p.identity)
        elif isinstance(msg, Promote):
            self._require_host(p, "promote")
            target = self._target(msg.identity)
            if target.hand_name and not target.can_publish and not self._has_track(target.identity):
                self._rename(target, target.hand_name)
            self._set_role(target, Role.SPEAKER)
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
            # The token and every name it used stay out; the API refuses the
            # holder's address new tokens for this space (catalog bans).
            self.names.ban(target.holder)
            self._spawn(
                asyncio.to_thread(
                    self.catalog.ban, self.space_id, token_id=target.holder.token_id, address=target.address or None
                )
            )
            target.channel.send({"type": "error", "code": "removed", "message": "removed by the host"})
            target.channel.close(4409, "removed")
            self.participant_gone(target, reason="removed by the host")
        elif isinstance(msg, CaptionEvent):
            if p.role is not Role.AGENT:
                raise NotAgent("only the room agent may send captions")
            self.broadcast({"type": "caption", **msg.caption.to_dict()})
        elif isinstance(msg, End):
            self._require_host(p, "end the space")
            self._spawn(self.end(f"ended by {p.identity}"))
        elif isinstance(msg, Consent):
            self._set_recorded(p, msg.record)
        elif isinstance(msg, RecordingPolicy):
            self._require_host(p, "set the recording policy")
            self.all_or_none = msg.all_or_none
            if self.all_or_none:
                for other in list(self.participants.values()):
                    if other.can_publish and not other.recorded and other.role is not Role.HOST:
                        self._set_role(other, Role.LISTENER)
            self._schedule_state()
        elif isinstance(msg, Join):
            raise OutOfOrder("already joined")

    def _opener(self, p: Participant) -> Callable[[], TrackRecorder]:
        return lambda: self._recorder_for(p.identity)

    def _set_recorded(self, p: Participant, record: bool) -> None:
        """A publisher's choice (asked before their microphone goes live), noted in the room's events."""
        if not record and self.all_or_none and p.can_publish:
            if p.role is Role.HOST:
                raise Forbidden("this space records everyone or no one; the host is recorded too")
            p.recorded = False
            self._set_role(p, Role.LISTENER)
            return
        p.recorded = record
        if p.publication is not None:
            p.publication.set_recording(record, self._opener(p))
        if p.can_publish:
            self._note_consent(p)
        self._schedule_state()

    def _note_consent(self, p: Participant) -> None:
        self.record = replace(
            self.record, consents=(*self.record.consents, (p.identity, round(self.room_time(), 3), p.recorded))
        )
        self.writer.submit(self.spool.write_room, self.record)

    def _track_unrecorded(self) -> None:
        """Extend the speech stretches of speakers who are not recorded (the transcript's marked gaps)."""
        now = self.room_time()
        fresh = time.monotonic() - LEVEL_TTL
        for p in self.participants.values():
            pub = p.publication
            if pub is None or pub.recording or pub.muted or pub.level_at < fresh or pub.level >= SPEAKING_DBOV:
                continue
            stretches = self._unrecorded.setdefault(p.identity, [])
            if stretches and now - stretches[-1][1] <= UNRECORDED_JOIN:
                stretches[-1][1] = now
            else:
                stretches.append([max(0.0, now - LEVELS_INTERVAL), now])

    def _unrecorded_events(self) -> tuple[tuple[str, float, float], ...]:
        return tuple(
            sorted(
                ((who, round(a, 3), round(b, 3)) for who, spans in self._unrecorded.items() for a, b in spans),
                key=lambda u: (u[1], u[0]),
            )
        )

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
        if p.publication is not None:
            p.publication.set_muted(muted)
        p.channel.send({"type": "muted", "muted": muted, "by": by})
        self._schedule_state()

    def _set_role(self, p: Participant, role: Role) -> None:
        if p.role is role:
            return
        p.role = role
        p.holder.role = role
        p.hand_raised = False
        if role.can_publish:
            self._assign_slot(p)
        else:
            self._release_slot(p)
        p.channel.send({"type": "role", "role": str(role), "identity": p.identity})
        self._spawn(p.negotiate())
        self._schedule_state()
        self._check_attended()

    # --- names -------------------------------------------------------------------

    async def _reserve_name(self, p: Participant, raw: str) -> str:
        """Check a name ``p`` asks for and bind it to ``p``'s token, here and in the catalog."""
        return await self.names.reserve(
            p.holder, raw, claim=lambda key, token_id: self.catalog.claim_name(self.space_id, key, token_id)
        )

    def _has_track(self, identity: str) -> bool:
        return any(speaker == identity for _, speaker in self.record.tracks)

    def _rename(self, p: Participant, name: str) -> None:
        """``p`` goes by ``name`` from now on (nothing is recorded under its old one)."""
        old = p.identity
        if old == name or self.participants.get(old) is not p:
            return
        if name in self.participants:
            raise NameTaken(f"{name!r} is already in the space")
        del self.participants[old]
        for slot in self.slots:
            slot.remove_sink(old)
        if p.slot is not None:
            p.slot.occupy(name)
        if p.publication is not None:
            p.publication.identity = name
        p.identity = name
        self.names.rename(p.holder, name)
        self.participants[name] = p
        self.participant_ready(p)
        p.channel.send({"type": "renamed", "identity": name})
        self._schedule_state()

    # --- room events ---------------------------------------------------------------

    def state_message(self) -> dict[str, Any]:
        people = [p for p in self.participants.values() if p.role is not Role.AGENT]  # the agent is never listed
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
                    "recorded": p.recorded,
                }
                for p in people
                if p.can_publish
            ],
            # Who speaks without being recorded, for everyone to see; and the host's policy.
            "not_recorded": [p.identity for p in people if p.can_publish and not p.recorded],
            "recording": "all_or_none" if self.all_or_none else "each_speaker",
            "hands": [p.identity for p in people if p.hand_raised and not p.can_publish],
            # The names raised hands would speak under (the host sees who asks).
            "hand_names": {
                p.identity: p.hand_name for p in people if p.hand_raised and not p.can_publish and p.hand_name
            },
            "listeners": sum(1 for p in people if not p.can_publish),
        }

    def _schedule_state(self) -> None:
        # Joins come in bursts; one state message per burst, not one per join.
        if self._state_pending or self.state is not SpaceState.LIVE:
            return
        self._state_pending = True

        async def _send() -> None:
            await asyncio.sleep(STATE_DEBOUNCE)
            self._state_pending = False
            self.broadcast(self.state_message())

        self._spawn(_send())

    def broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)  # once, not once per participant
        for p in list(self.participants.values()):
            p.channel.send(text)

    def speaking_levels(self) -> dict[str, float]:
        now = time.monotonic()
        out = {}
        for p in self.participants.values():
            pub = p.publication
            if pub is None or pub.muted or now - pub.level_at >= LEVEL_TTL or pub.level >= SPEAKING_DBOV:
                continue
            # Three steps only: listeners need "who is talking", and a finer
            # level would mean a message to everyone several times a second.
            loudness = math.pow(10, -pub.level / 20)
            out[p.identity] = 1.0 if loudness > 0.1 else 0.6 if loudness > 0.03 else 0.3
        return out

    async def _levels_loop(self) -> None:
        while True:
            await asyncio.sleep(LEVELS_INTERVAL)
            self._track_unrecorded()
            levels = self.speaking_levels()
            if levels != self._last_levels:
                self._last_levels = levels
                self.broadcast({"type": "speaking", "levels": levels})

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
                {"track_id": r.track_id, "packets": r.packets, "dropped": r.dropped} for r in self.recorders.values()
            ],
        }
