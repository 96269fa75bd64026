"""What everyone in a room is told about it: who is in it, in which role, and who is speaking.

The room's :class:`Announcer` sends it: the state once per burst of
changes, the speaking levels whenever they change.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ingest.participant import Participant
from ingest.publication import Publication
from spaces.models import SpaceState
from spaces.tokens import Role

if TYPE_CHECKING:
    from ingest.room import Room

#: Who-is-speaking: louder than this (dBov, RFC 6464) counts as talking.
SPEAKING_DBOV = 50
#: A level older than this no longer counts (the speaker stopped sending).
LEVEL_TTL = 0.5
#: Joins come in bursts: one state message per this many seconds of them, not one per join.
STATE_DEBOUNCE = 0.25


def speaking(pub: Publication, now: float) -> bool:
    """Whether the publisher is talking: unmuted, a fresh level, and loud enough (``now``: monotonic)."""
    return not pub.muted and now - pub.level_at < LEVEL_TTL and pub.level < SPEAKING_DBOV


def speaking_levels(participants: Iterable[Participant]) -> dict[str, float]:
    """How loud each speaker who is talking is, in three steps."""
    now = time.monotonic()
    out = {}
    for p in participants:
        pub = p.publication
        if pub is None or not speaking(pub, now):
            continue
        # Three steps only: listeners need "who is talking", and a finer
        # level would mean a message to everyone several times a second.
        loudness = math.pow(10, -pub.level / 20)
        out[p.identity] = 1.0 if loudness > 0.1 else 0.6 if loudness > 0.03 else 0.3
    return out


def state_message(participants: Iterable[Participant], *, all_or_none: bool) -> dict[str, Any]:
    """The room's ``state`` message: host, speakers, raised hands, listeners, the recording policy."""
    people = [p for p in participants if p.role is not Role.AGENT]  # the agent is never listed
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
        "recording": "all_or_none" if all_or_none else "each_speaker",
        "hands": [p.identity for p in people if p.hand_raised and not p.can_publish],
        # The names raised hands would speak under (the host sees who asks).
        "hand_names": {p.identity: p.hand_name for p in people if p.hand_raised and not p.can_publish and p.hand_name},
        "listeners": sum(1 for p in people if not p.can_publish),
    }


class Announcer:
    """Sends a room's news to everyone in it."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self._state_pending = False
        self._last_levels: dict[str, float] = {}

    def broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)  # once, not once per participant
        for p in list(self.room.participants.values()):
            p.channel.send(text)

    def schedule_state(self) -> None:
        """The state changed: everyone gets the new one shortly, once per burst of changes."""
        if self._state_pending or self.room.state is not SpaceState.LIVE:
            return
        self._state_pending = True

        async def _send() -> None:
            await asyncio.sleep(STATE_DEBOUNCE)
            self._state_pending = False
            self.broadcast(state_message(self.room.participants.values(), all_or_none=self.room.all_or_none))

        self.room.spawn(_send())

    async def levels_loop(self, interval: float) -> None:
        """Every ``interval`` s: who is speaking, to everyone when it changed; unrecorded speech noted."""
        room = self.room
        while True:
            await asyncio.sleep(interval)
            now, at = time.monotonic(), room.room_time()
            for p in room.participants.values():
                pub = p.publication
                if pub is not None and not pub.recording and speaking(pub, now):
                    # The transcript marks it as a gap: someone spoke who chose not to be recorded.
                    room.recording.note_unrecorded_speech(p.identity, at, interval)
            levels = speaking_levels(room.participants.values())
            if levels != self._last_levels:
                self._last_levels = levels
                self.broadcast({"type": "speaking", "levels": levels})
