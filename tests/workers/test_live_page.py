"""The live page shows captions: a Chromium listener reads a speaker's known sentence as it is said.

A real SFU and API, a speaker (aiortc) sending a known espeak-ng sentence,
the real room agent in this process (as in ``test_agent.py``), and the live
page in headless Chromium as a listener.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from playwright.async_api import async_playwright

from ingest.client import PcmTrack, SpaceClient
from spaces.settings import Settings
from spaces.tokens import Role
from tests.exclusive import Hold, alone_in_loop
from tests.ingest.test_browser import CHROMIUM, launch_chromium, running_api, until
from tests.speech import word_error_rate
from tests.support.services import free_port
from tests.support.sfu import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token
from tests.workers.test_agent import agent_settings  # noqa: F401  (fixture)
from transcribe.model import load_model
from workers.agent import RoomAgent

RATE = 48000
LEAD = 1.5
SENTENCE = "Our team finished the project two weeks ahead of schedule."

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def page_settings(agent_settings: Settings) -> Settings:  # noqa: F811
    return replace(agent_settings, api_port=free_port(), sfu_public_url=f"http://127.0.0.1:{agent_settings.sfu_port}")


def test_a_listener_page_shows_the_speakers_sentence_as_captions(page_settings: Settings, cpu_lock: Hold) -> None:
    asyncio.run(_listener_page(page_settings, cpu_lock))


async def _listener_page(settings: Settings, cpu_lock: Hold) -> None:
    space_id = make_space(settings, title="Captioned")
    source = speech48k(SENTENCE, VOICE_A, lead=LEAD, tail=4.0)
    track = PcmTrack(source)
    async with running_sfu(settings), running_api(settings) as api, async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await browser.new_page()
            await page.goto(f"{api}/spaces/{space_id}/live")
            assert await page.is_checked("#captions-on")
            await page.click("#join")
            await until(page, "window.liveSpace.role === 'listener'")
            url = rtc_url(settings, space_id)
            alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST), track=track)
            agent = RoomAgent(settings=settings, space_id=space_id, rtc_url=url, model=load_model())
            async with alone_in_loop(cpu_lock):  # from her first word to the final caption on the page
                await alice.connect()
                running = asyncio.get_running_loop().create_task(agent.run())

                transcript: list[dict[str, Any]] = await until(
                    page, "window.liveSpace.transcript().length && window.liveSpace.transcript()", timeout=60
                )
                shown_at = time.time()
                assert [line["speaker"] for line in transcript] == ["alice"]
                assert word_error_rate(SENTENCE, transcript[0]["text"]) <= 0.3, transcript
                # The caption line: speaker-named, final now, and one line for the utterance (the
                # interims were replaced in place, not stacked).
                lines = await page.evaluate("window.liveSpace.captions()")
                timed = [e for e in await page.evaluate("window.liveSpace.events") if e["name"] == "caption"]
                events = [e["detail"] for e in timed]
                final = next(e["detail"] for e in timed if e["detail"]["final"])
                assert lines == [{"speaker": "alice", "lines": final["lines"], "final": True}]
                # The cue on screen is cut by the replay's rules (spaces.captions): at most 2 lines of 42.
                assert 1 <= len(final["lines"]) <= 2 and all(len(line) <= 42 for line in final["lines"])
                assert " ".join(final["lines"]) == transcript[0]["text"]
                assert any(not e["final"] for e in events), "no interim caption before the final"
                # Latency: the final caption was on the page soon after the speech's end. The bench
                # measures the p50 against the 1.5 s; on this loaded 2-core machine one Whisper
                # pass takes 3-5 s of wall time, hence test_agent's headroom, kept the same here.
                speech_end = (track.started_at or 0) + len(source) / RATE - 4.0
                print(
                    "page captions after the speech's end:",
                    [(e["detail"]["final"], round(e["at"] / 1000 - speech_end, 2)) for e in timed],
                )
                assert shown_at - speech_end < 15.0

            # A settled event replaces the utterance's final in place, on screen and in the transcript;
            # a repeat of the final after it changes nothing.
            settled = {**final, "settled": True, "seq": final["seq"] + 1, "text": "Settled.", "lines": ["Settled."]}
            await page.evaluate(f"window.liveSpace.showCaption({json.dumps(settled)})")
            await page.evaluate(f"window.liveSpace.showCaption({json.dumps(final)})")
            assert await page.evaluate("window.liveSpace.transcript()") == [{"speaker": "alice", "text": "Settled."}]
            assert await page.evaluate("window.liveSpace.captions()") == [
                {"speaker": "alice", "lines": ["Settled."], "final": True}
            ]

            # Interim text is shown as tentative: the page marks it so (grey, italic in live.css).
            interim = {**events[0], "final": False, "seq": 10_000, "utterance": 99, "start": 100.0, "end": 101.0}
            await page.evaluate(f"window.liveSpace.showCaption({json.dumps(interim)})")
            assert (
                await page.evaluate(
                    "getComputedStyle(document.querySelector('.caption--interim .caption__text')).fontStyle"
                )
                == "italic"
            )

            # The switch hides the captions, not the transcript.
            await page.click("#captions-on")
            assert await page.is_hidden("#captions")
            assert await page.is_visible("#transcript")

            await alice.send({"type": "end"})
            await asyncio.wait_for(running, 60)
            await alice.close()
        finally:
            await browser.close()
