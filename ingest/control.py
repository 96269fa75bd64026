"""What participants ask of a room over signaling, and the changes it makes.

Mute, raise a hand, take a name, promote and demote, remove, end the
space, choose to be recorded or not, set the recording policy: each
message is checked (who may ask what) and applied to the room's state; the
room tells everyone the new state.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ingest.exceptions import Forbidden, NameTaken, NotAgent, OutOfOrder
from ingest.participant import Participant
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
)
from spaces.tokens import Role

if TYPE_CHECKING:
    from ingest.room import Room


class Control:
    def __init__(self, room: Room) -> None:
        self.room = room

    async def handle(self, p: Participant, msg: ClientMessage) -> None:
        room = self.room
        if isinstance(msg, Answer):
            await p.on_answer(msg.rev, msg.sdp)
        elif isinstance(msg, Ping):
            p.channel.send({"type": "pong"})
        elif isinstance(msg, Hand):
            if msg.raised and msg.name is not None and not p.can_publish:
                # The name the listener would speak under; taken on promotion.
                p.hand_name = await self._reserve_name(p, msg.name)
            p.hand_raised = msg.raised
            room.announce.schedule_state()
        elif isinstance(msg, Name):
            name = await self._reserve_name(p, msg.name)
            if room.recording.has_track(p.identity):
                raise Forbidden("your voice is already recorded under your name; it cannot change now")
            self._rename(p, name)
        elif isinstance(msg, Mute):
            if msg.identity is None or msg.identity == p.identity:
                self._set_muted(p, msg.muted, by=p.identity)
            else:
                _require_host(p, "mute others")
                self._set_muted(self._target(msg.identity), msg.muted, by=p.identity)
        elif isinstance(msg, Promote):
            _require_host(p, "promote")
            target = self._target(msg.identity)
            if target.hand_name and not target.can_publish and not room.recording.has_track(target.identity):
                self._rename(target, target.hand_name)
            self.set_role(target, Role.SPEAKER)
        elif isinstance(msg, Demote):
            _require_host(p, "demote")
            target = self._target(msg.identity)
            if target.role is Role.HOST:
                raise Forbidden("the host cannot be demoted")
            self.set_role(target, Role.LISTENER)
        elif isinstance(msg, Remove):
            _require_host(p, "remove participants")
            self._remove(p, self._target(msg.identity))
        elif isinstance(msg, CaptionEvent):
            if p.role is not Role.AGENT:
                raise NotAgent("only the room agent may send captions")
            room.announce.broadcast({"type": "caption", **msg.caption.to_dict()})
        elif isinstance(msg, End):
            _require_host(p, "end the space")
            room.spawn(room.end(f"ended by {p.identity}"))
        elif isinstance(msg, Consent):
            self._set_recorded(p, msg.record)
        elif isinstance(msg, RecordingPolicy):
            _require_host(p, "set the recording policy")
            room.all_or_none = msg.all_or_none
            if room.all_or_none:
                for other in list(room.participants.values()):
                    if other.can_publish and not other.recorded and other.role is not Role.HOST:
                        self.set_role(other, Role.LISTENER)
            room.announce.schedule_state()
        elif isinstance(msg, Join):
            raise OutOfOrder("already joined")

    def _remove(self, host: Participant, target: Participant) -> None:
        room = self.room
        if target is host:
            raise Forbidden("the host cannot remove themselves; end the space instead")
        # The token and every name it used stay out; the API refuses the
        # holder's address new tokens for this space (catalog bans).
        room.names.ban(target.holder)
        room.spawn(
            asyncio.to_thread(
                room.catalog.ban, room.space_id, token_id=target.holder.token_id, address=target.address or None
            )
        )
        target.channel.send({"type": "error", "code": "removed", "message": "removed by the host"})
        target.channel.close(4409, "removed")
        room.participant_gone(target, reason="removed by the host")

    def _set_recorded(self, p: Participant, record: bool) -> None:
        """A publisher's choice (asked before their microphone goes live), noted in the room's events."""
        room = self.room
        if not record and room.all_or_none and p.can_publish:
            if p.role is Role.HOST:
                raise Forbidden("this space records everyone or no one; the host is recorded too")
            p.recorded = False
            self.set_role(p, Role.LISTENER)
            return
        p.recorded = record
        if p.publication is not None:
            p.publication.set_recording(record, room.recording.opener(p.identity))
        if p.can_publish:
            room.recording.note_consent(p.identity, room.room_time(), p.recorded)
        room.announce.schedule_state()

    def _target(self, identity: str) -> Participant:
        target = self.room.participants.get(identity)
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
        self.room.announce.schedule_state()

    def set_role(self, p: Participant, role: Role) -> None:
        if p.role is role:
            return
        room = self.room
        p.role = role
        p.holder.role = role
        p.hand_raised = False
        if role.can_publish:
            room.assign_slot(p)
        else:
            room.release_slot(p)
        p.channel.send({"type": "role", "role": str(role), "identity": p.identity})
        room.spawn(p.negotiate())
        room.announce.schedule_state()
        room.check_attended()

    async def _reserve_name(self, p: Participant, raw: str) -> str:
        """Check a name ``p`` asks for and bind it to ``p``'s token, here and in the catalog."""
        room = self.room
        return await room.names.reserve(
            p.holder, raw, claim=lambda key, token_id: room.catalog.claim_name(room.space_id, key, token_id)
        )

    def _rename(self, p: Participant, name: str) -> None:
        """``p`` goes by ``name`` from now on (nothing is recorded under its old one)."""
        room = self.room
        old = p.identity
        if old == name or room.participants.get(old) is not p:
            return
        if name in room.participants:
            raise NameTaken(f"{name!r} is already in the space")
        del room.participants[old]
        for slot in room.slots:
            slot.remove_sink(old)
        if p.slot is not None:
            p.slot.occupy(name)
        if p.publication is not None:
            p.publication.identity = name
        p.identity = name
        room.names.rename(p.holder, name)
        room.participants[name] = p
        room.participant_ready(p)
        p.channel.send({"type": "renamed", "identity": name})
        room.announce.schedule_state()


def _require_host(p: Participant, what: str) -> None:
    if p.role is not Role.HOST:
        raise Forbidden(f"only the host may {what}")
