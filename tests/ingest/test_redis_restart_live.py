"""Redis restarts while a live space ends: the SFU still hands the space to the pipeline.

A real SFU (``python -m ingest``) talks to a redis-server of the test's own.
Redis stops while a speaker talks; the host ends the space while Redis is
down; the SFU keeps the space recorded (the catalog and blob store do not
need Redis) and retries enqueueing its ``finalize`` job until Redis is back,
then the job is there, once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

from rq import Queue

from ingest.client import PcmTrack, SpaceClient
from spaces.models import SpaceState
from spaces.queue import connect, job_id
from spaces.settings import Settings
from spaces.tokens import Role
from tests.support.faults import RedisServer
from tests.support.sfu import VOICE_A, get_space, make_space, rtc_url, sfu_process, speech48k, token

REDIS_DOWN_SECONDS = 10.0


def test_space_ended_while_redis_is_down_is_enqueued_once_it_is_back(sfu_settings: Settings, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = replace(sfu_settings, redis_url=redis.url)
    space_id = make_space(settings, title="Redis away")
    log_path = tmp_path / "sfu.log"
    try:
        with sfu_process(settings, log_path) as proc:

            async def scenario() -> None:
                alice = SpaceClient(
                    rtc_url(settings, space_id),
                    token(settings, space_id, "alice", Role.HOST),
                    track=PcmTrack(speech48k("Please remember to bring your notebook.", VOICE_A), loop=True),
                )
                await alice.connect()
                await asyncio.sleep(2.0)
                redis.stop()
                stopped = time.monotonic()
                await asyncio.sleep(2.0)
                await alice.send({"type": "end"})
                await alice.wait_for(lambda c: any(m["type"] == "ended" for m in c.messages))
                await alice.close()
                deadline = time.monotonic() + 20
                while get_space(settings, space_id).state is not SpaceState.RECORDED:
                    assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                    await asyncio.sleep(0.2)
                await asyncio.sleep(max(0.0, REDIS_DOWN_SECONDS - (time.monotonic() - stopped)))

            asyncio.run(scenario())
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert not redis.up()
            redis.start()

            queue = Queue(settings.queue_name, connection=connect(settings))
            deadline = time.monotonic() + 60
            while job_id(space_id, "finalize") not in queue.job_ids:
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.2)
            time.sleep(2.0)  # no second one follows
            assert queue.job_ids.count(job_id(space_id, "finalize")) == 1
            assert queue.count == 1
            assert proc.poll() is None
    finally:
        redis.stop()
