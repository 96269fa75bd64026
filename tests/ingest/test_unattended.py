"""A room whose host and speakers have all left ends, even with listeners in it.

Listeners alone used to keep a room live forever. Now, ``sfu_empty_timeout``
after the last host or speaker left, the room ends like an empty one: the
listeners get ``{"type": "ended", "reason": ...}`` and are closed, and what
was recorded is handed over. A room where nobody spoke is closed the same
way, and its space is not over (it can be joined again).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from ingest.client import PcmTrack, SpaceClient
from spaces.catalog import open_catalog
from spaces.models import SpaceState
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.test_identity import refused
from tests.ingest.test_participant_cap import packets, until
from tests.support.sfu import VOICE_A, get_space, make_space, rtc_url, running_sfu, speech48k, token

EMPTY_TIMEOUT = 2


def ended(client: SpaceClient) -> list[str]:
    return [str(m["reason"]) for m in client.messages if m["type"] == "ended"]


def test_listeners_alone_do_not_keep_a_room_live(sfu_settings: Settings) -> None:
    settings = replace(sfu_settings, sfu_empty_timeout=EMPTY_TIMEOUT)
    spoken, silent = make_space(settings, title="Spoken"), make_space(settings, title="Silent")

    def client(space_id: str, identity: str, role: Role, **kwargs: object) -> SpaceClient:
        return SpaceClient(rtc_url(settings, space_id), token(settings, space_id, identity, role), **kwargs)  # type: ignore[arg-type]

    async def scenario() -> None:
        async with running_sfu(settings):
            alice = client(spoken, "alice", Role.HOST, track=PcmTrack(speech48k("Good evening.", VOICE_A), loop=True))
            bob = client(spoken, "bob", Role.SPEAKER, track=PcmTrack(speech48k("Hello.", VOICE_A), loop=True))
            lena, lou = client(spoken, "lena", Role.LISTENER, decode=False), client(silent, "lou", Role.LISTENER)
            carl = client(silent, "carl", Role.HOST)
            for c in (alice, bob, lena, carl, lou):
                await c.connect()
            await until(lambda: packets(lena, "alice") > 25 and packets(lena, "bob") > 25)

            # The host leaves; a speaker is still there: the room goes on past the timeout.
            await alice.close()
            await asyncio.sleep(EMPTY_TIMEOUT + 1.0)
            assert not ended(lena) and not lena.closed.is_set()
            # The last speaker leaves (and the silent room's host): the listeners are told, and closed.
            await bob.close()
            await carl.close()
            left = time.monotonic()
            await asyncio.wait_for(asyncio.gather(lena.closed.wait(), lou.closed.wait()), EMPTY_TIMEOUT + 10)
            assert time.monotonic() - left >= EMPTY_TIMEOUT - 0.1
            assert ended(lena) == ["the host and speakers left"]
            assert ended(lou) == ["the host and speakers left"]
            for c in (lena, lou):
                await c.close()
            await until(lambda: get_space(settings, spoken).state is SpaceState.RECORDED)
            # Nobody spoke in the silent one: closed, but the space is not over (its
            # catalog row goes back a moment after the room closes, off the event loop).
            await until(lambda: get_space(settings, silent).state is SpaceState.CREATED)

    asyncio.run(scenario())


def test_the_sfu_does_not_open_a_space_nobody_joined_in_time(sfu_settings: Settings) -> None:
    settings = replace(sfu_settings, space_join_timeout=600)
    space_id = make_space(settings)
    catalog = open_catalog(settings)
    old = catalog.get_space(space_id)
    catalog.put_space(replace(old, created_at=old.created_at - 660))
    catalog.close()

    async def scenario() -> None:
        async with running_sfu(settings):
            host = SpaceClient(rtc_url(settings, space_id), token(settings, space_id, "alice", Role.HOST))
            assert await refused(host) == "ended"
            assert "nobody joined" in host.errors[0]["message"]

    asyncio.run(scenario())
    assert get_space(settings, space_id).state is SpaceState.EMPTY
