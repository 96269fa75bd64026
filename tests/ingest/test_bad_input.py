"""Bad input on the signaling socket: clear errors, others keep being served, nothing recorded.

A speaker and a well-behaved listener stay in the room for the whole test
while misbehaving clients try malformed SDP, non-Opus answers, missing
ICE/DTLS attributes, messages out of order, bad/expired/other-space tokens,
a listener publishing or using host controls, oversize messages and a
flood of joins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from typing import Any

import pytest
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription

from ingest.client import PcmTrack, SpaceClient
from ingest.ice import rtc_configuration
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.models import Manifest, SpaceState
from spaces.settings import Settings
from spaces.tokens import Role
from tests.support.sfu import VOICE_A, get_space, make_space, rtc_url, running_sfu, speech48k, token


@pytest.fixture
def strict_settings(sfu_settings: Settings) -> Settings:
    return replace(sfu_settings, sfu_join_burst=30, sfu_empty_timeout=30, sfu_max_participants=40)


class Raw:
    """A bare WebSocket client speaking the protocol by hand."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str) -> Raw:
        return cls(await websockets.connect(url, max_size=1 << 22))

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                msg: dict[str, Any] = json.loads(await self.ws.recv())
                if msg["type"] == kind:
                    return msg

    async def error(self, code: str) -> dict[str, Any]:
        msg = await self.expect("error")
        assert msg["code"] == code, msg
        return msg

    async def closed_with(self, code: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            try:
                while True:
                    await self.ws.recv()
            except websockets.ConnectionClosed as e:
                assert e.rcvd is not None and e.rcvd.code == code, e

    async def close(self) -> None:
        await self.ws.close()


async def real_answer(offer: dict[str, Any]) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(rtc_configuration())
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc, pc.localDescription.sdp


def test_bad_input_is_refused_and_others_keep_going(strict_settings: Settings) -> None:
    settings = strict_settings
    space_id = make_space(settings)
    other_space = make_space(settings)
    source = speech48k("My sister is learning to play the piano this year.", VOICE_A, lead=0.5)
    url = rtc_url(settings, space_id)

    def tok(identity: str, role: Role, **kw: Any) -> str:
        return token(settings, space_id, identity, role, **kw)

    async def scenario() -> None:
        async with running_sfu(settings):
            speaker = SpaceClient(url, tok("alice", Role.HOST), track=PcmTrack(source, loop=True))
            good = SpaceClient(url, tok("good", Role.LISTENER))
            await speaker.connect()
            await good.connect()
            await good.wait_for(lambda c: bool(c.received) and next(iter(c.received.values())).packets > 20)

            # --- tokens and spaces -----------------------------------------------
            for bad_token in (
                "garbage",
                tok("x", Role.LISTENER, ttl=-30),
                token(settings, other_space, "x", Role.HOST),
            ):
                c = await Raw.open(url)
                await c.send({"type": "join", "token": bad_token})
                await c.error("unauthorized")
                await c.closed_with(4401)
            c = await Raw.open(rtc_url(settings, "no-such-space"))
            await c.send({"type": "join", "token": token(settings, "no-such-space", "x", Role.LISTENER)})
            await c.error("unknown_space")
            await c.closed_with(4404)

            # --- order and shape of messages ---------------------------------------
            c = await Raw.open(url)
            await c.send({"type": "answer", "rev": 1, "sdp": "v=0"})
            await c.error("out_of_order")
            await c.closed_with(4400)
            c = await Raw.open(url)
            await c.send("this is not json")
            await c.error("bad_message")
            await c.closed_with(4400)

            c = await Raw.open(url)
            await c.send({"type": "join", "token": tok("mallory", Role.LISTENER)})
            offer = await c.expect("offer")
            await c.send({"type": "join", "token": tok("mallory", Role.LISTENER)})
            await c.error("out_of_order")
            await c.send({"type": "fly"})
            await c.error("bad_message")
            await c.send({"type": "answer", "rev": offer["rev"] + 5, "sdp": "v=0\r\n"})
            await c.error("out_of_order")
            await c.send({"type": "answer", "rev": offer["rev"], "sdp": "v=0\r\nm=audio 9 garbage"})
            await c.error("bad_sdp")
            await c.send({"type": "answer", "rev": offer["rev"], "sdp": "\x00\x01 random bytes"})
            await c.error("bad_sdp")
            pc, answer = await real_answer(offer)
            no_opus = answer.replace("opus/48000/2", "PCMU/8000")
            await c.send({"type": "answer", "rev": offer["rev"], "sdp": no_opus})
            assert "Opus" in (await c.error("bad_sdp"))["message"]
            no_fp = "\r\n".join(line for line in answer.split("\r\n") if not line.startswith("a=fingerprint"))
            await c.send({"type": "answer", "rev": offer["rev"], "sdp": no_fp})
            assert "fingerprint" in (await c.error("bad_sdp"))["message"]
            no_ice = "\r\n".join(line for line in answer.split("\r\n") if not line.startswith("a=ice-pwd"))
            await c.send({"type": "answer", "rev": offer["rev"], "sdp": no_ice})
            assert "ICE" in (await c.error("bad_sdp"))["message"]
            # A listener answering "I will send" on a forwarding m-line.
            await c.send({"type": "answer", "rev": offer["rev"], "sdp": answer.replace("a=recvonly", "a=sendonly")})
            await c.error("forbidden")
            for control in (
                {"type": "end"},
                {"type": "promote", "identity": "mallory"},
                {"type": "remove", "identity": "alice"},
            ):
                await c.send(control)
                await c.error("forbidden")
            # The valid answer still works after all that.
            await c.send({"type": "answer", "rev": offer["rev"], "sdp": answer})
            await c.send({"type": "answer", "rev": offer["rev"], "sdp": answer})
            await c.error("out_of_order")
            await c.send("x" * 100_000)
            await c.closed_with(1009)
            await pc.close()

            # --- a flood of joins from one address ------------------------------------
            async def attempt(i: int) -> str:
                r = await Raw.open(url)
                try:
                    # A refused join is answered before the join is even read.
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await r.send({"type": "join", "token": tok(f"flood{i}", Role.LISTENER)})
                    msg = json.loads(await r.ws.recv())
                    return str(msg.get("code", msg["type"]))
                except websockets.ConnectionClosed as e:
                    return "too_many" if e.rcvd is not None and e.rcvd.code == 4429 else f"closed {e}"
                finally:
                    await r.close()

            outcomes = await asyncio.gather(*(attempt(i) for i in range(60)))
            assert "too_many" in outcomes and "welcome" in outcomes, outcomes

            # --- everyone else was served throughout ---------------------------------
            before = sum(r.packets for r in good.received.values())
            await asyncio.sleep(1.0)
            after = sum(r.packets for r in good.received.values())
            assert after - before > 35, "the good listener stopped receiving"
            assert not good.errors and not speaker.errors
            assert get_space(settings, space_id).state is SpaceState.LIVE
            await speaker.send({"type": "end"})
            await good.wait_for(lambda c: any(m["type"] == "ended" for m in c.messages))
            await speaker.close()
            await good.close()
            for _ in range(100):
                if get_space(settings, space_id).state is SpaceState.RECORDED:
                    break
                await asyncio.sleep(0.1)

    asyncio.run(scenario())
    manifest = Manifest.from_dict(json.loads(open_blob_store(settings).get(keys.manifest(space_id))))
    assert [speaker for _, speaker in manifest.tracks] == ["alice"], "something recorded from another participant"


def test_deeply_nested_json_gets_a_clear_error_and_the_socket_stays(sfu_settings: Settings) -> None:
    """A message nested past the parser's recursion is a ``bad_message``, not a traceback and a closed socket."""
    settings = sfu_settings
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)
    nested = "[" * 60_000  # within the 64 KiB frame limit

    async def scenario() -> None:
        async with running_sfu(settings):
            c = await Raw.open(url)
            await c.send({"type": "join", "token": token(settings, space_id, "nester", Role.LISTENER)})
            await c.expect("welcome")
            await c.send(nested)
            assert "nested too deeply" in (await c.error("bad_message"))["message"]
            await c.send({"type": "ping"})
            await c.expect("pong")
            await c.close()
            # As the join message: refused with the same clear error.
            c = await Raw.open(url)
            await c.send(nested)
            assert "nested too deeply" in (await c.error("bad_message"))["message"]
            await c.closed_with(4400)

    asyncio.run(scenario())


def test_a_token_naming_a_multi_line_identity_is_refused(sfu_settings: Settings) -> None:
    """The API never signs such a name; the SFU refuses one signed elsewhere all the same."""
    settings = sfu_settings
    space_id = make_space(settings)

    async def scenario() -> None:
        async with running_sfu(settings):
            for name in ("eve\u2028alice", "eve\u0085alice", "x" * 65):
                c = await Raw.open(rtc_url(settings, space_id))
                await c.send({"type": "join", "token": token(settings, space_id, name, Role.LISTENER)})
                assert "name" in (await c.error("unauthorized"))["message"]
                await c.closed_with(4401)

    asyncio.run(scenario())
