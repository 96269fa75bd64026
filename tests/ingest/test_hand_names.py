"""A promoted listener speaks under the name they chose, not "listener-d0bda1".

A listener's hand may carry the name they would speak under; the host sees
it next to the hand, and on promotion the listener takes it: their track,
and so the transcript, carries that name. A name is checked like any other
(one holder per name: not the host's, not one the API handed out) and
reserved when the hand goes up. A listener invited without raising a hand
(or an invited speaker) may still choose a name before anything of theirs
is recorded; not after.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from ingest.client import PcmTrack, SpaceClient
from spaces import layout
from spaces.blobstore import open_blob_store
from spaces.models import SpaceState
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.test_participant_cap import packets, until
from tests.support.sfu import VOICE_A, VOICE_B, get_space, make_space, rtc_url, running_sfu, speech48k, token


def codes(client: SpaceClient) -> list[str]:
    return [str(e["code"]) for e in client.errors]


def test_a_promoted_listener_speaks_under_the_name_they_chose(sfu_settings: Settings) -> None:
    settings = replace(sfu_settings, sfu_empty_timeout=1)
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)

    def client(identity: str, role: Role, text: str | None = None, voice: str = VOICE_B) -> SpaceClient:
        track = PcmTrack(speech48k(text, voice), loop=True) if text else None
        return SpaceClient(url, token(settings, space_id, identity, role), track=track, decode=False)

    async def scenario() -> None:
        async with running_sfu(settings):
            alice = client("alice", Role.HOST, "Welcome everyone.", VOICE_A)
            guest = client("listener-d0bda1", Role.LISTENER, "Thank you for having me.")
            shy = client("listener-5e11a0", Role.LISTENER, "Hello from the back row.")
            for c in (alice, guest, shy):
                await c.connect()

            # Not a name someone else holds, nor an invalid one: said, and the socket stays.
            await guest.send({"type": "hand", "raised": True, "name": "Alice"})
            await guest.send({"type": "hand", "raised": True, "name": "Carol\u2028Smith"})
            await guest.wait_for(lambda c: len(c.errors) == 2)
            assert codes(guest) == ["identity_taken", "bad_message"], guest.errors
            await until(lambda: alice.state.get("listeners") == 2)
            assert alice.state.get("hands") == []

            await guest.send({"type": "hand", "raised": True, "name": "  Carol Smith "})
            await until(lambda: alice.state.get("hand_names") == {"listener-d0bda1": "Carol Smith"})
            # Reserved for her: another listener cannot take it meanwhile.
            await shy.send({"type": "hand", "raised": True, "name": "carol smith"})
            await shy.wait_for(lambda c: bool(c.errors))
            assert codes(shy) == ["identity_taken"]

            await alice.send({"type": "promote", "identity": "listener-d0bda1"})
            await guest.wait_for(lambda c: any(m["type"] == "role" for m in c.messages))
            role = next(m for m in guest.messages if m["type"] == "role")
            assert (role["role"], role["identity"]) == ("speaker", "Carol Smith")
            assert {"type": "renamed", "identity": "Carol Smith"} in guest.messages
            await until(lambda: packets(alice, "Carol Smith") > 25)

            # Invited without a hand: a name before speaking (the page asks before the microphone)...
            await alice.send({"type": "promote", "identity": "listener-5e11a0"})
            await shy.wait_for(lambda c: any(m["type"] == "role" for m in c.messages))
            # ...but once recorded under one name, it stays.
            await until(lambda: packets(alice, "listener-5e11a0") > 25)
            await shy.send({"type": "name", "name": "Dan"})
            await shy.wait_for(lambda c: len(c.errors) == 2)
            assert codes(shy) == ["identity_taken", "forbidden"], shy.errors

            await alice.send({"type": "end"})
            for c in (alice, guest, shy):
                await c.wait_for(lambda c: c.closed.is_set())
                await c.close()
            await until(lambda: get_space(settings, space_id).state is SpaceState.RECORDED)

    asyncio.run(scenario())
    tracks = sorted(s for _, s in layout.read_manifest(open_blob_store(settings), space_id).tracks)
    assert tracks == ["Carol Smith", "alice", "listener-5e11a0"]


def test_an_invited_speaker_picks_a_name_before_speaking(sfu_settings: Settings) -> None:
    space_id = make_space(sfu_settings)
    url = rtc_url(sfu_settings, space_id)

    async def scenario() -> None:
        async with running_sfu(sfu_settings) as running:
            alice = SpaceClient(url, token(sfu_settings, space_id, "alice", Role.HOST), decode=False)
            await alice.connect()
            guest = SpaceClient(url, token(sfu_settings, space_id, "speaker-1", Role.SPEAKER), decode=False)
            await guest.connect()
            await guest.send({"type": "name", "name": "Erin"})
            await guest.wait_for(lambda c: {"type": "renamed", "identity": "Erin"} in c.messages)
            await until(lambda: any(s["identity"] == "Erin" for s in alice.state.get("speakers", [])))
            room = running.sfu.rooms.rooms[space_id]
            assert sorted(room.participants) == ["Erin", "alice"]
            # Her token brings her back as Erin.
            again = SpaceClient(url, guest.token, decode=False)
            await again.connect()
            assert again.welcome is not None and again.welcome["identity"] == "Erin"
            for c in (alice, guest, again):
                await c.close()

    asyncio.run(scenario())
