"""The SFU's ``/stats``: totals for anyone, per-room detail only with the operator token.

Per-room detail names live spaces, private ones too, and who publishes in
them; before, anyone who could reach the SFU read it.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from typing import Any

import httpx

from ingest.client import PcmTrack, SpaceClient
from spaces.models import Visibility
from spaces.settings import Settings
from spaces.tokens import Role
from tests.support.sfu import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token


def test_stats_show_rooms_only_to_the_operator(sfu_settings: Settings) -> None:
    operator = secrets.token_urlsafe(32)
    settings = replace(sfu_settings, sfu_empty_timeout=30, operator_token=operator)
    space_id = make_space(settings, title="Board meeting", visibility=Visibility.PRIVATE)
    base = f"http://127.0.0.1:{settings.sfu_port}"
    host = SpaceClient(
        rtc_url(settings, space_id),
        token(settings, space_id, "margaret-hidden", Role.HOST),
        track=PcmTrack(speech48k("The numbers are not public yet.", VOICE_A), loop=True),
    )

    async def scenario() -> None:
        async with running_sfu(settings), httpx.AsyncClient(base_url=base) as http:
            await host.connect()

            async def stats(**headers: str) -> httpx.Response:
                return await http.get("/stats", headers=headers)

            async def publishing() -> dict[str, Any]:
                while True:
                    body: dict[str, Any] = (await stats(Authorization=f"Bearer {operator}")).json()
                    if body["totals"]["recorded_packets"] > 0:
                        return body
                    await asyncio.sleep(0.05)

            detail = await asyncio.wait_for(publishing(), 20)
            rooms = {r["space_id"]: r for r in detail["rooms"]}
            assert rooms[space_id]["participants"] == 1
            assert [s["publisher"] for s in rooms[space_id]["slots"] if s["publisher"]] == ["margaret-hidden"]

            anyone = await stats()
            assert anyone.status_code == 200
            body = anyone.json()
            assert set(body) == {"uptime", "cpu_seconds", "node", "loop", "joins", "totals"}  # nothing per room
            assert body["totals"]["rooms"] == 1 and body["totals"]["participants"] == 1
            assert body["totals"]["publishers"] == 1 and body["totals"]["recorded_packets"] > 0
            assert space_id not in anyone.text and "margaret" not in anyone.text

            for wrong in (f"Bearer {operator[:-1]}", "Bearer", f"Basic {operator}", f"Bearer {settings.secret_key}"):
                refused = await stats(Authorization=wrong)
                assert refused.status_code == 401, wrong
                assert space_id not in refused.text
            await host.close()

    asyncio.run(scenario())


def test_without_an_operator_token_nobody_gets_room_detail(sfu_settings: Settings) -> None:
    settings = replace(sfu_settings, operator_token="")
    make_space(settings)

    async def scenario() -> None:
        async with running_sfu(settings), httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.sfu_port}") as http:
            assert (await http.get("/stats", headers={"Authorization": "Bearer"})).status_code == 401
            assert (await http.get("/stats", headers={"Authorization": "Bearer x"})).status_code == 401
            body = (await http.get("/stats")).json()
            assert "rooms" not in body and body["totals"]["rooms"] == 0

    asyncio.run(scenario())
