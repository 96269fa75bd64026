"""Assembling tracks into turns: overlap kept, bleed removed, loops cut."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spaces.models import Word
from transcribe.assemble import AssembleOptions, TrackWords, assemble
from transcribe.levels import FLOOR_DB, Levels


def say(speaker: str, start: float, text: str, *, step: float = 0.4) -> list[Word]:
    return [Word(start + i * step, start + i * step + step * 0.9, t, speaker) for i, t in enumerate(text.split())]


def loud(spans: Sequence[tuple[float, float, float]], *, length: float = 30.0) -> Levels:
    """Levels of a track: ``(start, end, dB)`` stretches, digital silence elsewhere."""
    db = np.full(int(length / 0.02), FLOOR_DB, dtype=np.float32)
    for start, end, level in spans:
        db[int(start / 0.02) : int(end / 0.02)] = level
    return Levels(start=0.0, hop=0.02, db=db)


def spoken(turns: Sequence[object], speaker: str) -> str:
    return " ".join(t.text for t in turns if t.speaker == speaker)  # type: ignore[attr-defined]


def test_turns_in_time_order_split_at_pauses() -> None:
    alice = say("alice", 0.0, "which card did you draw?") + say("alice", 9.0, "nice one")
    bob = say("bob", 3.0, "the ten of clubs")
    turns = assemble([TrackWords("alice", alice, None), TrackWords("bob", bob, None)])
    assert [(t.speaker, t.text) for t in turns] == [
        ("alice", "which card did you draw?"),
        ("bob", "the ten of clubs"),
        ("alice", "nice one"),
    ]


def test_overlapping_speech_is_kept_under_each_speaker() -> None:
    alice = say("alice", 0.0, "I think we should leave before the rain starts")
    bob = say("bob", 1.0, "yes let us go right now")
    levels_a = loud([(0.0, 4.0, -20.0)])
    levels_b = loud([(1.0, 3.4, -21.0)])
    turns = assemble([TrackWords("alice", alice, levels_a), TrackWords("bob", bob, levels_b)])
    assert spoken(turns, "alice").split() == "I think we should leave before the rain starts".split()
    assert spoken(turns, "bob") == "yes let us go right now"


def test_interjection_splits_the_long_turn_around_it() -> None:
    alice = say("alice", 0.0, "so the plan is to meet at the station and then walk to the park together")
    bob = say("bob", 2.0, "okay")
    turns = assemble([TrackWords("alice", alice, None), TrackWords("bob", bob, None)])
    assert [t.speaker for t in turns] == ["alice", "bob", "alice"]
    assert turns[0].text + " " + turns[2].text == " ".join(w.text for w in alice)


def test_bleed_is_removed_from_the_quiet_track_only() -> None:
    alice = say("alice", 1.0, "the weather was lovely this morning")
    # bob's microphone picked alice up: same words, a bit off in time, some misheard
    bleed = say("bob", 1.08, "the weather was lonely this mourning")
    bleed[3] = Word(bleed[3].start, bleed[3].end, "levy", "bob")  # no twin on alice's track
    own = say("bob", 6.0, "please bring your notebook")
    tracks = [
        TrackWords("alice", alice, loud([(1.0, 3.5, -20.0)])),
        TrackWords("bob", bleed + own, loud([(1.0, 3.5, -38.0), (6.0, 7.6, -19.0)])),
    ]
    turns = assemble(tracks)
    assert spoken(turns, "alice") == "the weather was lovely this morning"
    assert spoken(turns, "bob") == "please bring your notebook"


def test_without_levels_nothing_is_taken_as_bleed() -> None:
    alice = say("alice", 1.0, "the weather was lovely")
    bob = say("bob", 1.05, "the weather was lovely")
    turns = assemble([TrackWords("alice", alice, None), TrackWords("bob", bob, loud([(1.0, 3.0, -40.0)]))])
    assert spoken(turns, "bob") == "the weather was lovely"


def test_same_words_said_by_both_at_once_stay() -> None:
    """Both say "happy birthday" together: both microphones are loud, nothing is bleed."""
    alice = say("alice", 1.0, "happy birthday to you")
    bob = say("bob", 1.02, "happy birthday to you")
    tracks = [
        TrackWords("alice", alice, loud([(1.0, 2.6, -20.0)])),
        TrackWords("bob", bob, loud([(1.0, 2.6, -23.0)])),
    ]
    turns = assemble(tracks)
    assert spoken(turns, "alice") == spoken(turns, "bob") == "happy birthday to you"


def test_own_quiet_words_without_anyone_else_stay() -> None:
    """A speaker who mumbles (well below their usual level) keeps their words."""
    bob = say("bob", 0.0, "this is my normal voice") + say("bob", 5.0, "and this is a whisper")
    tracks = [
        TrackWords("alice", say("alice", 10.0, "hello"), loud([(10.0, 10.5, -20.0)])),
        TrackWords("bob", bob, loud([(0.0, 2.0, -20.0), (5.0, 7.0, -42.0)])),
    ]
    assert spoken(assemble(tracks), "bob") == "this is my normal voice and this is a whisper"


def test_loops_are_cut_and_words_get_the_track_speaker() -> None:
    words = say("", 0.0, "we will be right back " * 5 + "and now the news")
    turns = assemble([TrackWords("carol", words, None)], options=AssembleOptions(turn_gap=20.0))
    assert [t.speaker for t in turns] == ["carol"]
    assert turns[0].text == "we will be right back and now the news"
    assert all(w.speaker == "carol" for w in turns[0].words)


def test_tracks_of_one_speaker_merge() -> None:
    first = say("dave", 0.0, "I lost my connection")
    second = say("dave", 0.3 + first[-1].end, "sorry about that")
    turns = assemble([TrackWords("dave", first, None), TrackWords("dave", second, None)])
    assert [(t.speaker, t.text) for t in turns] == [("dave", "I lost my connection sorry about that")]


def test_no_tracks_no_turns() -> None:
    assert assemble([]) == []
    assert assemble([TrackWords("alice", [], None)]) == []
