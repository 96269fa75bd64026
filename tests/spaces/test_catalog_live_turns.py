"""Live turns: final captions searchable while the space is on air, replaced by the pipeline's transcript."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from spaces.catalog import Catalog
from spaces.catalog.sqlite import SqliteCatalog
from spaces.models import Space, SpaceState, Turn, Visibility, Word


def turn(speaker: str, start: float, *texts: str) -> Turn:
    return Turn(speaker, tuple(Word(start + i * 0.4, start + i * 0.4 + 0.3, t, speaker) for i, t in enumerate(texts)))


def test_live_turns_are_found_while_live_and_exactly_once_after_the_transcript(catalog: Catalog) -> None:
    space = Space("live1", "Budget night", "alice", 1.0, state=SpaceState.LIVE)
    catalog.put_space(space)
    catalog.put_space(Space("other", "Other", "carl", 1.0, state=SpaceState.LIVE))
    assert catalog.search("quarterly", limit=10) == []
    assert catalog.add_live_turns("live1", [turn("alice", 3.0, "the", "quarterly", "budget")]) == 1
    assert catalog.add_live_turns("live1", [turn("bob", 5.0, "looks", "quarterly", "enough")]) == 1
    hits = catalog.search("quarterly", limit=10)
    assert sorted((h.speaker, h.start, h.live) for h in hits) == [("alice", 3.0, True), ("bob", 5.0, True)]
    assert [h.speaker for h in catalog.search("budget", limit=10, speaker="Alice")] == ["alice"]

    # Over, not yet processed: still found, no longer on air (the link goes to the replay).
    catalog.put_space(replace(space, state=SpaceState.RECORDED))
    assert [(h.start, h.live) for h in catalog.search("budget", limit=10)] == [(3.0, False)]

    # The pipeline's transcript replaces the live turns: each moment once.
    catalog.put_space(replace(space, state=SpaceState.PROCESSING))
    offline = [turn("alice", 3.02, "the", "quarterly", "budget"), turn("bob", 5.01, "looks", "quarterly", "enough")]
    catalog.replace_turns("live1", offline)
    assert catalog.search("quarterly", limit=10) == []  # processing: not served yet
    catalog.set_state("live1", SpaceState.READY)
    assert sorted(h.start for h in catalog.search("quarterly", limit=10)) == [3.02, 5.01]
    # A caption that comes late is not added beside the transcript.
    assert catalog.add_live_turns("live1", [turn("alice", 9.0, "quarterly", "again")]) == 0
    assert sorted(h.start for h in catalog.search("quarterly", limit=10)) == [3.02, 5.01]
    assert catalog.talk_times("live1") == {"alice": 1.1, "bob": 1.1}


def test_live_turns_of_a_private_space_stay_private(catalog: Catalog) -> None:
    catalog.put_space(Space("live2", "Secret", "ann", 1.0, state=SpaceState.LIVE, visibility=Visibility.PRIVATE))
    catalog.add_live_turns("live2", [turn("ann", 1.0, "zanzibar")])
    assert catalog.search("zanzibar", limit=10) == []
    assert [h.space_id for h in catalog.search("zanzibar", limit=10, visible=["live2"])] == ["live2"]


def test_no_live_turns_for_an_unknown_or_published_space(catalog: Catalog) -> None:
    assert catalog.add_live_turns("nosuch", [turn("ann", 1.0, "hello")]) == 0
    catalog.put_space(Space("done1", "Done", "ann", 1.0, state=SpaceState.READY))
    catalog.set_state("done1", SpaceState.READY)
    catalog.replace_turns("done1", [])  # a transcript with no words
    assert catalog.add_live_turns("done1", [turn("ann", 1.0, "hello")]) == 0
    assert catalog.search("hello", limit=10) == []


def test_an_older_catalog_gets_the_live_column_and_keeps_its_turns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_TURNS)
    catalog = SqliteCatalog(path)
    catalog.create_schema()
    catalog.create_schema()  # again: idempotent
    catalog.put_space(Space("old1", "Seals", "ann", 1.0))
    catalog.set_state("old1", SpaceState.READY)
    assert [(h.speaker, h.live) for h in catalog.search("harbour", limit=10)] == [("ann", False)]
    assert catalog.add_live_turns("old1", [turn("ann", 9.0, "more")]) == 0  # it has a transcript
    catalog.close()


OLD_TURNS = """
CREATE TABLE turns (
    id INTEGER PRIMARY KEY, space_id TEXT NOT NULL, seq INTEGER NOT NULL, speaker TEXT NOT NULL,
    start_s REAL NOT NULL, end_s REAL NOT NULL, text TEXT NOT NULL, UNIQUE (space_id, seq)
);
CREATE VIRTUAL TABLE turns_fts USING fts5(text, content='turns', content_rowid='id', tokenize='porter unicode61');
INSERT INTO turns (space_id, seq, speaker, start_s, end_s, text) VALUES ('old1', 0, 'ann', 1.0, 2.0, 'harbour seals');
INSERT INTO turns_fts (rowid, text) SELECT id, text FROM turns;
"""


def test_a_settled_caption_replaces_its_final_s_live_turn_in_place(catalog: Catalog) -> None:
    catalog.put_space(Space("live3", "Settling", "alice", 1.0, state=SpaceState.LIVE))
    final = turn("alice", 3.0, "the", "quarterly", "budgie")
    catalog.add_live_turns("live3", [final, turn("bob", 5.0, "looks", "fine")])
    settled = turn("alice", 3.01, "the", "quarterly", "budget")
    assert catalog.replace_live_turn("live3", final, settled) == 1
    # One turn for the utterance: the settled text, found; the final's, gone.
    assert [(h.speaker, h.start) for h in catalog.search("quarterly", limit=10)] == [("alice", 3.01)]
    assert catalog.search("budgie", limit=10) == []
    assert [h.speaker for h in catalog.search("fine", limit=10)] == ["bob"]
    # A final never written (the catalog was away): the settled text is added.
    assert catalog.replace_live_turn("live3", turn("bob", 8.0, "never"), turn("bob", 8.0, "forever")) == 1
    assert [h.start for h in catalog.search("forever", limit=10)] == [8.0]
    # Too late once the pipeline's transcript is in.
    catalog.replace_turns("live3", [turn("alice", 3.0, "the", "quarterly", "budget")])
    assert catalog.replace_live_turn("live3", settled, turn("alice", 3.0, "late")) == 0
    assert catalog.search("late", limit=10) == []
