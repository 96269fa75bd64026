"""How many Whisper passes a room job runs, and on how many threads each."""

from __future__ import annotations

import numpy as np

from transcribe.levels import Levels
from transcribe.room import RoomRules
from workers.transcribe_room import room_passes, room_threads

HOP = 0.02


def turns(speakers: int, seconds: float, *, turn: float = 10.0, pause: float = 1.0, over: float = 0.0) -> dict:
    """Levels of speakers taking turns of ``turn`` seconds (each starting ``over`` seconds early)."""
    frames = round(seconds / HOP)
    db = np.full((speakers, frames), -80.0, dtype=np.float32)
    at, who = 0.5, 0
    while at < seconds:
        lo, hi = round(max(0.0, at - over) / HOP), round(min(seconds, at + turn) / HOP)
        db[who, lo:hi] = -20.0
        at += turn + pause
        who = (who + 1) % speakers
    return {f"t{i}": Levels(0.0, HOP, db[i]) for i in range(speakers)}


def test_a_room_with_speech_for_two_runs_gets_two_passes_of_a_thread_each() -> None:
    long = turns(3, 2.5 * 2 * RoomRules().min_run_speech)
    assert room_passes(2, long) == 2
    assert room_threads(1, 2, 2) == 1
    assert room_passes(1, long) == 1  # one worker: one pass, whatever the room
    assert room_passes(2) == 2  # levels unknown: the most


def test_a_room_heard_in_one_run_gets_one_pass_with_every_thread() -> None:
    # Seven speakers, 90 s: less than two runs' speech, so one Whisper call.
    short = turns(7, 90.0, turn=3.0)
    assert room_passes(2, short) == 1
    assert room_threads(1, 2, 1) == 2
    assert room_threads(4, 2, 1) == 4 and room_threads(4, 2, 2) == 2  # a worker of four threads


def test_a_room_transcribed_track_by_track_gets_one_pass() -> None:
    long = turns(2, 2.5 * 2 * RoomRules().min_run_speech, turn=10.0, over=9.0)  # talking over each other
    assert room_passes(2, long) == 1
    missing = {**turns(2, 600.0), "late": None}  # a track whose levels were never measured
    assert room_passes(2, missing) == 1
