"""The room agent's live HLS in a real live space: a known sentence in, a playlist ffprobe reads out.

A real SFU, a speaker sending a known espeak-ng sentence, and the real
``RoomAgent`` (real model, local blob store): while the space is live its
playlist grows without an end; when it ends the playlist is closed, the
sentence is in the audio where it was said on the room clock, and its words
are in the subtitle rendition.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ingest.client import PcmTrack, SpaceClient
from spaces import hls
from spaces.blobstore import open_blob_store
from spaces.settings import Settings
from spaces.tokens import Role
from tests.support.services import TEST_MODEL, free_port
from tests.support.sfu import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token
from tests.workers.test_hls import RATE, decode, listed, probe, rms_db
from transcribe.model import load_model
from workers.agent import RoomAgent

LEAD = 1.0
SENTENCE = "Our team finished the project two weeks ahead of schedule."


@pytest.fixture
def agent_settings(settings: Settings) -> Settings:
    # live_captions off: the test sends its own agent in, rather than a queue nobody serves.
    return replace(settings, sfu_port=free_port(), sfu_empty_timeout=30, sfu_ice_addresses="127.0.0.1", live_captions=0)


@pytest.mark.slow
def test_a_live_space_becomes_a_playlist_closed_when_it_ends(agent_settings: Settings) -> None:
    asyncio.run(_live_space_as_hls(agent_settings))


async def _live_space_as_hls(settings: Settings) -> None:
    space_id = make_space(settings)
    blobs = open_blob_store(settings)
    audio_key = hls.key(space_id, hls.AUDIO)
    source = speech48k(SENTENCE, VOICE_A, lead=LEAD, tail=5.0)
    track = PcmTrack(source)
    async with running_sfu(settings):
        url = rtc_url(settings, space_id)
        alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST), track=track)
        agent = RoomAgent(settings=settings, space_id=space_id, rtc_url=url, model=load_model(TEST_MODEL))
        await alice.connect()
        running = asyncio.get_running_loop().create_task(agent.run())
        deadline = time.monotonic() + 30
        while not (blobs.exists(audio_key) and len(listed(blobs.get(audio_key).decode())) >= 2):
            assert time.monotonic() < deadline, "no live playlist"
            await asyncio.sleep(0.1)
        live = blobs.get(audio_key).decode()
        assert "#EXT-X-ENDLIST" not in live
        assert all(blobs.exists(hls.key(space_id, n)) for n in listed(live))
        while track.started_at is None or time.time() < track.started_at + len(source) / 48000:
            await asyncio.sleep(0.1)
        await alice.send({"type": "end"})
        await asyncio.wait_for(running, 60)
        await alice.close()
    root = Path(settings.data_dir) / "blobs"
    closed = blobs.get(audio_key).decode()
    assert closed.rstrip().endswith("#EXT-X-ENDLIST")
    master = probe(root / hls.key(space_id, hls.MASTER), "format=duration", "stream=codec_name")
    assert [s["codec_name"] for s in master["streams"]] == ["aac"]
    playlist = hls.MediaPlaylist.parse(closed, ext="ts")
    assert float(master["format"]["duration"]) == pytest.approx(sum(e.duration for e in playlist.entries), abs=0.3)

    # The sentence is where alice said it on the room clock.
    mix = decode(root / audio_key)
    first = playlist.entries[0].start
    said = (track.started_at or 0) - agent._clock0 + LEAD
    window = 0.05
    levels = [
        rms_db(mix[round((t - first) * RATE) : round((t - first + window) * RATE)])
        for t in np.arange(first, said + 3, window)
    ]
    onset = first + window * next(i for i, db in enumerate(levels) if db > -45)
    assert abs(onset - said) < 0.5, (onset, said)

    vtt = "".join(
        blobs.get(hls.key(space_id, n)).decode() for n in listed(blobs.get(hls.key(space_id, hls.SUBS)).decode())
    )
    assert "<v alice>" in vtt and "team" in vtt.lower() and "project" in vtt.lower(), vtt
