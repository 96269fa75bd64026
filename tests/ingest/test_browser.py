"""Headless Chromium joins the live page as a speaker; its microphone is recorded.

Chromium's fake capture device plays a known espeak-ng file (once, then
silence); the page joins through the API's live page and the real SFU.
Checked: the page connects, the SFU records the browser's track, and the
recording holds the file's speech where it should be on the room clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from playwright.async_api import async_playwright

from ingest.client import SpaceClient
from replay_api.app import create_app
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.models import Manifest, SpaceState, Track
from spaces.settings import Settings
from tests.conftest import free_port
from tests.ingest.audio import LOW, locate, low, render_track
from tests.ingest.conftest import VOICE_A, get_space, running_sfu, speech48k

CHROMIUM = Path("/usr/bin/chromium")
LEAD = 1.5

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@contextlib.asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[str]:
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=settings.api_port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.api_port}"
    finally:
        server.should_exit = True
        await task


def chromium_args(wav: Path, *, loop: bool = False) -> list[str]:
    """Headless Chromium whose fake microphone plays ``wav`` (once, or looped)."""
    return [
        "--no-sandbox",
        "--headless=new",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}" + ("" if loop else "%noloop"),
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(samples.astype("<i2").tobytes())


def test_browser_speaker_is_recorded(sfu_settings: Settings, tmp_path: Path) -> None:
    api_port = free_port()
    settings = replace(
        sfu_settings,
        api_port=api_port,
        sfu_public_url=f"http://127.0.0.1:{sfu_settings.sfu_port}",
        sfu_empty_timeout=30,
    )
    source = speech48k("We should probably order more coffee for the office kitchen.", VOICE_A, lead=LEAD)
    wav = tmp_path / "speech.wav"
    write_wav(wav, source)
    mic_at = 0.0
    space_id = ""

    async def scenario() -> None:
        nonlocal mic_at, space_id
        async with running_sfu(settings), running_api(settings) as api:
            async with httpx.AsyncClient(base_url=api) as http:
                created = (await http.post("/spaces", json={"title": "Browser", "host": "host"})).json()
                space_id = created["space_id"]
                invite = await http.post(
                    f"/spaces/{space_id}/tokens",
                    json={"role": "speaker", "identity": "carol"},
                    headers={"Authorization": f"Bearer {created['token']}"},
                )
                speaker_url = invite.json()["live_url"]
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(wav))
                try:
                    page = await browser.new_page()
                    await page.goto(speaker_url)
                    await page.click("#join")
                    # Poll from outside: the page's CSP forbids wait_for_function's eval.
                    deadline = time.monotonic() + 15
                    while await page.evaluate("window.liveSpace.connection") != "connected":
                        assert time.monotonic() < deadline, await page.evaluate("window.liveSpace.events")
                        await asyncio.sleep(0.1)
                    events = await page.evaluate("window.liveSpace.events")
                    mic_at = next(e["at"] for e in events if e["name"] == "mic") / 1000
                    assert await page.evaluate("window.liveSpace.role") == "speaker"
                    await page.wait_for_selector("#speakers [data-identity='carol']")
                    await asyncio.sleep(LEAD + len(source) / 48000 + 1.0 - (time.time() - mic_at))
                    host = SpaceClient(created["rtc_url"], created["token"])
                    await host.connect()
                    await host.send({"type": "end"})
                    await page.wait_for_selector("#badge:text('Ended')", timeout=10000)
                    await host.close()
                finally:
                    await browser.close()
            deadline = time.monotonic() + 30
            while get_space(settings, space_id).state is not SpaceState.RECORDED:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)

    asyncio.run(scenario())

    blobs = open_blob_store(settings)
    manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(space_id))))
    tracks = {speaker: track_id for track_id, speaker in manifest.tracks}
    assert "carol" in tracks
    track = Track.from_dict(json.loads(blobs.get(keys.track_manifest(space_id, tracks["carol"]))))
    segments = {s.seq: blobs.get(s.key) for s in track.segments}
    timeline = render_track(track, segments, track.end)
    # Speech energy where the file has speech: the browser's audio processing
    # changes the waveform, so look for the loud stretch, then the shape.
    env = np.convolve(np.abs(timeline), np.ones(LOW // 20) / (LOW // 20), mode="same")
    loud = np.flatnonzero(env > 0.1 * env.max())
    assert env.max() > 300, "the browser's track is silent"
    onset = loud[0] / LOW + manifest.started_at
    expected = mic_at + LEAD
    assert abs(onset - expected) < 0.5, f"speech at {onset - mic_at:.2f} s after the mic opened, file says {LEAD}"
    match = locate(timeline, low(source))
    print(f"browser: onset {onset - expected:+.3f} s from expected, score {match.score:.2f}")
    assert match.score > 0.3, f"recorded audio does not resemble the file (score {match.score:.2f})"
