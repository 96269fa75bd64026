"""Past the WebRTC listener cap a listener is sent to the room's HLS, not refused.

With a room agent writing HLS (``live_hls``, the default), the listener one
past ``sfu_max_participants`` gets ``{"type": "hls"}`` and a 4303 close
instead of ``too_many``: the page then plays the space's ``hls_url``. The
host and speakers still always get in; those inside carry on.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from ingest.client import SpaceClient
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.test_participant_cap import refused_join
from tests.support.sfu import make_space, rtc_url, running_sfu, token

CAP = 2


def test_the_listener_past_the_cap_is_sent_to_hls(sfu_settings: Settings) -> None:
    settings = replace(sfu_settings, sfu_max_participants=CAP, sfu_empty_timeout=30, live_hls=1, live_captions=1)
    asyncio.run(_past_the_cap(settings))


async def _past_the_cap(settings: Settings) -> None:
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)
    async with running_sfu(settings):
        alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST), decode=False)
        lena = SpaceClient(url, token(settings, space_id, "lena", Role.LISTENER), decode=False)
        await alice.connect()
        await lena.connect()
        assert lena.welcome is not None and not lena.errors, lena.errors
        first, code = await refused_join(url, token(settings, space_id, "dave", Role.LISTENER))
        assert first == {
            "type": "hls",
            "reason": "full",
            "message": f"the space's {CAP} WebRTC seats are taken: listen over HLS",
        }, first
        assert code == 4303
        # A speaker the host invites still gets in past the cap.
        bob = SpaceClient(url, token(settings, space_id, "bob", Role.SPEAKER), decode=False)
        await bob.connect()
        assert bob.welcome is not None and not bob.errors, bob.errors
        assert not alice.errors and not lena.errors
        await alice.send({"type": "end"})
        for c in (alice, lena, bob):
            await c.wait_for(lambda c: any(m["type"] == "ended" for m in c.messages))
            await c.close()
