"""The HLS tier and the instant replay in Chromium: a listener past the cap hears the room over HLS.

A real SFU (two WebRTC seats) and API, a speaker (aiortc) saying a known
sentence, a WebRTC listener taking the last seat, the real room agent in
this process writing the HLS, and the live page in headless Chromium: sent
to HLS by the SFU, it plays the playlist natively (time advances, audio is
decoded), shows the tier and the delay, and the sentence's captions from
the subtitle rendition. When the space ends, its page plays the closed
playlist as the instant replay, captioned.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from ingest.client import PcmTrack, SpaceClient
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.test_browser import CHROMIUM, launch_chromium, running_api
from tests.support.services import TEST_MODEL, free_port
from tests.support.sfu import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token
from transcribe.model import load_model
from workers.agent import RoomAgent

#: The sentence starts after the page has joined and switched to HLS.
LEAD = 8.0
SENTENCE = "Our team finished the project two weeks ahead of schedule."

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")]


@pytest.fixture
def tier_settings(settings: Settings) -> Settings:
    port = free_port()
    return replace(
        settings,
        sfu_port=port,
        sfu_empty_timeout=60,
        sfu_ice_addresses="127.0.0.1",
        sfu_max_participants=2,
        api_port=free_port(),
        sfu_public_url=f"http://127.0.0.1:{port}",
    )


_DIAGNOSIS = """(() => {
  const a = document.getElementById('hls-audio') || document.getElementById('instant-audio');
  const media = a && [a.src, a.currentTime, a.readyState, a.networkState, a.paused, a.error && a.error.message];
  return [media, document.getElementById('status') && document.getElementById('status').textContent,
          document.body.innerText.slice(0, 300)];
})()"""


async def until(page: Page, expression: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await page.evaluate(expression)):
        if time.monotonic() > deadline:
            print("DIAGNOSIS", await page.evaluate(_DIAGNOSIS))
            raise AssertionError(expression)
        await asyncio.sleep(0.2)
    return value


def test_past_the_cap_the_page_plays_hls_then_the_instant_replay(tier_settings: Settings) -> None:
    asyncio.run(_tier_and_instant_replay(tier_settings))


async def _tier_and_instant_replay(settings: Settings) -> None:
    space_id = make_space(settings, title="Crowded")
    source = speech48k(SENTENCE, VOICE_A, lead=LEAD, tail=10.0)
    track = PcmTrack(source)
    url = rtc_url(settings, space_id)
    async with running_sfu(settings), running_api(settings) as api, async_playwright() as pw:
        # Autoplay allowed: the page's own fallback (a Start listening button) needs a person.
        browser = await launch_chromium(pw, extra=["--autoplay-policy=no-user-gesture-required"])
        try:
            alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST), track=track)
            lena = SpaceClient(url, token(settings, space_id, "lena", Role.LISTENER), decode=False)
            agent = RoomAgent(settings=settings, space_id=space_id, rtc_url=url, model=load_model(TEST_MODEL))
            await alice.connect()
            await lena.connect()
            running = asyncio.get_running_loop().create_task(agent.run())

            page = await browser.new_page()
            await page.goto(f"{api}/spaces/{space_id}/live")
            assert await page.evaluate("document.createElement('audio').canPlayType('application/vnd.apple.mpegurl')")
            await page.click("#join")
            # The SFU's seats are taken (alice, lena): the page is sent to HLS, not refused.
            await until(page, "window.liveHls.active && window.liveHls.player !== null")
            tier = await page.text_content("#tier")
            assert tier is not None and "live seats are taken" in tier, tier
            played = await until(
                page, "(a => a && a.currentTime > 2 && a.webkitAudioDecodedByteCount > 0 && a.currentTime)"
                "(document.getElementById('hls-audio'))",
            )  # fmt: skip
            assert played > 2
            # The captions come from the HLS's subtitle rendition, in step with its audio.
            shown = await until(
                page,
                "(c => c.some(x => x.speaker === 'alice' && /team|project|schedule/i.test(x.lines.join(' '))) && c)"
                "(window.liveSpace.captions())",
                timeout=90,
            )
            assert shown[0]["speaker"] == "alice"
            assert await page.evaluate("window.liveHls.player.cues.length") >= 1
            talking = await page.evaluate(
                "Array.from(document.querySelectorAll('.speaker--talking')).map(e => e.dataset.identity)"
            )
            # The delay shows once the muted catch-up towards the room is over, which
            # may end after the first caption on a busy machine.
            await until(page, "!window.liveHls.player.catchingUp", timeout=60)
            start = await page.evaluate("window.liveHls.player.liveStart")
            tier = await until(
                page, "(t => t.includes('behind the room') && t)(document.getElementById('tier').textContent)"
            )
            delay = await page.evaluate("window.liveHls.player.delay")
            print("HLS listener: delay behind the room", delay, "s; tier:", tier, "; talking:", talking)
            print("HLS listener's live start:", start)
            assert delay is not None and 0 < delay < 20

            while time.time() < (track.started_at or 0) + len(source) / 48000 - 6:
                await asyncio.sleep(0.2)
            await alice.send({"type": "end"})
            await asyncio.wait_for(running, 60)
            await alice.close()
            await lena.close()

            # The instant replay: the page of the ended space plays the closed playlist, captioned.
            replay = await browser.new_page()
            await replay.goto(f"{api}/spaces/{space_id}/replay")
            await until(replay, "window.instantReplay && window.instantReplay.ended")
            await replay.evaluate("document.getElementById('instant-audio').play()")
            await until(replay, "document.getElementById('instant-audio').currentTime > 1")
            said = await until(
                replay,
                "(c => c.some(x => /team|project|schedule/i.test(x.textContent)) && c.map(x => x.textContent))"
                "(Array.from(document.querySelectorAll('#instant-captions .caption')))",
                timeout=60,
            )
            assert any("alice" in line for line in said), said
        finally:
            await browser.close()
