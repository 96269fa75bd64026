"""SIGKILL of a real SFU process mid-space, then a restart: nothing but the last moments lost.

The SFU runs as ``python -m ingest``; two aiortc speakers talk to it; the
test kills it with SIGKILL, starts a new one on the same spool, and checks
that recovery uploaded the spool, lost at most 2 s per speaker, produced
playable segments, and finalized the space as recorded *and partial*; then
a real worker transcribes it, and the API and replay page mark it partial.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

from fastapi.testclient import TestClient
from rq import Queue

from ingest.client import PcmTrack, SpaceClient
from replay_api.app import create_app
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.models import Manifest, SpaceState, Track, Transcript
from spaces.queue import connect, job_id
from spaces.settings import Settings
from spaces.tokens import Role
from tests.exclusive import Hold
from tests.ingest.audio import decode_ogg, locate, low, render_track
from tests.support.sfu import (
    VOICE_A,
    VOICE_B,
    get_space,
    make_space,
    rtc_url,
    sfu_process,
    speech48k,
    token,
)
from tests.support.workers import Workers, finished, wait_for

MAX_LOSS = 2.0


def test_sigkill_mid_space_loses_at_most_two_seconds(sfu_settings: Settings, tmp_path: Path, cpu_lock: Hold) -> None:
    settings = sfu_settings
    space_id = make_space(settings, title="Crash")
    sources = {
        "alice": speech48k("Please remember to bring your notebook to the meeting tomorrow.", VOICE_A, tail=0.3),
        "bob": speech48k("The train to the city leaves every hour from platform four.", VOICE_B, tail=0.3),
    }
    tracks = {name: PcmTrack(s, loop=True) for name, s in sources.items()}
    log = tmp_path / "sfu.log"
    killed_at = 0.0

    # Alone while the speakers talk: what the SFU wrote before the kill is measured against real time.
    # Recovery, the checks and the pipeline after share the CPUs.
    with cpu_lock.alone(), sfu_process(settings, log) as proc:

        async def talk_then_kill() -> None:
            nonlocal killed_at
            url = rtc_url(settings, space_id)
            alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST), track=tracks["alice"])
            bob = SpaceClient(url, token(settings, space_id, "bob", Role.SPEAKER), track=tracks["bob"])
            await alice.connect()
            await bob.connect()
            await asyncio.sleep(5.5)
            killed_at = time.time()
            proc.send_signal(signal.SIGKILL)
            await asyncio.sleep(0.5)
            await alice.close()
            await bob.close()

        asyncio.run(talk_then_kill())
        assert proc.wait(timeout=10) == -signal.SIGKILL

    spool = settings.spool_dir / space_id
    assert (spool / "room.json").exists(), "nothing on the spool after the kill"
    assert get_space(settings, space_id).state is SpaceState.LIVE

    with sfu_process(settings, log):
        deadline = time.monotonic() + 30
        while get_space(settings, space_id).state is not SpaceState.RECORDED:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

        # The recovered space can no longer be joined.
        async def try_join() -> list[dict[str, object]]:
            c = SpaceClient(rtc_url(settings, space_id), token(settings, space_id, "late", Role.LISTENER))
            await c.connect()
            await c.closed.wait()
            await c.close()
            return c.errors

        errors = asyncio.run(try_join())
        assert errors and errors[0]["code"] == "ended"

    space = get_space(settings, space_id)
    assert space.partial and set(space.speakers) == {"alice", "bob"}
    assert not spool.exists(), "spool not cleared after recovery"
    blobs = open_blob_store(settings)
    manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(space_id))))
    assert manifest.partial
    kill_room_time = killed_at - manifest.started_at
    for track_id, speaker in manifest.tracks:
        track = Track.from_dict(json.loads(blobs.get(keys.track_manifest(space_id, track_id))))
        assert track.segments, speaker
        lost = kill_room_time - track.end
        print(f"{speaker}: {lost:.2f} s lost before the kill")
        assert lost <= MAX_LOSS, f"{speaker}: {lost:.2f} s lost before the kill"
        segments = {s.seq: blobs.get(s.key) for s in track.segments}
        for seg in track.segments:
            decoded = decode_ogg(segments[seg.seq])
            assert abs(len(decoded) / 48000 - seg.duration) < 0.05, f"{seg.key} does not play its duration"
        started = tracks[speaker].started_at
        assert started is not None
        timeline = render_track(track, segments, track.end)
        match = locate(timeline, low(sources[speaker]))
        assert match.score > 0.6
        # The source loops, so any repetition may match best: the placement is
        # right when the lag is the start's offset plus whole loops.
        period = len(sources[speaker]) / 48000
        off = (match.lag - (started - manifest.started_at)) % period
        assert min(off, period - off) < 0.04, f"{speaker} placed at {match.lag:.3f} s of the room"

    queue = Queue(settings.queue_name, connection=connect(settings))
    workers = Workers(settings)
    try:
        assert job_id(space_id, "finalize") in queue.job_ids
        # Processed like any space: transcribed, and marked partial where people see it.
        workers.start()
        done = wait_for(open_catalog(settings), space_id, finished, timeout=180)
        assert done.state is SpaceState.READY and done.partial, done.error
        transcript = Transcript.from_dict(json.loads(blobs.get(keys.transcript(space_id))))
        said = {s: {w.text.strip(".,").lower() for w in transcript.words if w.speaker == s} for s in sources}
        assert {"notebook", "meeting"} & said["alice"], said
        assert {"train", "platform"} & said["bob"], said
        with TestClient(create_app(settings)) as api:
            assert api.get(f"/spaces/{space_id}").json()["partial"] is True
            assert "Partial recording" in api.get(f"/spaces/{space_id}/replay").text
    finally:
        workers.stop_all()
        queue.delete(delete_jobs=True)
