"""Consent in Chromium: a speaker who declines recording is heard live, and absent from the recording and transcript.

The live page asks before the microphone goes live; carol declines. A
listener (a real aiortc peer) hears her and sees she is not recorded; the
host (aiortc, speaking) is recorded. After the pipeline: no track of hers
in the blob store, none of her words in the transcript, and a marked gap
("carol spoke, not recorded") where she spoke.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
from playwright.async_api import async_playwright

from ingest.client import PcmTrack, SpaceClient
from spaces import keys, queue
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.models import Manifest, SpaceState, Transcript
from spaces.settings import Settings
from tests.exclusive import Hold, alone_in_loop
from tests.ingest.audio import locate, low
from tests.ingest.test_browser import CHROMIUM, launch_chromium, pytestmark, running_api, until, write_wav
from tests.support.services import free_port
from tests.support.sfu import VOICE_A, VOICE_B, get_space, running_sfu, speech48k
from tests.support.workers import Workers, finished, wait_for

__all__ = ["pytestmark"]
assert CHROMIUM

LEAD = 1.5
CAROL = "We should probably order more coffee for the office kitchen."
HOST = "Welcome to the morning meeting everybody."


def test_a_speaker_who_declines_is_heard_but_not_recorded(
    sfu_settings: Settings, tmp_path: Path, cpu_lock: Hold
) -> None:
    settings = replace(
        sfu_settings,
        api_port=free_port(),
        sfu_public_url=f"http://127.0.0.1:{sfu_settings.sfu_port}",
        sfu_empty_timeout=30,
    )
    source = speech48k(CAROL, VOICE_A, lead=LEAD)
    wav = tmp_path / "carol.wav"
    write_wav(wav, source)
    host_speech = speech48k(HOST, VOICE_B, lead=0.3)
    space_id = ""
    heard = 0.0
    mic_at = 0.0

    async def scenario() -> None:
        nonlocal space_id, heard, mic_at
        async with running_sfu(settings), running_api(settings) as api:
            async with httpx.AsyncClient(base_url=api) as http:
                created = (await http.post("/spaces", json={"title": "Consent", "host": "host"})).json()
                space_id = created["space_id"]
                bearer = {"Authorization": f"Bearer {created['token']}"}
                invite = await http.post(
                    f"/spaces/{space_id}/tokens", json={"role": "speaker", "identity": "carol"}, headers=bearer
                )
                listen = await http.post(f"/spaces/{space_id}/tokens", json={"role": "listener", "identity": "lee"})
            host = SpaceClient(created["rtc_url"], created["token"], track=PcmTrack(host_speech))
            await host.connect()
            listener = SpaceClient(created["rtc_url"], listen.json()["token"])
            await listener.connect()
            async with async_playwright() as pw:
                browser = await launch_chromium(pw, wav)
                try:
                    async with alone_in_loop(cpu_lock):  # heard live, her speech timed on the room clock
                        page = await browser.new_page()
                        await page.goto(invite.json()["live_url"])
                        await page.click("#join")
                        # Asked before the microphone goes live; nothing is connected yet.
                        text = await page.inner_text("#consent")
                        assert "recorded, transcribed and searchable" in text
                        assert await page.evaluate("window.liveSpace.connection") == "new"
                        assert not [e for e in await page.evaluate("window.liveSpace.events") if e["name"] == "mic"]
                        await page.click("#consent-decline")
                        await until(page, "window.liveSpace.connection === 'connected'")
                        assert await page.evaluate("window.liveSpace.role") == "speaker"
                        events = await page.evaluate("window.liveSpace.events")
                        mic_at = next(e["at"] for e in events if e["name"] == "mic") / 1000
                        # Everyone sees who is not recorded.
                        await page.wait_for_selector("#recording-note:text('carol')")
                        deadline = time.monotonic() + 10
                        while listener.state.get("not_recorded") != ["carol"]:
                            assert time.monotonic() < deadline, listener.state
                            await asyncio.sleep(0.1)
                        carol = next(s for s in listener.state["speakers"] if s["identity"] == "carol")
                        assert carol["recorded"] is False
                        await asyncio.sleep(max(0.0, LEAD + len(source) / 48000 + 1.5 - (time.time() - mic_at)))
                        # The listener heard her.
                        slot = listener.slot_of("carol")
                        assert slot is not None and slot in listener.received
                        heard = locate(low(listener.received[slot].audio()), low(source)).score
                        await host.send({"type": "end"})
                        await page.wait_for_selector("#badge:text('Ended')", timeout=10000)
                finally:
                    await browser.close()
            await host.close()
            await listener.close()
            deadline = time.monotonic() + 30
            while get_space(settings, space_id).state is not SpaceState.RECORDED:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)

    asyncio.run(scenario())  # alone from her page's opening to the room's end; the set-up and pipeline share the CPUs
    assert heard > 0.3, f"the listener did not hear carol (score {heard:.2f})"

    blobs = open_blob_store(settings)
    manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(space_id))))
    assert [s for _, s in manifest.tracks] == ["host"]
    assert not [k for k in blobs.list(keys.space_prefix(space_id)) if "carol" in k]
    assert ("carol", False) in [(s, r) for s, _, r in manifest.consents]
    # Her speech, timed from the browser's audio levels (a pause may split it in stretches).
    stretches = [(a, b) for s, a, b in manifest.unrecorded if s == "carol"]
    spoke_at = mic_at + LEAD - manifest.started_at
    assert stretches and abs(stretches[0][0] - spoke_at) < 1.0, (stretches, spoke_at)
    assert sum(b - a for a, b in stretches) > 2.0, stretches

    workers = Workers(settings)
    try:
        workers.start()
        queue.enqueue_finalize(settings, space_id)  # already enqueued by the SFU: the same job
        catalog = open_catalog(settings)
        done = wait_for(catalog, space_id, finished)
        assert done.state is SpaceState.READY, done.error
        transcript = Transcript.from_dict(json.loads(blobs.get(keys.transcript(space_id))))
        said = " ".join(w.text.lower() for w in transcript.words)
        assert {w.speaker for w in transcript.words} <= {"host"}
        assert "coffee" not in said and "kitchen" not in said
        assert [(g.speaker, g.start, g.end, g.reason) for g in transcript.gaps] == [
            ("carol", a, b, "not_recorded") for a, b in stretches
        ]
        assert catalog.search("coffee kitchen", limit=5) == []
        catalog.close()
    finally:
        workers.stop_all()
        q = queue.pipeline_queue(settings)
        q.empty()
        q.delete(delete_jobs=True)
    assert np.isfinite(heard)
