"""A live space through the whole stack: create it over the API, talk through
the SFU with real aiortc peers, end it, and find each speaker's words under
their name in the transcript the worker made of the recording."""

from __future__ import annotations

import asyncio

import pytest

from ingest.client import PcmTrack, SpaceClient
from tests.exclusive import Hold
from tests.scoring import normalized_wer
from tests.support.sfu import VOICE_A, VOICE_B, speech48k
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

SAID = {
    "alice": "The weather was lovely this morning, so we walked down to the river.",
    "bob": "Our team finished the project two weeks ahead of schedule.",
}
#: See test_import: tiny.en mishears these espeak voices a little.
MAX_WER = 0.3


def test_live_space_is_recorded_and_transcribed(stack: Stack, cpu_lock: Hold) -> None:
    created = stack.post("/spaces", {"title": "Live walk", "host": "alice"}).json()
    space_id, rtc_url = created["space_id"], created["rtc_url"]
    bob = stack.post(f"/spaces/{space_id}/tokens", {"role": "speaker", "identity": "bob"}, created["token"])
    assert bob.status_code == 200, bob.text
    tracks = {
        "alice": PcmTrack(speech48k(SAID["alice"], VOICE_A, lead=0.5, tail=0.5)),
        "bob": PcmTrack(speech48k(SAID["bob"], VOICE_B, lead=0.5, tail=0.5)),
    }

    async def talk() -> None:
        host = SpaceClient(rtc_url, created["token"], track=tracks["alice"], decode=False)
        await host.connect()
        await asyncio.sleep(5.5)  # alice's sentence, then bob's
        guest = SpaceClient(rtc_url, bob.json()["token"], track=tracks["bob"], decode=False)
        await guest.connect()
        await asyncio.sleep(5.5)
        assert not host.errors and not guest.errors, (host.errors, guest.errors)
        await host.send({"type": "end"})
        await host.wait_for(lambda c: any(m["type"] == "ended" for m in c.messages), timeout=15)
        await guest.close()
        await host.close()

    with cpu_lock.alone():  # what is recorded is what arrived in real time; the pipeline after shares the CPUs
        asyncio.run(talk())
    space = stack.wait_state(space_id, {"ready", "failed"})
    assert space["state"] == "ready", space
    transcript = stack.get(f"/spaces/{space_id}/transcript").json()
    words = [w for turn in transcript["turns"] for w in turn["words"]]
    for speaker, sentence in SAID.items():
        heard = " ".join(w["text"] for w in words if w["speaker"] == speaker)
        assert normalized_wer(sentence, heard) < MAX_WER, (speaker, heard)
    first_bob = min(w["start"] for w in words if w["speaker"] == "bob")
    last_alice = max(w["end"] for w in words if w["speaker"] == "alice")
    assert first_bob > last_alice  # bob spoke after alice, on the room clock
