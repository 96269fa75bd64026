"""Chromium's live page with SFU nodes: it follows ``moved``, and comes back by itself when its socket drops.

The nodes and the API run in-process (uvicorn in the test's event loop);
aiortc clients play the other speaker.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from ingest.client import PcmTrack, SpaceClient
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.models import Manifest, SpaceState
from spaces.router import NodeRouter
from spaces.settings import Settings
from spaces.tokens import Role
from tests.exclusive import Hold, alone_in_loop
from tests.faults.proxy import TcpProxy
from tests.ingest.test_browser import CHROMIUM, launch_chromium, running_api, write_wav
from tests.support.services import free_port
from tests.support.sfu import (
    VOICE_A,
    VOICE_B,
    get_space,
    rtc_url,
    running_sfu,
    sfu_process,
    sfu_stats,
    speech48k,
    token,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

#: Audio must flow again this soon after the network is back (issue 9).
BACK_WITHIN = 5.0


def node(base: Settings, node_id: str, tmp_path: Path, **changes: Any) -> Settings:
    return replace(
        base,
        sfu_port=free_port(),
        sfu_node_id=node_id,
        sfu_spool_dir=str(tmp_path / f"spool-{node_id}"),
        sfu_empty_timeout=30,
        **changes,
    )


async def wait_for(page: Page, expression: str, ok: Any, timeout: float = 15.0) -> None:
    # Polled from outside: the page's CSP forbids wait_for_function's eval.
    deadline = time.monotonic() + timeout
    while (value := await page.evaluate(expression)) != ok and not (callable(ok) and ok(value)):
        if time.monotonic() > deadline:
            events = await page.evaluate("window.liveSpace.events")
            now = await page.evaluate("Date.now()")
            trail = [
                (round((e["at"] - now) / 1000, 2), e["name"], e["detail"] if e["name"] != "state" else "")
                for e in events[-12:]
            ]
            shown = await page.text_content("#status")
            raise AssertionError(
                f"{expression} is {value!r}; status {shown!r}; the page's last events (s ago): {trail}"
            )
        await asyncio.sleep(0.1)


def test_live_page_sent_to_the_wrong_node_follows_moved(sfu_settings: Settings, tmp_path: Path) -> None:
    api_settings = replace(sfu_settings, api_port=free_port())
    a, b = node(api_settings, "node-a", tmp_path), node(api_settings, "node-b", tmp_path)
    wav = tmp_path / "silence.wav"
    write_wav(wav, speech48k("Hello.", VOICE_A))

    async def scenario() -> None:
        async with running_sfu(a) as sfu_a, running_sfu(b) as sfu_b, running_api(api_settings) as api:
            async with httpx.AsyncClient(base_url=api) as http:
                created = (await http.post("/spaces", json={"title": "Two nodes", "host": "host"})).json()
            space_id = created["space_id"]
            first, other_node = (a, b) if f":{a.sfu_port}/" in created["rtc_url"] else (b, a)
            async with async_playwright() as pw:
                browser = await launch_chromium(pw, wav)
                try:
                    page = await browser.new_page()
                    await page.goto(f"{api}/spaces/{space_id}/live")
                    assert f":{first.sfu_port}/" in (await page.get_attribute("#live", "data-rtc-url") or "")
                    # The space moves to the other node after the page was rendered (nobody had joined).
                    router = NodeRouter.from_settings(api_settings)
                    assert router.adopt(space_id, first.sfu_node_id, other_node.sfu_node_id)
                    router.close()
                    host = SpaceClient(
                        created["rtc_url"],
                        created["token"],
                        track=PcmTrack(speech48k("The train leaves every hour.", VOICE_A), loop=True),
                        decode=False,
                    )
                    await host.connect()  # the host's link is stale too: it follows as well
                    await page.click("#join")
                    await wait_for(page, "window.liveSpace.connection", "connected")
                    await wait_for(page, "window.liveSpace.packetsReceived()", lambda n: n > 20)
                    events = await page.evaluate("window.liveSpace.events")
                finally:
                    await browser.close()
            await host.close()
            right = other_node
            assert host.rtc_url == rtc_url(right, space_id)
            moved = [e["detail"] for e in events if e["name"] == "moved"]
            assert moved and moved[0]["rtc_url"] == rtc_url(right, space_id)
            holder, other = (sfu_a, sfu_b) if right is a else (sfu_b, sfu_a)
            assert list(holder.sfu.rooms.rooms) == [space_id] and not other.sfu.rooms.rooms

    asyncio.run(scenario())


def test_live_page_comes_back_after_its_socket_drops(sfu_settings: Settings, tmp_path: Path, cpu_lock: Hold) -> None:
    """A network blip between the page and its node: the page rejoins and speaks and hears again."""
    api_settings = replace(sfu_settings, api_port=free_port())
    port = free_port()
    proxy = TcpProxy(port)
    # The node's public URL is the proxy: the page's signaling goes through it, media does not.
    settings = node(api_settings, "node-p", tmp_path, sfu_public_url=proxy.endpoint)
    settings = replace(settings, sfu_port=port)
    wav = tmp_path / "carol.wav"
    write_wav(wav, speech48k("We should probably order more coffee for the office kitchen.", VOICE_B, tail=0.5))
    heard_by_dan: list[float] = []

    async def scenario() -> None:
        with proxy.running():
            async with running_sfu(settings), running_api(api_settings) as api:
                async with httpx.AsyncClient(base_url=api) as http:
                    created = (await http.post("/spaces", json={"title": "Blip", "host": "dan"})).json()
                    invite = await http.post(
                        f"/spaces/{created['space_id']}/tokens",
                        json={"role": "speaker", "identity": "carol"},
                        headers={"Authorization": f"Bearer {created['token']}"},
                    )
                space_id = created["space_id"]
                # dan talks to the node directly, not through the proxy.
                dan = SpaceClient(
                    rtc_url(settings, space_id),
                    token(settings, space_id, "dan", Role.HOST),
                    track=PcmTrack(speech48k("The train leaves every hour.", VOICE_A), loop=True),
                    decode=False,
                    on_packet=lambda slot, packet, now: heard_by_dan.append(now),
                )
                await dan.connect()
                async with async_playwright() as pw:
                    browser = await launch_chromium(pw, wav, loop=True)
                    try:
                        page = await browser.new_page()
                        await page.goto(invite.json()["live_url"])
                        await page.click("#join")
                        await page.click("#consent-record")  # asked before the microphone goes live
                        await wait_for(page, "window.liveSpace.connection", "connected")
                        await wait_for(page, "window.liveSpace.packetsReceived()", lambda n: n > 20)
                        await dan.wait_for(lambda c: len(heard_by_dan) > 20)

                        async with alone_in_loop(cpu_lock):  # from the blip to audio flowing again
                            proxy.cut()  # the page's socket is reset; new connections are refused
                            await wait_for(page, "window.liveSpace.connection", "new")
                            await asyncio.sleep(1.0)
                            proxy.restore()
                            back = time.time()
                            await wait_for(page, "window.liveSpace.connection", "connected", timeout=BACK_WITHIN)
                            await wait_for(
                                page, "window.liveSpace.packetsReceived()", lambda n: n > 20, timeout=BACK_WITHIN
                            )
                            heard = time.time() - back
                            await dan.wait_for(lambda c: any(t > back for t in heard_by_dan), timeout=BACK_WITHIN)
                            spoke = min(t for t in heard_by_dan if t > back) - back
                            print(f"page: hears again {heard:.2f} s, heard again {spoke:.2f} s after the blip")
                            assert heard < BACK_WITHIN and spoke < BACK_WITHIN
                            events = await page.evaluate("window.liveSpace.events")
                            assert any(e["name"] == "reconnect" for e in events)
                            assert await page.evaluate("window.liveSpace.role") == "speaker"
                            assert [s["identity"] for s in dan.state["speakers"]].count("carol") == 1
                    finally:
                        await browser.close()
                await dan.close()

    asyncio.run(scenario())


def test_live_pages_come_back_after_their_node_restarts(sfu_settings: Settings, tmp_path: Path, cpu_lock: Hold) -> None:
    """SIGKILL of the node mid-space, then a restart: the pages rejoin the same room by themselves."""
    api_settings = replace(sfu_settings, api_port=free_port(), sfu_empty_timeout=30)
    settings = node(api_settings, "node-r", tmp_path)
    wav = tmp_path / "carol.wav"
    write_wav(wav, speech48k("We should probably order more coffee for the office kitchen.", VOICE_B, tail=0.5))
    log = tmp_path / "node.log"
    figures: dict[str, float] = {}
    space_id = ""

    async def scenario() -> None:
        nonlocal space_id
        async with running_api(api_settings) as api:
            with sfu_process(settings, log) as proc:
                async with httpx.AsyncClient(base_url=api) as http:
                    created = (await http.post("/spaces", json={"title": "Restart", "host": "dan"})).json()
                    invite = await http.post(
                        f"/spaces/{created['space_id']}/tokens",
                        json={"role": "speaker", "identity": "carol"},
                        headers={"Authorization": f"Bearer {created['token']}"},
                    )
                space_id = created["space_id"]
                async with async_playwright() as pw:
                    browser = await launch_chromium(pw, wav, loop=True)
                    try:
                        speaker, listener = await browser.new_page(), await browser.new_page()
                        await speaker.goto(invite.json()["live_url"])
                        await speaker.click("#join")
                        await speaker.click("#consent-record")  # asked before the microphone goes live
                        await wait_for(speaker, "window.liveSpace.connection", "connected")
                        await listener.goto(f"{api}/spaces/{space_id}/live")
                        await listener.click("#join")
                        await wait_for(listener, "window.liveSpace.connection", "connected")
                        await wait_for(listener, "window.liveSpace.packetsReceived()", lambda n: n > 20)
                        async with alone_in_loop(cpu_lock):  # from the crash's last segment to audio again
                            await asyncio.sleep(2.5)  # a segment of carol's recorded before the crash

                            proc.send_signal(signal.SIGKILL)
                            proc.wait(timeout=10)
                            for page in (speaker, listener):
                                await wait_for(page, "window.liveSpace.connection", "new")
                            with sfu_process(settings, log):
                                back = time.monotonic()
                                await wait_for(
                                    listener, "window.liveSpace.connection", "connected", timeout=BACK_WITHIN
                                )
                                await wait_for(
                                    listener,
                                    "window.liveSpace.packetsReceived()",
                                    lambda n: n > 20,
                                    timeout=BACK_WITHIN,
                                )
                                figures["audio_back_s"] = time.monotonic() - back
                                assert await speaker.evaluate("window.liveSpace.role") == "speaker"
                                stats = sfu_stats(settings)
                                (room,) = stats["rooms"]
                                assert room["space_id"] == space_id and room["participants"] == 2
                    finally:
                        await browser.close()

    asyncio.run(scenario())
    print(f"audio flows again {figures['audio_back_s']:.2f} s after the node is back")
    assert figures["audio_back_s"] < BACK_WITHIN
    # The node stopped at the end: the space is recorded, partial (the crash cost audio), one room clock.
    space = get_space(api_settings, space_id)
    assert space.state is SpaceState.RECORDED and space.partial and space.speakers == ("carol",)
    manifest = Manifest.from_dict(json.loads(open_blob_store(api_settings).get(keys.manifest(space_id))))
    assert [s for _, s in manifest.tracks] == ["carol", "carol"]  # before and after the crash
