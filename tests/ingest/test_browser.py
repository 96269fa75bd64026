"""Headless Chromium joins the live page as a speaker; its microphone is recorded.

Chromium's fake capture device plays a known espeak-ng file (once, then
silence); the page joins through the API's live page and the real SFU.
Checked: the page connects, the SFU records the browser's track, the
recording holds the file's speech where it should be on the room clock,
and the browser sent it at the bitrate the SFU's offer asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import wave
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
import uvicorn
from playwright.async_api import Browser, Page, Playwright, async_playwright

from ingest.client import SpaceClient
from ingest.oggwriter import iter_packets, iter_pages
from ingest.opus import CLOCK_RATE, packet_samples
from replay_api.app import create_app
from spaces import keys, tokens
from spaces.blobstore import open_blob_store
from spaces.models import Manifest, SpaceState, Track
from spaces.settings import Settings
from tests.exclusive import Hold, alone_in_loop
from tests.ingest.audio import LOW, locate, low, render_track
from tests.support.services import free_port
from tests.support.sfu import VOICE_A, get_space, running_sfu, speech48k

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
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


def chromium_args(wav: Path | None = None, *, loop: bool = False) -> list[str]:
    """Headless Chromium with a fake microphone: a beep, or ``wav`` played once (or looped)."""
    capture = [f"--use-file-for-fake-audio-capture={wav}" + ("" if loop else "%noloop")] if wav else []
    return [
        "--no-sandbox",
        "--headless=new",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        *capture,
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]


async def launch_chromium(
    pw: Playwright, wav: Path | None = None, *, loop: bool = False, extra: Sequence[str] = ()
) -> Browser:
    """Chromium with a fake microphone granted to every page (see ``chromium_args``), and ``extra`` flags."""
    return await pw.chromium.launch(executable_path=str(CHROMIUM), args=[*chromium_args(wav, loop=loop), *extra])


INVITE_ANSWERED = (
    "document.getElementById('speaker-link').value || document.getElementById('invite-link').textContent.trim()"
)


async def until(page: Page, expression: str, timeout: float = 15.0) -> Any:
    """Poll from outside: the page's CSP forbids wait_for_function's eval."""
    deadline = time.monotonic() + timeout
    while not (value := await page.evaluate(expression)):
        assert time.monotonic() < deadline, (expression, await page.evaluate("window.liveSpace.events"))
        await asyncio.sleep(0.1)
    return value


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(samples.astype("<i2").tobytes())


def test_browser_speaker_is_recorded(sfu_settings: Settings, tmp_path: Path, cpu_lock: Hold) -> None:
    api_port = free_port()
    settings = replace(
        sfu_settings,
        api_port=api_port,
        sfu_public_url=f"http://127.0.0.1:{sfu_settings.sfu_port}",
        sfu_empty_timeout=30,
        sfu_opus_bitrate=64000,
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
                browser = await launch_chromium(pw, wav)
                try:
                    async with alone_in_loop(cpu_lock):  # her speech, recorded as it arrives in real time
                        page = await browser.new_page()
                        await page.goto(speaker_url)
                        await page.click("#join")
                        # Asked before the microphone goes live.
                        await page.click("#consent-record")
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
    # Sent at the bitrate the SFU's offer asks for, not the browser's own 32 kb/s.
    kbps = speech_kbps(segments.values())
    print(f"browser: speech at {kbps:.0f} kb/s, asked 64")
    assert kbps > 48, "sent at the browser's own 32 kb/s, not the 64 asked"


def speech_kbps(segments: Iterable[bytes]) -> float:
    """The recorded Opus packets' bitrate while the speaker speaks: the larger half of the packets
    (the rest is the silence around the speech, which a variable bitrate spends little on)."""
    packets = [
        p
        for data in segments
        for p in iter_packets(list(iter_pages(data)))
        if not p.startswith((b"OpusHead", b"OpusTags"))
    ]
    louder = sorted(packets, key=len)[len(packets) // 2 :]
    return 8 * sum(map(len, louder)) / (sum(map(packet_samples, louder)) / CLOCK_RATE) / 1000


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_host_shares_listener_and_speaker_links_never_its_own(sfu_settings: Settings, visibility: str) -> None:
    """The host's token leaves the address bar; listener and speaker links are separate, lesser ones."""
    settings = replace(
        sfu_settings,
        api_port=free_port(),
        sfu_public_url=f"http://127.0.0.1:{sfu_settings.sfu_port}",
        sfu_empty_timeout=30,
    )

    def token_in(link: str) -> tokens.Claims | None:
        found = parse_qs(urlsplit(link).query).get("token")
        return tokens.verify(settings.secret_key, found[0]) if found else None

    async def scenario() -> None:
        async with running_sfu(settings), running_api(settings) as api:
            async with httpx.AsyncClient(base_url=api) as http:
                body = {"title": "Sharing", "host": "hana", "visibility": visibility}
                created = (await http.post("/spaces", json=body)).json()
            space_id = created["space_id"]
            page_url = f"{api}/spaces/{space_id}/live"
            async with async_playwright() as pw:
                browser = await launch_chromium(pw)
                try:
                    host = await (await browser.new_context()).new_page()
                    host.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                    await host.goto(created["live_url"])
                    assert "token=" in created["live_url"]
                    assert host.url == page_url  # out of the address bar before anything else
                    await host.click("#join")
                    await host.click("#consent-record")
                    await until(host, "window.liveSpace.connection === 'connected'")
                    assert await host.evaluate("window.liveSpace.role") == "host"

                    listener_link = await until(host, "document.getElementById('listener-link').value")
                    claims = token_in(listener_link)
                    if visibility == "public":
                        assert listener_link == page_url and claims is None
                    else:
                        assert claims is not None and claims.role is tokens.Role.LISTENER
                    await host.fill("#invite-name", "carol")
                    await host.click("#invite button[type=submit]")
                    # The link, or the page's reason for giving none; room for a loaded CI machine.
                    await until(host, INVITE_ANSWERED, timeout=30.0)
                    speaker_link = await host.evaluate("document.getElementById('speaker-link').value")
                    assert speaker_link, await host.evaluate("document.getElementById('invite-link').textContent")
                    claims = token_in(speaker_link)
                    assert claims is not None and (claims.role, claims.identity) == (tokens.Role.SPEAKER, "carol")
                    assert speaker_link.startswith(page_url + "?token=")
                    if visibility == "private":
                        # For a person to look at: the host's panel, desktop and phone.
                        ARTIFACTS.mkdir(exist_ok=True)
                        await host.screenshot(path=str(ARTIFACTS / "live-host.png"), full_page=True)
                        await host.set_viewport_size({"width": 390, "height": 844})
                        await host.screenshot(path=str(ARTIFACTS / "live-host-phone.png"), full_page=True)

                    # Someone opening the listener link listens, under a name of their own.
                    listener = await (await browser.new_context()).new_page()
                    await listener.goto(listener_link)
                    assert listener.url == page_url
                    await listener.click("#join")
                    await until(listener, "window.liveSpace.role")
                    assert await listener.evaluate("window.liveSpace.role") == "listener"
                    assert await listener.evaluate("window.liveSpace.identity") not in ("hana", "carol")

                    # When the space ends, its replay address is a link.
                    await host.click("#end")
                    link = listener.locator("#status a#replay-link")
                    await link.wait_for(timeout=30_000)
                    assert await link.get_attribute("href") == f"{api}/spaces/{space_id}/replay"
                    assert await link.inner_text() == f"{api}/spaces/{space_id}/replay"
                finally:
                    await browser.close()

    asyncio.run(scenario())
