"""The room agent in a real live space: captions reach listeners, the agent stays invisible.

A real SFU, a speaker sending a known espeak-ng sentence, a listener, and the
agent (the real ``RoomAgent`` with the real model) joined as any participant.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from ingest.client import PcmTrack, SpaceClient
from spaces import live_captions
from spaces.catalog import open_catalog
from spaces.models import Caption
from spaces.settings import Settings
from spaces.tokens import Role
from tests.speech import SENTENCES, VOICES, synthesize, word_error_rate
from tests.support.services import TEST_MODEL, free_port
from tests.support.sfu import VOICE_A, get_space, make_space, rtc_url, running_sfu, speech48k, token
from transcribe.audio import SAMPLE_RATE
from transcribe.model import load_model
from transcribe.revision import Reviser, RevisionOptions
from workers.agent import AGENT_IDENTITY, REVISE_NICE, CaptionMaker, RoomAgent

RATE = 48000
LEAD = 1.0
SENTENCE = "Our team finished the project two weeks ahead of schedule."


@pytest.fixture
def agent_settings(settings: Settings) -> Settings:
    # live_captions off: the test sends its own agent in, rather than a queue nobody serves.
    return replace(settings, sfu_port=free_port(), sfu_empty_timeout=30, sfu_ice_addresses="127.0.0.1", live_captions=0)


def captions(client: SpaceClient) -> list[dict[str, Any]]:
    return [m for m in client.messages if m.get("type") == "caption"]


async def stored(settings: Settings, space_id: str) -> list[dict[str, Any] | None]:
    redis = Redis.from_url(settings.redis_url)
    try:
        entries = await live_captions.read(
            redis, live_captions.stream_key(settings.queue_name, space_id), after="0", block=0.01
        )
        return [c for _, c in entries]
    finally:
        await redis.aclose()


@pytest.mark.slow
def test_a_listener_gets_the_speakers_words_as_captions_soon_after_they_are_said(agent_settings: Settings) -> None:
    asyncio.run(_captions_reach_a_listener(agent_settings))


async def _captions_reach_a_listener(settings: Settings) -> None:
    space_id = make_space(settings)
    source = speech48k(SENTENCE, VOICE_A, lead=LEAD, tail=4.0)
    track = PcmTrack(source)
    async with running_sfu(settings):
        url = rtc_url(settings, space_id)
        alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST), track=track)
        carol = SpaceClient(url, token(settings, space_id, "carol", Role.LISTENER), decode=False)
        agent = RoomAgent(settings=settings, space_id=space_id, rtc_url=url, model=load_model(TEST_MODEL))
        await alice.connect()
        await carol.connect()
        running = asyncio.get_running_loop().create_task(agent.run())
        await carol.wait_for(lambda c: any(m["final"] for m in captions(c)), timeout=60)
        heard_at = time.time()
        # The agent is nobody in the room: not a speaker, not a listener, no hand.
        await carol.wait_for(lambda c: c.state.get("listeners") == 1, timeout=10)
        assert [s["identity"] for s in carol.state["speakers"]] == ["alice"]
        assert AGENT_IDENTITY not in str(carol.state)
        await alice.send({"type": "end"})
        await asyncio.wait_for(running, 60)
        await alice.close()
        await carol.close()
    events = captions(carol)
    finals = [e for e in events if e["final"]]
    assert len(finals) == 1, finals
    final = finals[0]
    assert final["speaker"] == "alice"
    assert word_error_rate(SENTENCE, final["text"]) <= 0.3, final["text"]
    assert any(not e["final"] for e in events), "no interim caption before the final"
    # Latency: the speech ended at started_at + LEAD + its length (wall clock); the final came
    # after the VAD's half second of silence and one pass. The bench measures the p50 (issue
    # target 1.5 s); a test on a loaded 2-core machine bounds it with headroom.
    speech_end = (track.started_at or 0) + (len(source) / RATE - 4.0)
    assert heard_at - speech_end < 15.0
    # Room clock: the caption's first word is about where alice started (LEAD into her track).
    assert abs(final["start"] - final["words"][0]["start"]) < 1e-6
    # The agent's audio is never recorded: alice's is the only track.
    assert get_space(settings, space_id).speakers == ("alice",)
    in_stream = await stored(settings, space_id)
    assert in_stream[-1] is None  # the end marker
    assert [c["text"] for c in in_stream if c is not None and c["final"]] == [final["text"]]


def test_nobody_but_the_agent_may_send_captions(agent_settings: Settings) -> None:
    asyncio.run(_forged_captions(agent_settings))


async def _forged_captions(settings: Settings) -> None:
    space_id = make_space(settings)
    async with running_sfu(settings):
        url = rtc_url(settings, space_id)
        host = SpaceClient(url, token(settings, space_id, "host", Role.HOST))
        forger = SpaceClient(url, token(settings, space_id, "mallory", Role.LISTENER), decode=False)
        await host.connect()
        await forger.connect()
        fake = {"type": "caption", "speaker": "host", "text": "I resign", "start": 1.0, "end": 2.0}
        await forger.send({**fake, "final": True, "seq": 1, "utterance": 0, "words": []})
        await asyncio.wait_for(forger.closed.wait(), 10)
        assert forger.errors and forger.errors[-1]["code"] == "forbidden"
        # The SFU handles one socket's messages in order: a caption relayed to the
        # host would have been queued before the pong to a ping sent after the refusal.
        await host.send({"type": "ping"})
        await host.wait_for(lambda c: any(m.get("type") == "pong" for m in c.messages), timeout=10)
        assert captions(host) == []
        await host.close()
        await forger.close()


@pytest.mark.slow
def test_a_settled_caption_replaces_the_utterance_s_final_on_air_and_in_search(agent_settings: Settings) -> None:
    asyncio.run(_settled_captions(replace(agent_settings, live_revise=15.0)))


async def _settled_captions(settings: Settings) -> None:
    space_id = make_space(settings)
    source = speech48k(SENTENCE, VOICE_A, lead=LEAD, tail=8.0)
    model = load_model(TEST_MODEL)  # tiny.en stands in for the pipeline's model
    async with running_sfu(settings):
        url = rtc_url(settings, space_id)
        alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST), track=PcmTrack(source))
        carol = SpaceClient(url, token(settings, space_id, "carol", Role.LISTENER), decode=False)
        agent = RoomAgent(settings=settings, space_id=space_id, rtc_url=url, model=model, revise_model=model)
        await alice.connect()
        await carol.connect()
        running = asyncio.get_running_loop().create_task(agent.run())
        # The room falls silent after the sentence: a pass is due 3 s after its final, the room still on air.
        await carol.wait_for(lambda c: any(m.get("settled") for m in captions(c)), timeout=90)
        await alice.send({"type": "end"})
        await asyncio.wait_for(running, 60)
        await alice.close()
        await carol.close()
    events = captions(carol)
    final = next(e for e in events if e["final"])
    settled = [e for e in events if e["settled"]]
    assert len(settled) == 1, settled
    (s,) = settled
    # The utterance's key, a seq above its final's, after it; the text heard again.
    assert (s["speaker"], s["utterance"]) == (final["speaker"], final["utterance"])
    assert s["final"] and s["seq"] > final["seq"]
    assert events.index(s) > events.index(final)
    assert word_error_rate(SENTENCE, s["text"]) <= 0.3, s["text"]
    # The caption stream has it too, after the final.
    in_stream = [c for c in await stored(settings, space_id) if c is not None and c["final"]]
    assert [(c["text"], c["settled"]) for c in in_stream] == [(final["text"], False), (s["text"], True)]
    # Search: one turn for the utterance, the settled text's (the final's turn replaced, not joined).
    catalog = open_catalog(settings)
    try:
        for word in {"team", "project", "weeks"} & set(s["text"].lower().replace(".", "").split()):
            hits = catalog.search(word, limit=10, space_id=space_id)
            assert len(hits) == 1, (word, hits)
            assert abs(hits[0].start - s["start"]) < 0.01
    finally:
        catalog.close()


def test_live_revise_0_turns_the_revision_pass_off(agent_settings: Settings) -> None:
    model = load_model(TEST_MODEL)
    space_id = make_space(agent_settings)
    url = rtc_url(agent_settings, space_id)
    for every, on in ((0.0, False), (15.0, True)):
        settings = replace(agent_settings, live_revise=every)
        agent = RoomAgent(settings=settings, space_id=space_id, rtc_url=url, model=model, revise_model=model)
        assert (agent.captions.reviser is not None) is on
        if agent.captions.reviser is not None:
            assert agent.captions.reviser.options.every == every
        agent.catalog.close()


def test_a_revision_pass_runs_at_a_lower_priority_and_its_cpu_is_charged_to_the_speakers_it_settles() -> None:
    model = load_model(TEST_MODEL)
    said = {"alice": synthesize(SENTENCES[1], VOICES[0]), "bob": synthesize(SENTENCES[2], VOICES[1])}
    events: list[tuple[Caption, int]] = []
    lock = threading.Lock()

    def on_caption(caption: Caption) -> None:
        with lock:
            events.append((caption, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

    end = 20.0
    maker = CaptionMaker(
        model=model,
        on_caption=on_caption,
        room_now=lambda: end,
        reviser=Reviser(model, options=RevisionOptions(every=60.0, pause=60.0)),  # nothing due before the end
    )
    maker.start()
    at = 1.0
    for speaker, speech in said.items():
        track = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), speech.samples, np.zeros(SAMPLE_RATE, np.float32)])
        maker.audio(speaker, at - 1.0, track)
        at += speech.duration + 1.5
    maker.stop()

    settled = [(c, nice) for c, nice in events if c.settled]
    finals = [c for c, _ in events if c.final and not c.settled]
    assert sorted(c.speaker for c, _ in settled) == sorted(c.speaker for c in finals) == ["alice", "bob"]
    # Made on the revision thread, at its nice value; the speakers' captions at the process's.
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    assert {n for _, n in settled} == {min(19, nice + REVISE_NICE)}
    assert {n for c, n in events if not c.settled} == {nice}
    # One pass settled both: its CPU shared between the two speakers by their seconds of speech.
    assert maker.revision.passes == 1 and maker.revision.cpu > 0
    charged = {sp: s.transcriber.charged for sp, s in maker._speakers.items()}
    assert sum(charged.values()) == pytest.approx(maker.revision.cpu)
    assert all(c > 0 for c in charged.values()), charged


def test_a_pause_is_due_from_the_audio_heard_not_the_room_clock() -> None:
    """A speaker's thread running behind: the room's silence is what its transcriber has heard so far."""
    model = load_model(TEST_MODEL)
    maker = CaptionMaker(model=model, on_caption=lambda _: None, room_now=lambda: 100.0)
    maker.audio("alice", 10.0, np.zeros(SAMPLE_RATE, np.float32))  # not started: nothing heard yet
    speakers = [s.transcriber for s in maker._speakers.values()]
    assert maker._heard_until(speakers) == 100.0
    for t in speakers:
        t.insert_audio_chunk(np.zeros(2 * SAMPLE_RATE, np.float32), 10.0)
    assert maker._heard_until(speakers) == pytest.approx(12.0)
