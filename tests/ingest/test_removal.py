"""A participant the host removes stays out: not under the same token, nor under a new name.

Removal used to ban only the name: the removed listener asked the API for a
token under another name and was back at once. Now the SFU bans the token
(by its id, in the catalog, so every SFU node and a reopened room know it)
and every name it used, and records the client's address; the API gives
that address no new token for the space. Others, elsewhere, still get in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ingest.client import PcmTrack, SpaceClient
from replay_api.app import create_app
from spaces.settings import Settings
from tests.ingest.test_identity import refused
from tests.ingest.test_participant_cap import until
from tests.support.sfu import VOICE_A, running_sfu, speech48k

#: The tests' SFU clients come from loopback; so does the removed one's browser.
SAME_ADDRESS = ("127.0.0.1", 50000)
ELSEWHERE = ("198.51.100.9", 50000)


@pytest.fixture
def apis(sfu_settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """The API as seen from the removed participant's address, and from another one."""
    app = create_app(sfu_settings)
    with TestClient(app, client=SAME_ADDRESS) as here, TestClient(app, client=ELSEWHERE) as there:
        yield here, there


def test_removal_holds_for_the_token_and_its_holder(
    sfu_settings: Settings, apis: tuple[TestClient, TestClient]
) -> None:
    here, there = apis

    async def scenario() -> None:
        # The SFU first: the API places new spaces on the live nodes it registered.
        async with running_sfu(sfu_settings):
            created = here.post("/spaces", json={"title": "Removal", "host": "alice"}).json()
            space_id, url = str(created["space_id"]), str(created["rtc_url"])
            tokens_url = f"/spaces/{space_id}/tokens"
            mallory_token = here.post(tokens_url, json={"role": "listener", "identity": "mallory"}).json()["token"]
            alice = SpaceClient(url, str(created["token"]), track=PcmTrack(speech48k("Hello.", VOICE_A), loop=True))
            mallory = SpaceClient(url, mallory_token)
            await alice.connect()
            await mallory.connect()
            # She offers a name with her hand: it is hers (and will be banned with her).
            await mallory.send({"type": "hand", "raised": True, "name": "Mal"})
            await until(lambda: alice.state.get("hand_names") == {"mallory": "Mal"})

            await alice.send({"type": "remove", "identity": "mallory"})
            await asyncio.wait_for(mallory.closed.wait(), 5)
            assert [e["code"] for e in mallory.errors] == ["removed"]
            await mallory.close()

            # Not with her token...
            assert await refused(SpaceClient(url, mallory_token)) == "ended"
            # ...nor with a new one under another name: the API refuses her address.
            await until(lambda: here.post(tokens_url, json={"role": "listener"}).status_code == 403)
            again = here.post(tokens_url, json={"role": "listener", "identity": "totally-not-mallory"})
            assert again.status_code == 403 and "removed" in again.json()["error"]["message"], again.text
            # The host still invites from anywhere; others still listen, but not as "Mal" (hers).
            host_auth = {"Authorization": f"Bearer {created['token']}"}
            assert (
                here.post(tokens_url, json={"role": "speaker", "identity": "bob"}, headers=host_auth).status_code == 200
            )
            assert there.post(tokens_url, json={"role": "listener", "identity": "Mal"}).status_code == 409
            lena = there.post(tokens_url, json={"role": "listener", "identity": "lena"})
            assert lena.status_code == 200
            listener = SpaceClient(url, lena.json()["token"])
            await listener.connect()
            assert listener.welcome is not None and not listener.errors
            for c in (alice, listener):
                await c.close()

    asyncio.run(scenario())
