"""A join with a name already in the room: a reconnect may take it over, a lesser token may not.

Anyone can get a listener token for a public space with any name; joining
with the host's or a speaker's name must not throw them out of the room.
"""

from __future__ import annotations

import asyncio

from ingest.client import PcmTrack, SpaceClient
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.conftest import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token


async def packets_from(listener: SpaceClient, identity: str, seconds: float = 1.0) -> int:
    """Packets ``listener`` gets from ``identity`` over ``seconds``."""

    def count() -> int:
        slot = listener.slot_of(identity)
        return listener.received[slot].packets if slot is not None and slot in listener.received else 0

    before = count()
    await asyncio.sleep(seconds)
    return count() - before


def test_a_listener_cannot_take_the_hosts_name(sfu_settings: Settings) -> None:
    asyncio.run(scenario(sfu_settings))


async def scenario(settings: Settings) -> None:
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)

    def client(identity: str, role: Role, **kwargs: object) -> SpaceClient:
        return SpaceClient(url, token(settings, space_id, identity, role), **kwargs)  # type: ignore[arg-type]

    async with running_sfu(settings):
        alice = client("alice", Role.HOST, track=PcmTrack(speech48k("Let us begin.", VOICE_A), loop=True))
        lena = client("lena", Role.LISTENER)
        await alice.connect()
        await lena.connect()
        await asyncio.sleep(1.0)
        assert await packets_from(lena, "alice") >= 40

        impostor = client("alice", Role.LISTENER)
        await impostor.connect()
        await asyncio.wait_for(impostor.closed.wait(), 5)
        assert impostor.errors and impostor.errors[0]["code"] == "identity_taken", impostor.errors
        await impostor.close()
        # alice is still the one in the room, still heard.
        assert not alice.closed.is_set()
        assert await packets_from(lena, "alice") >= 40

        # A reconnect with the same role takes the name over (the old connection is told why).
        lena_again = client("lena", Role.LISTENER)
        await lena_again.connect()
        await asyncio.wait_for(lena.closed.wait(), 5)
        assert lena.errors and lena.errors[-1]["code"] == "replaced", lena.errors
        await asyncio.sleep(1.0)
        assert await packets_from(lena_again, "alice") >= 40

        for c in (alice, lena, lena_again):
            await c.close()
