"""A speaker's offers ask for the SFU's Opus bitrate on their publish m-line, and change nothing else.

That a browser then sends at that bitrate is ``tests/ingest/test_browser.py``'s
recorded speaker (real Chromium: 67 kb/s asked 64, 35 kb/s asked nothing).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription, sdp

from ingest.bitrate import ask_bitrate
from ingest.client import PcmTrack, SpaceClient
from ingest.fastpath import opus_only
from ingest.ice import rtc_configuration
from spaces.exceptions import ConfigError
from spaces.settings import Settings
from spaces.tokens import Role
from tests.support.sfu import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token, wait_until

FMTP = "a=fmtp:96 maxaveragebitrate=64000"


async def sfu_offer() -> tuple[str, list[str]]:
    """An offer as the SFU makes one (a speaker's publish m-line, a forwarding one; Opus only), and its mids."""
    pc = RTCPeerConnection(rtc_configuration())
    try:
        for direction in ("recvonly", "sendonly"):
            opus_only(pc.addTransceiver("audio", direction=direction))
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp, [str(t.mid) for t in pc.getTransceivers()]
    finally:
        await pc.close()


def opus_parameters(offer: str) -> list[dict[str, object]]:
    return [dict(media.rtp.codecs[0].parameters) for media in sdp.SessionDescription.parse(offer).media]


def test_the_publish_m_line_asks_for_the_bitrate_and_nothing_else_changes() -> None:
    offer, (publish, forward) = asyncio.run(sfu_offer())
    asked = ask_bitrate(offer, 64000, publish)
    added = [line for line in asked.splitlines() if line not in offer.splitlines()]
    assert added == [FMTP]
    assert [line for line in asked.splitlines() if line not in added] == offer.splitlines()
    assert opus_parameters(asked) == [{"maxaveragebitrate": "64000"}, {}]
    assert opus_parameters(ask_bitrate(offer, 48000, forward)) == [{}, {"maxaveragebitrate": "48000"}]


def test_nothing_to_ask_leaves_the_offer_as_aiortc_made_it() -> None:
    offer, (publish, _) = asyncio.run(sfu_offer())
    assert ask_bitrate(offer, 0, publish) == offer
    assert ask_bitrate(offer, 64000, None) == offer


def test_a_peer_answers_the_asking_offer() -> None:
    async def scenario() -> str:
        offer, (publish, _) = await sfu_offer()
        answerer = RTCPeerConnection(rtc_configuration())
        try:
            await answerer.setRemoteDescription(RTCSessionDescription(ask_bitrate(offer, 64000, publish), "offer"))
            await answerer.setLocalDescription(await answerer.createAnswer())
            return answerer.localDescription.sdp
        finally:
            await answerer.close()

    answer = asyncio.run(scenario())
    assert [m.rtp.codecs[0].mimeType for m in sdp.SessionDescription.parse(answer).media] == ["audio/opus"] * 2


def test_a_speaker_is_asked_and_a_listener_is_not(sfu_settings: Settings) -> None:
    """Through the real SFU, from its settings (not the default, so that a lost setting shows): the offers each
    client got."""
    settings = replace(sfu_settings, sfu_opus_bitrate=48000, sfu_empty_timeout=30)
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)

    async def scenario() -> tuple[str, str, str]:
        async with running_sfu(settings):
            track = PcmTrack(speech48k("Asked for more.", VOICE_A), loop=True)
            speaker = SpaceClient(url, token(settings, space_id, "ada", Role.HOST), track=track)
            listener = SpaceClient(url, token(settings, space_id, "bo", Role.LISTENER), decode=False)
            await speaker.connect()
            await listener.connect()
            try:
                # Both offers that follow the speaker's join: the listener's has her m-line.
                await wait_until(lambda: len(listener.pc.getTransceivers()) == 1, 15)
                await wait_until(lambda: speaker.answered_rev >= 1, 15)
                publish = next(t.mid for t in speaker.pc.getTransceivers() if t.direction == "sendonly")
                return speaker.pc.remoteDescription.sdp, str(publish), listener.pc.remoteDescription.sdp
            finally:
                await listener.close()
                await speaker.close()

    speaker_offer, publish, listener_offer = asyncio.run(scenario())
    media = sdp.SessionDescription.parse(speaker_offer).media
    assert [m.rtp.muxId for m in media if m.rtp.codecs[0].parameters] == [publish]
    assert opus_parameters(speaker_offer)[[m.rtp.muxId for m in media].index(publish)] == {"maxaveragebitrate": "48000"}
    assert opus_parameters(listener_offer) == [{}]


@pytest.mark.parametrize("bitrate", [5999, 510001, -1])
def test_a_bitrate_opus_cannot_send_is_refused(settings: Settings, bitrate: int) -> None:
    with pytest.raises(ConfigError, match="SPACES_SFU_OPUS_BITRATE"):
        replace(settings, sfu_opus_bitrate=bitrate).validate()


@pytest.mark.parametrize("bitrate", [0, 6000, 510000])
def test_the_bounds_and_zero_are_taken(settings: Settings, bitrate: int) -> None:
    replace(settings, sfu_opus_bitrate=bitrate).validate()
