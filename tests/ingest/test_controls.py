"""Room life: late speakers, hands and promotion, host mute and remove, leave and rejoin, the end.

One space, real peers: a listener who was there first hears a speaker who
joins later (server-driven renegotiation) and a listener the host promotes;
the host mutes and removes; a speaker who leaves and comes back keeps one
track whose timeline has the gap; when everyone has gone the space ends by
itself and is recorded.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from ingest.client import PcmTrack, SpaceClient
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.models import Manifest, SpaceState, Track
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.audio import locate, low
from tests.ingest.conftest import (
    VOICE_A,
    VOICE_B,
    get_space,
    make_space,
    rtc_url,
    running_sfu,
    speech48k,
    token,
)


def packets(client: SpaceClient, identity: str) -> int:
    slot = client.slot_of(identity)
    return client.received[slot].packets if slot is not None and slot in client.received else 0


def test_room_controls_and_timeline(sfu_settings: Settings) -> None:
    settings = replace(sfu_settings, sfu_empty_timeout=2)
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)
    speech_b = speech48k("Our team finished the project two weeks ahead of schedule.", VOICE_B, lead=0.3)
    gap = {}

    async def scenario() -> None:
        listener = SpaceClient(url, token(settings, space_id, "lena", Role.LISTENER))
        host = SpaceClient(
            url,
            token(settings, space_id, "alice", Role.HOST),
            track=PcmTrack(speech48k("Let us start with the budget.", VOICE_A), loop=True),
        )
        bob_token = token(settings, space_id, "bob", Role.SPEAKER)
        async with running_sfu(settings):
            await listener.connect()
            await host.connect()
            await listener.wait_for(lambda c: packets(c, "alice") > 25)

            # A speaker who joins later is heard by the listener already there.
            bob = SpaceClient(url, bob_token, track=PcmTrack(speech_b))
            await bob.connect()
            await listener.wait_for(lambda c: packets(c, "bob") > 0, timeout=10)
            assert listener.answered_rev >= 2, "no renegotiation happened"
            await asyncio.sleep(len(speech_b) / 48000)
            heard = listener.received[listener.slot_of("bob") or 0].audio()
            assert locate(low(heard), low(speech_b)).score > 0.6

            # Hand up, promoted by the host, then heard.
            carol = SpaceClient(
                url,
                token(settings, space_id, "carol", Role.LISTENER),
                track=PcmTrack(speech48k("Thank you for having me.", VOICE_B), loop=True),
            )
            await carol.connect()
            await carol.send({"type": "hand", "raised": True})
            await host.wait_for(lambda c: c.state.get("hands") == ["carol"])
            await host.send({"type": "promote", "identity": "carol"})
            await carol.wait_for(lambda c: any(m["type"] == "role" and m["role"] == "speaker" for m in c.messages))
            await listener.wait_for(lambda c: packets(c, "carol") > 25, timeout=10)

            # The host mutes bob: nothing of his is forwarded while muted.
            await host.send({"type": "mute", "identity": "bob", "muted": True})
            await bob.wait_for(lambda c: any(m["type"] == "muted" and m["muted"] for m in c.messages))
            await asyncio.sleep(0.2)
            before = packets(listener, "bob")
            await asyncio.sleep(0.6)
            assert packets(listener, "bob") == before
            await host.send({"type": "mute", "identity": "bob", "muted": False})

            # Bob leaves and comes back: one track, a gap in its timeline.
            await bob.close()
            await host.wait_for(lambda c: "bob" not in {s["identity"] for s in c.state["speakers"]})
            await asyncio.sleep(1.5)
            bob = SpaceClient(url, bob_token, track=PcmTrack(speech_b))
            await bob.connect()
            await listener.wait_for(lambda c: c.slot_of("bob") is not None)
            await asyncio.sleep(1.0)

            # Removed: out, and cannot come back.
            await host.send({"type": "remove", "identity": "carol"})
            await carol.closed.wait()
            assert any(e["code"] == "removed" for e in carol.errors)
            again = SpaceClient(url, token(settings, space_id, "carol", Role.LISTENER))
            await again.connect()
            await again.closed.wait()
            assert again.errors and again.errors[0]["code"] == "ended"

            # Everyone leaves; the space ends on its own after the empty timeout.
            for c in (listener, host, bob, carol, again):
                await c.close()
            for _ in range(100):
                if get_space(settings, space_id).state is SpaceState.RECORDED:
                    break
                await asyncio.sleep(0.1)
            assert get_space(settings, space_id).state is SpaceState.RECORDED

    asyncio.run(scenario())
    blobs = open_blob_store(settings)
    manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(space_id))))
    assert [speaker for _, speaker in manifest.tracks] == ["alice", "bob", "carol"]
    bob_track = Track.from_dict(json.loads(blobs.get(keys.track_manifest(space_id, manifest.tracks[1][0]))))
    ends = [s.offset + s.duration for s in bob_track.segments]
    gaps = [b.offset - a_end for a_end, b in zip(ends, bob_track.segments[1:], strict=False)]
    gap["max"] = max(gaps)
    # Left for 1.5 s plus renegotiation: the rejoin starts well after the leave, never on top of it.
    assert max(gaps) > 1.4, bob_track.segments
    assert min(gaps) > -0.01, "segments overlap on the room clock"
