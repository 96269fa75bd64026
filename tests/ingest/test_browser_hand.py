"""The live page asks a listener for the name they would speak under, with their hand.

Headless Chromium listens (no token: the page gets a random listener name),
finds its name offered in the field next to "Raise hand", changes it and
raises the hand; the host sees the name with the hand and promotes; the page
then speaks under that name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

import httpx
from playwright.async_api import Page, async_playwright

from ingest.client import PcmTrack, SpaceClient
from spaces.settings import Settings
from tests.ingest.test_browser import launch_chromium, pytestmark, running_api  # noqa: F401 - the skip mark applies here too
from tests.ingest.test_participant_cap import until
from tests.support.services import free_port
from tests.support.sfu import VOICE_A, running_sfu, speech48k


async def polled(page: Page, expression: str, want: Callable[[object], bool], timeout: float = 15.0) -> None:
    """Poll from outside: the page's CSP forbids wait_for_function's eval."""
    deadline = time.monotonic() + timeout
    while not want(await page.evaluate(expression)):
        assert time.monotonic() < deadline, await page.evaluate("window.liveSpace.events")
        await asyncio.sleep(0.1)


def test_the_live_page_offers_a_name_with_the_hand(sfu_settings: Settings) -> None:
    settings = replace(
        sfu_settings,
        api_port=free_port(),
        sfu_public_url=f"http://127.0.0.1:{sfu_settings.sfu_port}",
        sfu_empty_timeout=30,
    )

    async def scenario() -> None:
        async with running_sfu(settings), running_api(settings) as api:
            async with httpx.AsyncClient(base_url=api) as http:
                created = (await http.post("/spaces", json={"title": "Hands", "host": "alice"})).json()
            host = SpaceClient(
                created["rtc_url"], created["token"], track=PcmTrack(speech48k("Welcome.", VOICE_A), loop=True)
            )
            await host.connect()
            async with async_playwright() as pw:
                browser = await launch_chromium(pw)
                try:
                    page = await browser.new_page()
                    await page.goto(f"{api}/spaces/{created['space_id']}/live")
                    await page.click("#join")
                    await polled(page, "window.liveSpace.connection", lambda v: v == "connected")
                    identity = str(await page.evaluate("window.liveSpace.identity"))
                    assert identity.startswith("listener-")
                    # Offered: the name it has; the listener writes their own.
                    assert await page.input_value("#hand-name") == identity
                    await page.fill("#hand-name", "Carol Smith")
                    await page.click("#hand")
                    await until(lambda: host.state.get("hand_names") == {identity: "Carol Smith"})
                    await host.send({"type": "promote", "identity": identity})
                    await polled(page, "window.liveSpace.identity", lambda v: v == "Carol Smith")
                    await polled(page, "window.liveSpace.role", lambda v: v == "speaker")
                    # Promoted: asked before the microphone goes live.
                    assert "recorded, transcribed and searchable" in await page.inner_text("#consent")
                    await page.click("#consent-record")
                    await page.wait_for_selector("#speakers [data-identity='Carol Smith']")
                    assert await page.is_hidden("#hand-name-field")
                finally:
                    await browser.close()
            await host.close()

    asyncio.run(scenario())
