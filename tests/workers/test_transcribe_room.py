"""The room job's model: its passes side by side, or one pass on all its threads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from spaces.settings import Settings
from tests.support.services import TEST_MODEL
from tests.support.workers import stores
from transcribe.levels import Levels
from transcribe.model import load_model
from transcribe.room import RoomRules, passes, runs
from transcribe.room import overlap_share as room_overlap_share
from workers.environment import Environment
from workers.transcribe_room import _room_model, room_passes, room_threads

HOP = 0.02


def turns(speakers: int, seconds: float, *, turn: float = 10.0, pause: float = 1.0) -> list[Levels]:
    """Levels of speakers taking turns of ``turn`` seconds, ``pause`` apart."""
    db = np.full((speakers, round(seconds / HOP)), -80.0, dtype=np.float32)
    at, who = 0.5, 0
    while at < seconds:
        db[who, round(at / HOP) : round(min(seconds, at + turn) / HOP)] = -20.0
        at += turn + pause
        who = (who + 1) % speakers
    return [Levels(0.0, HOP, row) for row in db]


@pytest.fixture
def env(settings: Settings) -> Environment:
    two = replace(settings, whisper_model=TEST_MODEL, workers=2, whisper_threads=1)
    return Environment(two, *stores(two))


def test_a_room_heard_in_one_run_is_one_pass_on_every_thread_of_the_job(env: Environment) -> None:
    # Seven speakers, 90 s: less speech than two runs need, so one Whisper
    # call; on one thread of two it took 1.6-2.1x plain faster-whisper's time.
    room = turns(7, 90.0)
    assert room_passes(env.settings.worker_count) == 2
    assert runs(room, 2) == 1
    model = _room_model(env, room)
    assert passes(model) == 1
    assert model is load_model(TEST_MODEL, cpu_threads=2)


def test_a_room_heard_in_runs_has_a_pass_a_thread(env: Environment) -> None:
    # Ten minutes of turns: two runs side by side, each on one thread.
    room = turns(3, 600.0)
    assert runs(room, 2) == 2
    model = _room_model(env, room)
    assert passes(model) == 2
    assert model is load_model(TEST_MODEL, cpu_threads=1, passes=2)


def test_a_room_transcribed_track_by_track_is_one_pass(env: Environment) -> None:
    # Ten minutes, but everyone talking at once: no room pass, so no runs to
    # hear side by side; each track in turn on the job's every thread.
    room = turns(3, 600.0)
    room.append(Levels(0.0, HOP, np.full(round(600.0 / HOP), -20.0, dtype=np.float32)))
    assert room_overlap_share(room) > RoomRules().max_overlap_share
    assert passes(_room_model(env, room)) == 1


def test_one_pass_has_the_threads_its_passes_would_have_had() -> None:
    # The worker's threads shared among the passes, each at least one.
    assert room_threads(1, 2) == 2
    assert room_threads(4, 2) == 4
    assert room_threads(3, 2) == 2
    assert room_threads(2, 1) == 2
