"""Room life, one behaviour per test, with real peers.

A listener who was there first hears a speaker who joins later
(server-driven renegotiation) and a listener the host promotes; the host
mutes and removes; a speaker who leaves and comes back keeps one track
whose timeline has the gap; when everyone has gone the space ends by itself
and is recorded.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from ingest.client import PcmTrack, SpaceClient
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.models import Manifest, SpaceState, Track
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.audio import locate, low
from tests.ingest.hearing import PACKETS_PER_SECOND, hears, packets
from tests.support.sfu import (
    VOICE_A,
    VOICE_B,
    get_space,
    make_space,
    rtc_url,
    running_sfu,
    speech48k,
    token,
)


@pytest.fixture
def settings(sfu_settings: Settings) -> Settings:
    # Short, so the tests that wait for the space to end on its own wait 2 s.
    return replace(sfu_settings, sfu_empty_timeout=2)


class Room:
    """One space of ``settings`` and the clients in it, each with a token of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.space_id = make_space(settings)
        self.url = rtc_url(settings, self.space_id)
        self.clients: list[SpaceClient] = []

    @asynccontextmanager
    async def live(self) -> AsyncIterator[Room]:
        """The SFU running, and every client gone at the end."""
        async with running_sfu(self.settings):
            try:
                yield self
            finally:
                await self.leave()

    async def join(
        self,
        identity: str,
        role: Role,
        speech: npt.NDArray[np.int16] | None = None,
        *,
        loop: bool = False,
        token_of: SpaceClient | None = None,
    ) -> SpaceClient:
        """A client in the room; ``token_of`` rejoins with that client's token (its name is that token's)."""
        audio = PcmTrack(speech, loop=loop) if speech is not None else None
        credential = token_of.token if token_of else token(self.settings, self.space_id, identity, role)
        client = SpaceClient(self.url, credential, track=audio)
        self.clients.append(client)
        await client.connect()
        return client

    async def leave(self) -> None:
        for client in self.clients:
            await client.close()

    async def recorded(self) -> Manifest:
        """Wait for the space to end on its own (nobody left in it) and be recorded; its manifest."""
        await until(lambda: get_space(self.settings, self.space_id).state is SpaceState.RECORDED, timeout=10)
        blobs = open_blob_store(self.settings)
        return Manifest.from_dict(json.loads(blobs.get(keys.manifest(self.space_id))))


