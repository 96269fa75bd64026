"""Search while live, through the whole stack (``spaces up``: SFU, API, pipeline and live workers).

A word is found by ``/search`` seconds after it was said, linking to the live
page; after the end the pipeline's transcript replaces the live turns, and
the word is found exactly once, linking into the replay at that moment.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from ingest.client import PcmTrack, SpaceClient
from tests.exclusive import Hold
from tests.support.sfu import VOICE_A, speech48k
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

SENTENCES = (
    "The weather was lovely this morning, so we walked down to the river.",
    "Our team finished the project two weeks ahead of schedule.",
)


def hits(stack: Stack, space_id: str, word: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stack.get("/search", q=word, space=space_id).json()["hits"]
    return found


def test_a_word_is_found_while_live_and_exactly_once_after_the_pipeline(stack: Stack, cpu_lock: Hold) -> None:
    created = stack.post("/spaces", {"title": "Searched live", "host": "alice"}).json()
    space_id = created["space_id"]
    # Sentences with pauses, over and over: the room agent is an rq job started when the
    # room opens, and on a loaded machine it may miss the first ones.
    track = PcmTrack(np.concatenate([speech48k(s, VOICE_A, lead=0.5, tail=1.5) for s in SENTENCES]), loop=True)
    live: list[dict[str, Any]] = []
    word = ""

    async def talk() -> None:
        nonlocal word
        host = SpaceClient(created["rtc_url"], created["token"], track=track, decode=False)
        await host.connect()
        # The room agent (a live worker) joins when the room opens; its final caption reaches
        # every participant. One of its words (the longest, as heard: the agent may have
        # joined mid-sentence) is found while the space is still on air.
        await host.wait_for(lambda c: any(m["type"] == "caption" and m["final"] for m in c.messages), timeout=90)
        final = next(m for m in host.messages if m["type"] == "caption" and m["final"])
        word = max((w["text"].strip(".,!?").lower() for w in final["words"]), key=len)
        deadline = time.monotonic() + 10
        while not (found := await asyncio.to_thread(hits, stack, space_id, word)):
            assert time.monotonic() < deadline, f"{word!r} not found while live"
            await asyncio.sleep(0.1)
        live.extend(found)
        await host.send({"type": "end"})
        await host.wait_for(lambda c: any(m["type"] == "ended" for m in c.messages), timeout=15)
        await host.close()

    with cpu_lock.alone():  # captions and search within seconds of the speech; the pipeline after shares the CPUs
        asyncio.run(talk())
    assert live and all(h["speaker"] == "alice" and h["live"] for h in live), live
    assert live[0]["link"] == f"/spaces/{space_id}/live"
    assert "<mark>" in live[0]["snippet"]

    space = stack.wait_state(space_id, {"ready", "failed"})
    assert space["state"] == "ready", space
    after = sorted(hits(stack, space_id, word), key=lambda h: h["start"])
    assert after and all(not h["live"] for h in after), after  # the live turns were replaced
    assert all(h["link"] == f"/spaces/{space_id}/replay?t={h['start']:.2f}" for h in after)
    # Each moment once: no two hits cover the same stretch of the room clock (a live turn
    # kept beside the transcript's would).
    for a, b in zip(after, after[1:], strict=False):
        assert b["start"] >= a["end"], after
