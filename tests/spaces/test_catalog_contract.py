"""One contract, every catalog: SQLite (FTS5) and PostgreSQL (tsvector).

The ``catalog`` fixture runs each test against both backends: what a space
is when put and got back, listings and their filters and paging, search and
its paging, and the errors callers rely on (``NotFound`` for unknown
spaces, ``StorageError`` when the database cannot be used). Narrower
behaviours have their own modules (``test_catalog_runs``, ``_rooms``,
``_languages``, ``_live_turns``, ``_migration``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spaces.catalog import Catalog, SpaceFilter, TurnRow
from spaces.catalog.postgres import PostgresCatalog
from spaces.catalog.sqlite import SqliteCatalog
from spaces.exceptions import NotFound, StorageError
from spaces.models import Space, SpaceState, SpeakerLanguage, Turn, Visibility, Word

READY = SpaceState.READY


def turn(speaker: str, start: float, text: str) -> Turn:
    words = text.split()
    return Turn(speaker, tuple(Word(start + i * 0.5, start + i * 0.5 + 0.4, w, speaker) for i, w in enumerate(words)))


def ids(spaces: list[Space]) -> list[str]:
    return [s.space_id for s in spaces]


# --- put / get -------------------------------------------------------------


def test_a_space_comes_back_as_it_was_put(catalog: Catalog) -> None:
    space = Space(
        "p1",
        "Cards night",
        "alice",
        1700000000.25,
        state=SpaceState.FAILED,
        visibility=Visibility.PRIVATE,
        duration=61.5,
        speakers=("alice", "bob"),
        error="mix failed",
        progress={"mix": 0.5, "transcribe": 1.0},
        partial=True,
        run=2,
        published=True,
        node="node-a",
        language="fr",
        languages={"alice": SpeakerLanguage("fr", "detected", 0.875, True)},
    )
    catalog.put_space(space)
    assert catalog.get_space("p1") == space


def test_putting_again_replaces_but_neither_run_nor_publication_goes_back(catalog: Catalog) -> None:
    catalog.put_space(Space("p2", "First", "alice", 1.0, state=READY, speakers=("alice", "bob"), run=3))
    catalog.put_space(Space("p2", "Second", "carol", 2.0, state=SpaceState.PROCESSING, speakers=("carol",), run=1))
    got = catalog.get_space("p2")
    assert (got.title, got.host, got.created_at, got.state, got.speakers) == (
        "Second",
        "carol",
        2.0,
        SpaceState.PROCESSING,
        ("carol",),
    )
    assert got.run == 3 and got.published
    assert ids(catalog.list_spaces(SpaceFilter(speaker="bob"), limit=5)) == [], "old speakers are replaced"


def test_unknown_spaces_are_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound):
        catalog.get_space("nope")
    with pytest.raises(NotFound):
        catalog.set_state("nope", READY)
    with pytest.raises(NotFound):
        catalog.set_progress("nope", "mix", 0.5)
    with pytest.raises(NotFound):
        catalog.start_run("nope", 1)
    assert catalog.talk_times("nope") == {}
    assert catalog.erasures("nope") == {}
    assert catalog.retention("nope") is None
    catalog.delete_space("nope")  # not an error


def test_state_and_progress(catalog: Catalog) -> None:
    catalog.put_space(Space("p3", "Progress", "alice", 1.0, state=SpaceState.RECORDED))
    assert catalog.start_run("p3", 0)
    catalog.set_progress("p3", "mix", 0.5)
    catalog.set_progress("p3", "mix", 1.7)  # clamped
    catalog.set_progress("p3", "transcribe", -1)
    got = catalog.get_space("p3")
    assert got.state is SpaceState.PROCESSING and got.progress == {"mix": 1.0, "transcribe": 0.0}
    catalog.set_state("p3", SpaceState.FAILED, error="boom")
    got = catalog.get_space("p3")
    assert (got.state, got.error, got.published) == (SpaceState.FAILED, "boom", False)
    catalog.set_state("p3", READY)
    got = catalog.get_space("p3")
    assert (got.state, got.error, got.published) == (READY, None, True)


def test_deleting_forgets_everything_about_a_space(catalog: Catalog) -> None:
    catalog.put_space(Space("d1", "Gone", "alice", 1.0, state=READY, speakers=("alice",)))
    catalog.put_space(Space("d2", "Kept", "alice", 2.0, state=READY, speakers=("alice",)))
    for sid in ("d1", "d2"):
        catalog.replace_turns(sid, [turn("alice", 1.0, "harbour seals sing")])
    catalog.request_erasure("d1", "alice", now=5.0)
    catalog.set_retention("d1", 7, ["mix"])
    assert catalog.mark_deleting("d1") is READY
    assert catalog.mark_deleting("d1") is None, "exactly one deletion wins"
    assert ids(catalog.list_spaces(SpaceFilter(), limit=10)) == ["d2"], "a space being deleted is not listed"
    catalog.delete_space("d1")
    with pytest.raises(NotFound):
        catalog.get_space("d1")
    assert {h.space_id for h in catalog.search("seals", limit=10)} == {"d2"}
    assert (catalog.talk_times("d1"), catalog.erasures("d1"), catalog.retention("d1")) == ({}, {}, None)
    assert [a[0] for a in catalog.space_ages()] == ["d2"]


# --- list, filters, paging -------------------------------------------------


@pytest.fixture
def listed(catalog: Catalog) -> Catalog:
    """Seven spaces: two private, one empty, two created at the same instant."""
    catalog.bulk_insert(
        [
            Space("l1", "Morning 100% news", "ann", 100.0, state=READY, speakers=("Élise", "ben")),
            Space("l2", "Evening_show", "ann", 200.0, state=SpaceState.LIVE, speakers=("ben",)),
            Space("l3", "Private chat", "cy", 300.0, state=READY, visibility=Visibility.PRIVATE, speakers=("cy",)),
            Space("l4", "Nobody came", "ann", 400.0, state=SpaceState.EMPTY),
            Space("l5", "Tie a", "dan", 500.0, state=READY, speakers=("dan",)),
            Space("l6", "Tie b", "dan", 500.0, state=READY, speakers=("dan",)),
            Space("l7", "Other private", "cy", 600.0, state=READY, visibility=Visibility.PRIVATE),
        ],
        [TurnRow("l1", 0, "ben", 1.0, 3.0, "the harbour seals came back"), TurnRow("l3", 0, "cy", 0.0, 1.0, "seals")],
    )
    return catalog


def test_listing_is_newest_first_without_empty_or_private_spaces(listed: Catalog) -> None:
    assert ids(listed.list_spaces(SpaceFilter(), limit=10)) == ["l6", "l5", "l2", "l1"]
    assert ids(listed.list_spaces(SpaceFilter(visible={"l3"}), limit=10)) == ["l6", "l5", "l3", "l2", "l1"]
    assert ids(listed.list_spaces(SpaceFilter(include_private=True), limit=10)) == [
        "l7",
        "l6",
        "l5",
        "l3",
        "l2",
        "l1",
    ]
    assert ids(listed.list_spaces(SpaceFilter(state=SpaceState.EMPTY), limit=10)) == ["l4"]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (SpaceFilter(state=SpaceState.LIVE), ["l2"]),
        (SpaceFilter(speaker="BEN"), ["l2", "l1"]),
        (SpaceFilter(speaker="élise"), ["l1"]),
        (SpaceFilter(since=200.0), ["l6", "l5", "l2"]),
        (SpaceFilter(until=200.0), ["l1"]),
        (SpaceFilter(since=150.0, until=500.0), ["l2"]),
        (SpaceFilter(text="EVENING"), ["l2"]),
        (SpaceFilter(text="100%"), ["l1"]),
        (SpaceFilter(text="g_s"), ["l2"]),
        (SpaceFilter(text="e_s"), []),  # "_" is a letter here, not LIKE's any-letter ("news")
        (SpaceFilter(text="%"), ["l1"]),
        (SpaceFilter(text="harbour"), ["l1"]),
        (SpaceFilter(text="seals"), ["l1"]),
        (SpaceFilter(text="seals", visible={"l3"}), ["l3", "l1"]),
        (SpaceFilter(text="walrus"), []),
    ],
)
def test_listing_filters(listed: Catalog, flt: SpaceFilter, expected: list[str]) -> None:
    assert ids(listed.list_spaces(flt, limit=10)) == expected


def test_listing_pages_with_a_cursor_across_equal_times(listed: Catalog) -> None:
    flt = SpaceFilter(include_private=True)
    seen: list[str] = []
    cursor: tuple[float, str] | None = None
    while True:
        page = listed.list_spaces(flt, limit=2, cursor=cursor)
        if not page:
            break
        assert len(page) <= 2
        seen += ids(page)
        cursor = (page[-1].created_at, page[-1].space_id)
    assert seen == ids(listed.list_spaces(flt, limit=10))
    assert len(set(seen)) == 6


# --- search ----------------------------------------------------------------


@pytest.fixture
def searched(catalog: Catalog) -> Catalog:
    catalog.put_space(Space("s1", "Cards night", "alice", 1.0, state=READY, speakers=("alice", "Bob")))
    catalog.put_space(Space("s2", "Sea life", "cy", 2.0, state=READY, speakers=("cy",)))
    catalog.put_space(Space("s3", "Hidden", "dee", 3.0, state=READY, visibility=Visibility.PRIVATE, speakers=("dee",)))
    catalog.put_space(Space("s4", "Not yet", "eve", 4.0, state=SpaceState.PROCESSING, speakers=("eve",)))
    catalog.replace_turns(
        "s1",
        [
            turn("Bob", 1.0, "ten of clubs"),
            turn("alice", 4.0, "clubs < trumps & so on"),
            turn("Bob", 8.0, "the queen of hearts"),
        ],
    )
    catalog.replace_turns("s2", [turn("cy", 2.0, "clubs of seals in the harbour")])
    catalog.replace_turns("s3", [turn("dee", 0.0, "secret clubs")])
    catalog.replace_turns("s4", [turn("eve", 0.0, "clubs unfinished")])
    return catalog


def test_search_finds_words_phrases_and_prefixes(searched: Catalog) -> None:
    hits = searched.search('"ten of clubs"', limit=10)
    assert [(h.space_id, h.space_title, h.speaker, h.start, h.end) for h in hits] == [
        ("s1", "Cards night", "Bob", 1.0, 2.4)
    ]
    assert "<mark>" in hits[0].snippet and not hits[0].live
    assert {(h.space_id, h.start) for h in searched.search("queen hearts", limit=10)} == {("s1", 8.0)}
    assert {(h.space_id, h.start) for h in searched.search("hear", limit=10)} == {("s1", 8.0)}, "last word: prefix"
    assert searched.search("walrus", limit=10) == []


def test_search_shows_only_served_spaces_and_private_ones_when_visible(searched: Catalog) -> None:
    assert {h.space_id for h in searched.search("clubs", limit=10)} == {"s1", "s2"}
    assert {h.space_id for h in searched.search("clubs", limit=10, visible={"s3"})} == {"s1", "s2", "s3"}


def test_search_filters_by_speaker_whatever_the_case_and_by_space(searched: Catalog) -> None:
    assert {(h.space_id, h.start) for h in searched.search("clubs", limit=10, speaker="bob")} == {("s1", 1.0)}
    assert {h.speaker for h in searched.search("clubs", limit=10, space_id="s1")} == {"Bob", "alice"}


def test_search_pages_without_gaps_or_repeats(searched: Catalog) -> None:
    everything = [(h.space_id, h.start) for h in searched.search("clubs", limit=10)]
    assert len(everything) == 3
    pages = [(h.space_id, h.start) for off in range(3) for h in searched.search("clubs", limit=1, offset=off)]
    assert pages == everything
    assert searched.search("clubs", limit=10, offset=3) == []


def test_snippets_escape_the_text_around_the_marks(searched: Catalog) -> None:
    (hit,) = searched.search("trumps", limit=10)
    assert "&lt; " in hit.snippet and "< " not in hit.snippet
    assert "<mark>trumps</mark>" in hit.snippet


@pytest.mark.parametrize("query", ["", "   ", '"', "()", 'clubs" NEAR( * (', "AND OR NOT", "-", "*", "\\"])
def test_any_query_text_is_an_answer_not_an_error(searched: Catalog, query: str) -> None:
    assert isinstance(searched.search(query, limit=10), list)
    assert isinstance(searched.list_spaces(SpaceFilter(text=query), limit=10), list)


def test_bulk_insert_talk_times_and_transcript_filters(catalog: Catalog) -> None:
    spaces = [Space(f"b{i}", f"Bulk {i}", "ann", float(i), state=READY, speakers=("ann", "ben")) for i in range(3)]
    rows = [
        TurnRow(f"b{i}", seq, "ben" if seq % 2 else "ann", seq * 2.0, seq * 2.0 + 1.5, f"turn {seq} on harbour seals")
        for i in range(3)
        for seq in range(4)
    ]
    catalog.bulk_insert(spaces, rows)
    assert catalog.talk_times("b1") == {"ann": 3.0, "ben": 3.0}
    assert len(catalog.search("harbour seals", limit=50)) == 12
    assert {h.space_id for h in catalog.search("seals", limit=50, space_id="b2")} == {"b2"}
    assert ids(catalog.list_spaces(SpaceFilter(text="harbour"), limit=10)) == ["b2", "b1", "b0"]
    assert ids(catalog.list_spaces(SpaceFilter(text="bulk 1"), limit=10)) == ["b1"]
    # Bulk-loaded turns are replaced like any others, twice the same is once.
    catalog.replace_turns("b0", [])
    assert {h.space_id for h in catalog.search("seals", limit=50)} == {"b1", "b2"}
    assert catalog.talk_times("b0") == {}
    catalog.replace_turns("b1", [turn("ben", 0.0, "seals")])
    catalog.replace_turns("b1", [turn("ben", 0.0, "seals")])
    assert [h.start for h in catalog.search("seals", limit=50, space_id="b1")] == [0.0]


# --- errors ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def unusable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """A catalog whose database cannot be used: a directory for SQLite, a closed port for PostgreSQL."""
    cat: Catalog
    if request.param == "sqlite":
        (tmp_path / "catalog.db").mkdir()
        cat = SqliteCatalog(tmp_path / "catalog.db")
    else:
        cat = PostgresCatalog("postgresql://postgres@127.0.0.1:1/test", timeout=0.5)
    yield cat
    cat.close()


def test_an_unusable_database_is_a_storage_error(unusable: Catalog) -> None:
    for call in (
        unusable.create_schema,
        lambda: unusable.get_space("x"),
        lambda: unusable.put_space(Space("x", "t", "h", 1.0)),
        lambda: unusable.search("clubs", limit=1),
        lambda: unusable.list_spaces(SpaceFilter(), limit=1),
    ):
        with pytest.raises(StorageError) as caught:
            call()
        assert caught.value.retryable


def test_a_file_that_is_not_a_database_is_a_storage_error_not_worth_retrying(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"not a database, " * 512)
    cat = SqliteCatalog(path)
    try:
        with pytest.raises(StorageError) as caught:
            cat.create_schema()
        assert not caught.value.retryable
    finally:
        cat.close()
