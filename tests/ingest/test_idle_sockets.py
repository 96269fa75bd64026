"""Idle sockets cannot fill a room and lock the host out.

Sockets that join and never answer the offer (no media) used to count as
participants forever: with the cap reached, the host's rejoin got
``too_many`` and the host's recording stopped. Now the cap refuses only
listeners, the host and invited speakers always get in, and a participant
whose media is not connected ``sfu_setup_timeout`` seconds after joining is
dropped with ``setup_timeout`` (closed 4408), which frees the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from typing import Any

import websockets

from ingest.client import PcmTrack, SpaceClient
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.test_participant_cap import packets, until
from tests.support.sfu import VOICE_A, VOICE_B, make_space, rtc_url, running_sfu, speech48k, token

CAP = 3
SETUP_TIMEOUT = 4


class IdleSocket:
    """A client that joins, reads what it is sent, and never answers the offer."""

    def __init__(self, url: str, join_token: str) -> None:
        self.url = url
        self.token = join_token
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.done = asyncio.Event()

    async def run(self) -> None:
        try:
            async with websockets.connect(self.url) as ws:
                await ws.send(json.dumps({"type": "join", "token": self.token}))
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for raw in ws:
                        self.messages.append(json.loads(raw))
                self.close_code = ws.close_code
        finally:
            self.done.set()

    def codes(self) -> list[str]:
        return [m["code"] for m in self.messages if m["type"] == "error"]


def test_idle_sockets_never_lock_the_host_out(sfu_settings: Settings) -> None:
    settings = replace(sfu_settings, sfu_max_participants=CAP, sfu_setup_timeout=SETUP_TIMEOUT, sfu_empty_timeout=30)
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)
    host_token = token(settings, space_id, "alice", Role.HOST)

    async def scenario() -> None:
        async with running_sfu(settings) as running:
            alice = SpaceClient(url, host_token, track=PcmTrack(speech48k("Let us begin.", VOICE_A), loop=True))
            await alice.connect()
            await until(lambda: alice.state.get("host") == "alice")

            # Two idle sockets fill the room; a third is refused as one too many.
            idle = [IdleSocket(url, token(settings, space_id, f"idle-{i}", Role.LISTENER)) for i in range(3)]
            tasks = [asyncio.get_running_loop().create_task(s.run()) for s in idle[:2]]
            await until(lambda: all(any(m["type"] == "offer" for m in s.messages) for s in idle[:2]))
            await idle[2].run()
            assert idle[2].codes() == ["too_many"] and idle[2].close_code == 4429

            # The host's connection drops and comes back (same token): let in, though the room is full.
            await alice.close()
            alice = SpaceClient(url, host_token, track=PcmTrack(speech48k("We are back.", VOICE_A), loop=True))
            await alice.connect()
            assert alice.welcome is not None and not alice.errors, alice.errors
            # So is a speaker the host invited.
            bob_voice = PcmTrack(speech48k("Hi.", VOICE_B), loop=True)
            bob = SpaceClient(url, token(settings, space_id, "bob", Role.SPEAKER), track=bob_voice)
            await bob.connect()
            assert bob.welcome is not None and not bob.errors, bob.errors
            await until(lambda: packets(bob, "alice") > 25 and packets(alice, "bob") > 25)

            # The idle ones are dropped once their setup time is up, and say why.
            await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in idle[:2])), SETUP_TIMEOUT + 5)
            for s in idle[:2]:
                assert s.codes() == ["setup_timeout"], s.messages
                assert s.close_code == 4408
            room = running.sfu.rooms.rooms[space_id]
            assert sorted(room.participants) == ["alice", "bob"]

            # The room has places for real listeners again.
            lena = SpaceClient(url, token(settings, space_id, "lena", Role.LISTENER), decode=False)
            await lena.connect()
            await until(lambda: packets(lena, "alice") > 25 and packets(lena, "bob") > 25)
            # Connected participants are never dropped by the setup timer.
            await asyncio.sleep(SETUP_TIMEOUT + 0.5)
            assert not any(c.closed.is_set() for c in (alice, bob, lena))
            assert not any(c.errors for c in (alice, bob, lena))
            for t in tasks:
                await t
            for c in (alice, bob, lena):
                await c.close()

    asyncio.run(scenario())
