"""A node's media sockets stay inside its UDP port range (``SPACES_SFU_UDP_PORTS``)."""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import replace

from ingest.client import PcmTrack, SpaceClient
from spaces.settings import Settings
from spaces.tokens import Role
from tests.support.sfu import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token


def test_ice_candidates_use_the_nodes_port_range(sfu_settings: Settings) -> None:
    low = random.randrange(20_000, 31_000, 100)  # below the kernel's ephemeral range
    settings = replace(sfu_settings, sfu_udp_ports=f"{low}-{low + 9}")
    space_id = make_space(settings)

    async def scenario() -> list[int]:
        async with running_sfu(settings):
            clients = [
                SpaceClient(
                    rtc_url(settings, space_id),
                    token(settings, space_id, name, role),
                    track=PcmTrack(speech48k("Hello there.", VOICE_A), loop=True) if role is Role.HOST else None,
                    decode=False,
                )
                for name, role in (("host", Role.HOST), ("l1", Role.LISTENER), ("l2", Role.LISTENER))
            ]
            for c in clients:
                await c.connect()
            await clients[1].wait_for(lambda c: any(r.packets > 10 for r in c.received.values()))
            ports = [
                int(port)
                for c in clients
                for m in c.messages
                if m["type"] == "offer"
                for port in re.findall(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", m["sdp"])
            ]
            for c in clients:
                await c.close()
            return ports

    ports = asyncio.run(scenario())
    assert len(set(ports)) == 3, ports  # one socket per participant
    assert all(low <= p <= low + 9 for p in ports), ports
