"""The room agent as it really runs: an rq job on the live queue, in a worker process, killed mid-space.

A real SFU enqueues ``live_room`` when the room opens; two ``spaces worker
--live`` processes serve the queue. Killing the agent's work-horse drops its
connection; the SFU sends another agent in, and captions go on from the
other worker, with nothing captioned twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from rq import Worker

from ingest.client import PcmTrack, SpaceClient
from spaces import queue
from spaces.settings import Settings
from spaces.tokens import Role
from tests.exclusive import Hold
from tests.support.services import free_port
from tests.support.sfu import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token
from tests.support.workers import Workers, work_horses

SENTENCES = (
    "The weather was lovely this morning, so we walked down to the river.",
    "Our team finished the project two weeks ahead of schedule.",
    "I read a wonderful book about the history of the ocean.",
)


def captions(client: SpaceClient) -> list[tuple[float, dict[str, Any]]]:
    return [(at, m) for at, m in client.timed_messages if m.get("type") == "caption"]


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return replace(settings, sfu_port=free_port(), sfu_empty_timeout=30, sfu_ice_addresses="127.0.0.1")


def wait_registered(settings: Settings, count: int, timeout: float = 60) -> None:
    """Until ``count`` workers serve the live queue: started (imports, model checked) and listening."""
    live = queue.live_queue(settings)
    deadline = time.monotonic() + timeout
    while len(Worker.all(queue=live)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} live workers after {timeout:.0f} s"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_killed_agent_is_replaced_and_captions_go_on(
    live_settings: Settings, workers: Workers, cpu_lock: Hold
) -> None:
    settings = replace(live_settings, workers=1)
    env = {"SPACES_SFU_PORT": str(settings.sfu_port), "SPACES_WORKERS": "1", "SPACES_WHISPER_THREADS": "1"}
    first = workers.start(live=True, **env)
    second = workers.start(live=True, **env)
    # Their start shares the CPUs; the space, the kill and the captions' resumption run alone.
    wait_registered(settings, 2)
    with cpu_lock.alone():
        asyncio.run(_scenario(settings, first, second))


async def _scenario(settings: Settings, *worker_procs: subprocess.Popen[bytes]) -> None:
    space_id = make_space(settings)
    # Speech with pauses, over and over: each sentence is one utterance, one final caption.
    speech = [speech48k(s, VOICE_A, lead=0.5, tail=1.5) for s in SENTENCES]
    track = PcmTrack(np.concatenate(speech), loop=True)
    async with running_sfu(settings):
        url = rtc_url(settings, space_id)
        alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST), track=track)
        carol = SpaceClient(url, token(settings, space_id, "carol", Role.LISTENER), decode=False)
        await alice.connect()
        await carol.connect()
        # The room enqueued its agent; one of the workers runs it.
        await carol.wait_for(lambda c: any(m["final"] for _, m in captions(c)), timeout=90)
        busy = [p for p in worker_procs if work_horses(p.pid)]
        assert len(busy) == 1, "exactly one worker runs the room's agent"
        killed_at = time.time()
        for pid in work_horses(busy[0].pid):
            os.kill(pid, signal.SIGKILL)
        # Another agent joins and captions resume. The bound is 5 s on a quiet
        # machine (the bench measures it); with headroom for a loaded one here.
        await carol.wait_for(lambda c: any(at > killed_at + 0.5 for at, _ in captions(c)), timeout=30)
        resumed = min(at for at, _ in captions(carol) if at > killed_at + 0.5) - killed_at
        await carol.wait_for(lambda c: sum(m["final"] for at, m in captions(c) if at > killed_at) >= 1, timeout=60)
        await alice.send({"type": "end"})
        await asyncio.wait_for(carol.closed.wait(), 30)
        await alice.close()
        await carol.close()
    finals = sorted((m for _, m in captions(carol) if m["final"]), key=lambda m: m["start"])
    assert len(finals) >= 2
    # Nothing captioned twice: no two final captions cover the same stretch of the room clock.
    for a, b in zip(finals, finals[1:], strict=False):
        assert b["start"] >= a["end"] - 0.05, (a["text"], b["text"])
    assert resumed < 20, f"captions resumed {resumed:.1f} s after the agent was killed"
    print(f"captions resumed {resumed:.1f} s after the kill")