async def until(condition: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def host_speech() -> npt.NDArray[np.int16]:
    return speech48k("Let us start with the budget.", VOICE_A)


BOB_SAYS = "Our team finished the project two weeks ahead of schedule."


def test_a_speaker_who_joins_later_is_heard_by_a_listener_already_there(settings: Settings) -> None:
    room = Room(settings)
    speech_b = speech48k(BOB_SAYS, VOICE_B, lead=0.3)

    async def scenario() -> None:
        async with room.live():
            listener = await room.join("lena", Role.LISTENER)
            await room.join("alice", Role.HOST, host_speech(), loop=True)
            await hears(listener, "alice", 25)
            await room.join("bob", Role.SPEAKER, speech_b)
            # All of bob's speech (his track goes on with silence after it).
            await hears(listener, "bob", -(-len(speech_b) * PACKETS_PER_SECOND // 48000) + 5)
            assert listener.answered_rev >= 2, "no renegotiation happened"
            heard = listener.received[listener.slot_of("bob") or 0].audio()
            assert locate(low(heard), low(speech_b)).score > 0.6

    asyncio.run(scenario())


def test_a_listener_the_host_promotes_is_heard(settings: Settings) -> None:
    room = Room(settings)

    async def scenario() -> None:
        async with room.live():
            listener = await room.join("lena", Role.LISTENER)
            host = await room.join("alice", Role.HOST, host_speech(), loop=True)
            carol = await room.join("carol", Role.LISTENER, speech48k("Thank you for having me.", VOICE_B), loop=True)
            await carol.send({"type": "hand", "raised": True})
            await host.wait_for(lambda c: c.state.get("hands") == ["carol"])
            assert packets(listener, "carol") == 0, "a listener's microphone is not forwarded"
            await host.send({"type": "promote", "identity": "carol"})
            await carol.wait_for(lambda c: any(m["type"] == "role" and m["role"] == "speaker" for m in c.messages))
            await hears(listener, "carol", 25)

    asyncio.run(scenario())


def test_a_muted_speaker_is_not_forwarded_until_unmuted(settings: Settings) -> None:
    room = Room(settings)

    async def scenario() -> None:
        async with room.live():
            listener = await room.join("lena", Role.LISTENER)
            host = await room.join("alice", Role.HOST, host_speech(), loop=True)
            bob = await room.join("bob", Role.SPEAKER, speech48k(BOB_SAYS, VOICE_B), loop=True)
            await hears(listener, "bob", 25)
            await host.send({"type": "mute", "identity": "bob", "muted": True})
            await bob.wait_for(lambda c: any(m["type"] == "muted" and m["muted"] for m in c.messages))
            # Packets already on their way when the mute landed may still arrive.
            await hears(listener, "alice", 10)
            before = packets(listener, "bob")
            # A second of the host's voice reaches the listener meanwhile: the room
            # is flowing, so bob's silence is the mute, not a stalled stream.
            await hears(listener, "alice", PACKETS_PER_SECOND)
            assert packets(listener, "bob") == before
            # bob never stopped sending: unmuted, he is heard again.
            await host.send({"type": "mute", "identity": "bob", "muted": False})
            await hears(listener, "bob", 25)

    asyncio.run(scenario())


def test_a_removed_participant_is_out_and_cannot_come_back(settings: Settings) -> None:
    room = Room(settings)

    async def scenario() -> None:
        async with room.live():
            host = await room.join("alice", Role.HOST, host_speech(), loop=True)
            carol = await room.join("carol", Role.LISTENER)
            await hears(carol, "alice", 10)
            await host.send({"type": "remove", "identity": "carol"})
            await asyncio.wait_for(carol.closed.wait(), 10)
            assert any(e["code"] == "removed" for e in carol.errors)
            again = await room.join("carol", Role.LISTENER)
            await asyncio.wait_for(again.closed.wait(), 10)
            assert again.errors and again.errors[0]["code"] == "ended"

    asyncio.run(scenario())


def test_a_speaker_who_leaves_and_comes_back_keeps_one_track_with_the_gap(settings: Settings) -> None:
    room = Room(settings)
    speech_b = speech48k(BOB_SAYS, VOICE_B)

    async def scenario() -> Manifest:
        async with room.live():
            host = await room.join("alice", Role.HOST, host_speech(), loop=True)
            listener = await room.join("lena", Role.LISTENER)
            bob = await room.join("bob", Role.SPEAKER, speech_b)
            await hears(listener, "bob", 25)
            await bob.close()
            await host.wait_for(lambda c: "bob" not in {s["identity"] for s in c.state["speakers"]})
            await asyncio.sleep(1.5)  # the gap itself: what the timeline must show
            # Back with his own token: a name belongs to the token that first used it.
            bob = await room.join("bob", Role.SPEAKER, speech_b, token_of=bob)
            await hears(listener, "bob", 25)
            await room.leave()
            return await room.recorded()

    manifest = asyncio.run(scenario())
    assert [speaker for _, speaker in manifest.tracks] == ["alice", "bob"], "one track for bob, not two"
    blobs = open_blob_store(settings)
    bob_track = Track.from_dict(json.loads(blobs.get(keys.track_manifest(room.space_id, manifest.tracks[1][0]))))
    ends = [s.offset + s.duration for s in bob_track.segments]
    gaps = [b.offset - a_end for a_end, b in zip(ends, bob_track.segments[1:], strict=False)]
    # Left for 1.5 s plus renegotiation: the rejoin starts well after the leave, never on top of it.
    assert max(gaps) > 1.4, bob_track.segments
    assert min(gaps) > -0.01, "segments overlap on the room clock"


def test_a_space_everyone_left_ends_by_itself_and_is_recorded(settings: Settings) -> None:
    room = Room(settings)

    async def scenario() -> Manifest:
        async with room.live():
            await room.join("alice", Role.HOST, host_speech(), loop=True)
            await room.join("bob", Role.SPEAKER, speech48k(BOB_SAYS, VOICE_B), loop=True)
            listener = await room.join("lena", Role.LISTENER)
            await hears(listener, "bob", 25)
            await hears(listener, "alice", 25)
            assert get_space(settings, room.space_id).state is SpaceState.LIVE
            await room.leave()
            return await room.recorded()

    manifest = asyncio.run(scenario())
    assert [speaker for _, speaker in manifest.tracks] == ["alice", "bob"], "a track per speaker, in join order"
