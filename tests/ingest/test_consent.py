"""Recording choices on the SFU: speaking unrecorded, and the host's record-everyone-or-no-one policy."""

from __future__ import annotations

import asyncio
import json

from ingest.client import PcmTrack, SpaceClient
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.models import Manifest, SpaceState
from spaces.settings import Settings
from spaces.tokens import Role
from tests.support.sfu import VOICE_A, VOICE_B, get_space, make_space, rtc_url, running_sfu, speech48k, token

SENTENCE = "Our team finished the project two weeks ahead of schedule."


def test_all_or_none_makes_a_decliner_a_listener(sfu_settings: Settings) -> None:
    settings = sfu_settings
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)

    async def scenario() -> None:
        async with running_sfu(settings):
            host = SpaceClient(
                url, token(settings, space_id, "host", Role.HOST), track=PcmTrack(speech48k(SENTENCE, VOICE_A))
            )
            await host.connect()
            # Unrecorded is allowed while the policy is per speaker: dave speaks, not recorded.
            dave = SpaceClient(
                url,
                token(settings, space_id, "dave", Role.SPEAKER),
                record=False,
                track=PcmTrack(speech48k(SENTENCE, VOICE_B, lead=0.3)),
            )
            await dave.connect()
            await host.wait_for(lambda c: c.state.get("not_recorded") == ["dave"])
            assert host.state["recording"] == "each_speaker"
            # All or none: dave, unrecorded, becomes a listener; bob declining joins as one.
            await host.send({"type": "recording", "all_or_none": True})
            await host.wait_for(lambda c: c.state.get("recording") == "all_or_none" and not c.state["not_recorded"])
            await dave.wait_for(lambda c: any(m["type"] == "role" and m["role"] == "listener" for m in c.messages))
            bob = SpaceClient(url, token(settings, space_id, "bob", Role.SPEAKER), record=False)
            await bob.connect()
            assert bob.welcome is not None and bob.welcome["role"] == "listener"
            carol = SpaceClient(
                url,
                token(settings, space_id, "carol", Role.SPEAKER),
                track=PcmTrack(speech48k(SENTENCE, VOICE_B, lead=0.3)),
            )
            await carol.connect()
            assert carol.welcome is not None and carol.welcome["role"] == "speaker"
            await host.wait_for(lambda c: {s["identity"] for s in c.state["speakers"]} == {"host", "carol"})
            assert all(s["recorded"] for s in host.state["speakers"])
            # The host may not decline in an all-or-none space.
            await host.send({"type": "consent", "record": False})
            await host.wait_for(lambda c: any(e.get("code") == "forbidden" for e in c.errors))
            await asyncio.sleep(2.5)
            await host.send({"type": "end"})
            await host.wait_for(lambda c: any(m["type"] == "ended" for m in c.messages), timeout=20)
            for client in (host, dave, bob, carol):
                await client.close()
            await host.wait_for(lambda c: get_space(settings, space_id).state is SpaceState.RECORDED, timeout=30)

    asyncio.run(scenario())
    blobs = open_blob_store(settings)
    manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(space_id))))
    assert sorted(s for _, s in manifest.tracks) == ["carol", "host"]
    choices = [(s, r) for s, _, r in manifest.consents]
    assert ("dave", False) in choices and ("carol", True) in choices and ("host", True) in choices
    assert "bob" not in [s for s, _ in choices]
    # aiortc sends no audio levels (RFC 6464), so dave's speech is not timed here (Chromium's is:
    # test_browser_consent); nobody recorded has an unrecorded stretch.
    assert {s for s, _, _ in manifest.unrecorded} <= {"dave"}
