"""The SFU's offers ask for its Opus bitrate, and change nothing else.

That a browser then sends at that bitrate is ``tests/ingest/test_browser.py``'s
recorded speaker (real Chromium: 67 kb/s asked 64, 35 kb/s asked nothing).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription, sdp

from ingest.bitrate import ask_bitrate
from ingest.fastpath import opus_only
from spaces.exceptions import ConfigError
from spaces.settings import Settings


async def sfu_offer() -> str:
    """An offer as the SFU makes one: a speaker's publish m-line and a forwarding one, Opus only."""
    pc = RTCPeerConnection()
    try:
        for direction in ("recvonly", "sendonly"):
            opus_only(pc.addTransceiver("audio", direction=direction))
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


def test_the_offer_asks_for_the_bitrate_on_every_m_line_and_is_otherwise_the_same() -> None:
    offer = asyncio.run(sfu_offer())
    asked = ask_bitrate(offer, 64000)
    added = [line for line in asked.splitlines() if line not in offer.splitlines()]
    assert added == ["a=fmtp:96 maxaveragebitrate=64000"] * 2
    assert [line for line in asked.splitlines() if line not in added] == offer.splitlines()
    for media in sdp.SessionDescription.parse(asked).media:
        (opus,) = media.rtp.codecs
        assert opus.parameters == {"maxaveragebitrate": "64000"}


def test_no_bitrate_leaves_the_offer_as_aiortc_made_it() -> None:
    offer = asyncio.run(sfu_offer())
    assert ask_bitrate(offer, 0) == offer


def test_a_peer_answers_the_asking_offer() -> None:
    async def scenario() -> str:
        answerer = RTCPeerConnection()
        try:
            await answerer.setRemoteDescription(RTCSessionDescription(ask_bitrate(await sfu_offer(), 64000), "offer"))
            await answerer.setLocalDescription(await answerer.createAnswer())
            return answerer.localDescription.sdp
        finally:
            await answerer.close()

    answer = asyncio.run(scenario())
    assert [m.rtp.codecs[0].mimeType for m in sdp.SessionDescription.parse(answer).media] == ["audio/opus"] * 2


@pytest.mark.parametrize("bitrate", [5999, 510001, -1])
def test_a_bitrate_opus_cannot_send_is_refused(settings: Settings, bitrate: int) -> None:
    with pytest.raises(ConfigError, match="SPACES_SFU_OPUS_BITRATE"):
        replace(settings, sfu_opus_bitrate=bitrate).validate()
