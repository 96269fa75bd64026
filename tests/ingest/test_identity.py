"""A name in a room belongs to one holder: the token that first used it.

Anyone can get a listener token for a public space, so neither the API nor
the SFU may let a second token take a name that is in use: not the host's,
not a speaker's, not a listener's whose hand is up, and not one the host
promoted (the SFU compares with the role the holder has *now*). The holder
itself reconnects with its own token and gets its current role back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.client import PcmTrack, SpaceClient
from replay_api.app import create_app
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.hearing import hears
from tests.support.sfu import VOICE_A, VOICE_B, make_space, rtc_url, running_sfu, speech48k, token


async def refused(client: SpaceClient) -> str:
    """Join with ``client`` and return the error code it is closed with."""
    await client.connect()
    await asyncio.wait_for(client.closed.wait(), 5)
    await client.close()
    assert client.errors, client.messages
    return str(client.errors[0]["code"])


@pytest.fixture
def api(sfu_settings: Settings) -> Iterator[TestClient]:
    """The API on the same catalog as the SFU (its rtc_url points at the test SFU)."""
    with TestClient(create_app(sfu_settings)) as client:
        yield client


def test_a_listener_cannot_take_the_hosts_name(sfu_settings: Settings) -> None:
    asyncio.run(host_scenario(sfu_settings))


async def host_scenario(settings: Settings) -> None:
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)

    def client(identity: str, role: Role, **kwargs: Any) -> SpaceClient:
        return SpaceClient(url, token(settings, space_id, identity, role), **kwargs)

    async with running_sfu(settings):
        alice = client("alice", Role.HOST, track=PcmTrack(speech48k("Let us begin.", VOICE_A), loop=True))
        lena = client("lena", Role.LISTENER)
        await alice.connect()
        await lena.connect()
        await hears(lena, "alice")

        assert await refused(client("alice", Role.LISTENER)) == "identity_taken"
        # Another token, even of the same role, is not the holder either.
        assert await refused(client("lena", Role.LISTENER)) == "identity_taken"
        assert await refused(client("LENA", Role.LISTENER)) == "identity_taken"
        # alice is still the one in the room, still heard.
        assert not alice.closed.is_set() and not lena.closed.is_set()
        await hears(lena, "alice")

        # A reconnect with the holder's own token takes the name over (the old connection is told why).
        lena_again = SpaceClient(url, lena.token)
        await lena_again.connect()
        await asyncio.wait_for(lena.closed.wait(), 5)
        assert lena.errors and lena.errors[-1]["code"] == "replaced", lena.errors
        await hears(lena_again, "alice")

        for c in (alice, lena, lena_again):
            await c.close()


def test_nobody_takes_a_promoted_speakers_place(sfu_settings: Settings, api: TestClient) -> None:
    """The issue's attack: carol raises her hand, is promoted; an anonymous token for "carol" gets nowhere."""

    async def scenario() -> None:
        # The SFU first: the API places new spaces on the live nodes it registered.
        async with running_sfu(sfu_settings):
            created = api.post("/spaces", json={"title": "Names", "host": "alice"}).json()
            space_id, url = str(created["space_id"]), str(created["rtc_url"])
            tokens_url = f"/spaces/{space_id}/tokens"
            carol_info = api.post(tokens_url, json={"role": "listener", "identity": "carol"})
            assert carol_info.status_code == 200, carol_info.text
            lena_info = api.post(tokens_url, json={"role": "listener"}).json()

            def take_carol() -> list[int]:
                """The attacker asks the API for carol's name, as anyone may ask."""
                return [
                    api.post(tokens_url, json={"role": "listener", "identity": n}).status_code
                    for n in ("carol", "Carol")
                ]

            alice = SpaceClient(url, str(created["token"]), track=PcmTrack(speech48k("Welcome.", VOICE_A), loop=True))
            carol = SpaceClient(
                url,
                carol_info.json()["token"],
                track=PcmTrack(speech48k("Thank you for having me.", VOICE_B), loop=True),
            )
            lena = SpaceClient(url, lena_info["token"])
            for c in (alice, carol, lena):
                await c.connect()

            # Hand up: the name is carol's, at the API and in the room.
            await carol.send({"type": "hand", "raised": True})
            await alice.wait_for(lambda c: c.state.get("hands") == ["carol"])
            assert take_carol() == [409, 409]
            forged = SpaceClient(url, token(sfu_settings, space_id, "carol", Role.LISTENER))
            assert await refused(forged) == "identity_taken"
            assert not carol.closed.is_set()

            # Promoted: the promotion lands on carol, and her voice is heard as carol's.
            await alice.send({"type": "promote", "identity": "carol"})
            await carol.wait_for(lambda c: any(m["type"] == "role" and m["role"] == "speaker" for m in c.messages))
            await hears(lena, "carol", 60)

            # Now a speaker: no listener token takes the name, nor another speaker token
            # (her current role is what counts, not the listener token she joined with).
            assert take_carol() == [409, 409]
            assert await refused(SpaceClient(url, token(sfu_settings, space_id, "carol", Role.LISTENER))) == (
                "identity_taken"
            )
            assert await refused(SpaceClient(url, token(sfu_settings, space_id, "carol", Role.SPEAKER))) == (
                "identity_taken"
            )
            assert not carol.closed.is_set() and not carol.errors, carol.errors
            await hears(lena, "carol")

            # carol reconnects with her own token: still carol, still a speaker.
            carol_again = SpaceClient(url, carol.token, track=PcmTrack(speech48k("I am back.", VOICE_B), loop=True))
            await carol_again.connect()
            await asyncio.wait_for(carol.closed.wait(), 5)
            assert carol_again.welcome is not None
            assert (carol_again.welcome["identity"], carol_again.welcome["role"]) == ("carol", "speaker")
            await lena.wait_for(lambda c: c.slot_of("carol") is not None)
            await hears(lena, "carol", 60)

            for c in (alice, carol, carol_again, lena):
                await c.close()

    asyncio.run(scenario())
