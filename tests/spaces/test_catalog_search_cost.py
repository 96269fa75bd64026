"""Search whose cost does not grow with how often its words are said.

Both backends rank at most ``MAX_CANDIDATES`` matching turns: the bound
must never hide the turns a filter asks for. SQLite ranks with BM25 from
word counts it keeps (``stem_docs``) instead of FTS5's ``bm25()``: the same
figures for words, and counts that follow turns in and out.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from spaces.catalog import Catalog, TurnRow, bm25
from spaces.catalog import sqlite as sqlite_catalog
from spaces.catalog.sql_search import MAX_CANDIDATES
from spaces.catalog.sqlite import SqliteCatalog
from spaces.languages import stems
from spaces.models import Space, SpaceState, Turn, Word

READY = SpaceState.READY


def _turn(speaker: str, start: float, text: str) -> Turn:
    words = text.split()
    return Turn(speaker, tuple(Word(start + i * 0.5, start + i * 0.5 + 0.4, w, speaker) for i, w in enumerate(words)))


def _saying(catalog: Catalog, space_id: str, lines: list[tuple[str, float, str]]) -> None:
    """A ready space whose turns say ``lines`` (speaker, start, text)."""
    speakers = tuple(dict.fromkeys(speaker for speaker, _, _ in lines))
    catalog.put_space(Space(space_id, space_id.title(), speakers[0], 1.0, state=READY, speakers=speakers))
    catalog.replace_turns(space_id, [_turn(*line) for line in lines])


def _crowded(catalog: Catalog) -> None:
    """An old space saying "harbour" a few times, then more newer turns saying it than search ranks."""
    spaces = [
        Space("old", "Old harbour", "ann", 1.0, state=READY, speakers=("ann",)),
        Space("new", "New harbour", "ben", 2.0, state=READY, speakers=("ben", "cy")),
    ]
    rows = [TurnRow("old", i, "ann", i * 3.0, i * 3.0 + 2, f"the harbour seals number {i}") for i in range(5)]
    rows += [
        TurnRow("new", i, "cy" if i == 7 else "ben", i * 3.0, i * 3.0 + 2, f"harbour boats and harbour lights {i}")
        for i in range(MAX_CANDIDATES + 100)
    ]
    catalog.bulk_insert(spaces, rows)


def test_a_word_said_everywhere_is_found_in_the_space_and_by_the_speaker_asked_for(catalog: Catalog) -> None:
    _crowded(catalog)
    assert len(catalog.search("harbour", limit=20)) == 20
    hits = catalog.search("harbour", limit=20, space_id="old")
    assert sorted(h.start for h in hits) == [0.0, 3.0, 6.0, 9.0, 12.0]
    assert {h.space_id for h in catalog.search("harbour", limit=20, speaker="ann")} == {"old"}
    assert {(h.space_id, h.start) for h in catalog.search("harbour", limit=20, speaker="cy")} == {("new", 21.0)}
    assert {h.space_id for h in catalog.search("harbour seal", limit=20)} == {"old"}, "last word: prefix"
    assert {h.space_id for h in catalog.search("harb", limit=20, space_id="old")} == {"old"}


def test_a_prefix_matches_the_words_it_starts(catalog: Catalog) -> None:
    _saying(
        catalog,
        "p",
        [("ann", 0.0, "seals"), ("ann", 2.0, "sealing wax"), ("ann", 4.0, "seashore"), ("ann", 6.0, "sea")],
    )
    assert {h.start for h in catalog.search("seal", limit=10)} == {0.0, 2.0}
    assert {h.start for h in catalog.search("sea", limit=10)} == {0.0, 2.0, 4.0, 6.0}


def _harbour_said(catalog: Catalog, newer: int) -> None:
    """An old turn that says "harbour" the most, then ``newer`` turns that say it once in more words."""
    spaces = [
        Space("old", "Old", "ann", 1.0, state=READY, speakers=("ann",)),
        Space("new", "New", "ben", 2.0, state=READY, speakers=("ben",)),
    ]
    rows = [TurnRow("old", 0, "ann", 0.0, 2.0, "harbour harbour harbour")]
    rows += [
        TurnRow("new", i, "ben", i * 3.0, i * 3.0 + 2, f"the boats left the harbour at dawn {i}") for i in range(newer)
    ]
    catalog.bulk_insert(spaces, rows)


@pytest.mark.parametrize("newer", [MAX_CANDIDATES - 1, MAX_CANDIDATES])
def test_search_ranks_the_newest_max_candidates_matching_turns(catalog: Catalog, newer: int) -> None:
    """The best turn is first while it is among the newest MAX_CANDIDATES matches; older, it is not ranked."""
    _harbour_said(catalog, newer)
    hits = catalog.search("harbour", limit=20)
    assert len(hits) == 20
    if newer < MAX_CANDIDATES:
        assert (hits[0].space_id, hits[0].start) == ("old", 0.0)
    else:
        assert "old" not in {h.space_id for h in hits}
    assert {h.space_id for h in catalog.search("harbour", limit=20, space_id="old")} == {"old"}, "found when asked for"


def test_a_word_typed_in_full_that_fills_the_page_is_not_read_as_a_prefix(catalog: Catalog) -> None:
    """Its turns fill the page; the words it starts come only when they do not."""
    said = [("ann", i * 3.0, f"the sea is calm today {i}") for i in range(25)]
    said += [("ann", 100 + i * 3.0, f"seals on the rocks {i}") for i in range(3)]
    _saying(catalog, "coast", said)
    page = catalog.search("sea", limit=20)
    assert len(page) == 20 and all(h.start < 100 for h in page), "the word as typed"
    assert len(catalog.search("sea", limit=30)) == 28, "a page it does not fill: the words it starts too"
    assert len(catalog.search("sea", limit=20, offset=20)) == 8, "the second page: 5 of the word as typed, 3 more"


def _recount(path: Path) -> tuple[dict[str, int], tuple[int, int]]:
    with sqlite3.connect(path) as conn:
        counts: Counter[str] = Counter()
        tokens = 0
        rows = conn.execute("SELECT stems FROM turns").fetchall()
        for (stemmed,) in rows:
            words = stemmed.split()
            counts.update(set(words))
            tokens += len(words)
        kept = dict(conn.execute("SELECT term, docs FROM stem_docs").fetchall())
        totals = conn.execute("SELECT turns, tokens FROM stem_totals").fetchone()
    assert kept == dict(counts)
    assert totals == (len(rows), tokens)
    return kept, totals


def test_sqlite_word_counts_follow_turns_in_and_out_and_an_older_catalog_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    catalog = SqliteCatalog(path)
    catalog.create_schema()
    _crowded(catalog)
    catalog.put_space(Space("p", "Replaced", "ann", 3.0, state=READY, speakers=("ann",)))
    catalog.replace_turns("p", [_turn("ann", 0.0, "kayak kayak on the harbour")])
    assert _recount(path)[0]["kayak"] == 1
    catalog.replace_turns("p", [_turn("ann", 0.0, "only seals now")])
    catalog.delete_space("old")
    kept, _ = _recount(path)
    assert "kayak" not in kept, "a word nobody says any more is not a prefix's expansion"
    before = [(h.space_id, h.start, h.rank) for h in catalog.search("harbour lights", limit=5)]
    catalog.close()
    with sqlite3.connect(path) as conn:
        conn.executescript("DROP TABLE stem_docs; DROP TABLE stem_totals;")
    catalog = SqliteCatalog(path)
    catalog.create_schema()
    _recount(path)
    assert [(h.space_id, h.start, h.rank) for h in catalog.search("harbour lights", limit=5)] == before
    catalog.close()


def test_sqlite_ranks_words_as_fts5_bm25_does(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    catalog = SqliteCatalog(path)
    catalog.create_schema()
    _saying(
        catalog,
        "r",
        [
            ("ann", 0.0, "river river river walks by the river"),
            ("bob", 5.0, "a long walk along the river to the sea and back again"),
            ("ann", 12.0, "walks"),
            ("bob", 14.0, "the final river crossing"),
        ],
    )
    for query in ("river", "river walks", '"river crossing"'):
        ours = {h.start: h.rank for h in catalog.search(query, limit=10)}
        with sqlite3.connect(path) as conn:
            fts5 = dict(
                conn.execute(
                    "SELECT t.start_s, -bm25(turns_stems) FROM turns_stems JOIN turns t ON t.id = turns_stems.rowid "
                    "WHERE turns_stems MATCH ?",
                    (" AND ".join(f'"{stems(w, "en")}"' for w in query.replace('"', "").split()),),
                ).fetchall()
            )
        if query.startswith('"'):
            assert ours.keys() == fts5.keys()  # a phrase weighs as its rarest word: the order of hits may differ
        else:
            assert ours.keys() == fts5.keys() and all(abs(ours[k] - fts5[k]) < 1e-9 for k in ours), query
    catalog.close()


def test_sqlite_search_by_speaker_starts_from_either_side_with_the_same_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the speaker's turns (few) or from the word's (many): one answer, and an older catalog gets the key."""
    path = tmp_path / "c.db"
    catalog = SqliteCatalog(path)
    catalog.create_schema()
    _crowded(catalog)
    _saying(catalog, "elise", [("Élise", 0.0, "harbour lights at night"), ("ann", 4.0, "harbour lights")])

    def answers() -> list[list[tuple[str, float, float]]]:
        return [
            [(h.space_id, h.start, h.rank) for h in catalog.search(q, limit=10, speaker=who)]
            for q, who in (("harbour", "ANN"), ("harbour lights", "élise"), ("harbour", "Cy"), ("harbour", "ben"))
        ]

    monkeypatch.setattr(sqlite_catalog, "SPEAKER_FIRST_RATIO", 10**9)  # never from the speaker's turns
    from_words = answers()
    monkeypatch.setattr(sqlite_catalog, "SPEAKER_FIRST_RATIO", 1)  # from theirs whenever they have fewer
    assert answers() == from_words
    assert [len(a) for a in from_words] == [6, 1, 1, 10]
    catalog.close()
    with sqlite3.connect(path) as conn:
        conn.executescript("DROP INDEX turns_speaker; ALTER TABLE turns DROP COLUMN speaker_key;")
    catalog = SqliteCatalog(path)
    catalog.create_schema()
    assert answers() == from_words
    catalog.close()


@pytest.mark.parametrize(
    "terms",
    [
        [bm25.Scored(("river",), docs=10), bm25.Scored(("walk",), docs=50)],
        [bm25.Scored(("river",), frozenset({"river", "rivet"}), docs=12)],
        [bm25.Scored(("river", "walk"), docs=5)],
        [bm25.Scored(("wa",), frozenset({"walk", "wall", "wake", "wane", "warm"}), docs=70)],
    ],
)
def test_sqlite_counts_words_in_the_stored_stems_as_in_their_tokens(terms: list[bm25.Scored]) -> None:
    """Counted in the text (said twice in a row, split at "_", empty) or in tokens: the same scores."""
    stemmed = [
        "river river river walk by the river",
        "walk",
        "river_walk river rivet",
        "",
        "a river walk wall warm",
        "rivet river walk walk",
    ]
    tokens = [s.replace("_", " ").split() for s in stemmed]
    expected = bm25.scores(terms, tokens, total=100, avg_length=5.0)
    assert bm25.stem_scores(terms, stemmed, total=100, avg_length=5.0) == expected
    assert expected[0] > 0 and expected[3] == 0
