"""Search of all turns looks at the newest turns first (PostgreSQL: partition by partition of its search table).

Whatever the way the candidates are found, they are the newest
``MAX_CANDIDATES`` turns that match, ranked the same: both backends answer
alike on a catalog whose PostgreSQL partitions are a few dozen ids each.
PostgreSQL's ``turn_search`` follows every write to ``turns`` and is made
for an older catalog.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from spaces.catalog import Catalog, TurnRow, pg_search
from spaces.catalog.postgres import PostgresCatalog
from spaces.catalog.sql_search import MAX_CANDIDATES
from spaces.models import Space, SpaceState, Turn, Visibility, Word

READY = SpaceState.READY
#: Ids per partition in these tests: a thousand candidates span dozens.
SMALL = 128


@pytest.fixture
def partitioned(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """The catalog, its PostgreSQL search table made in partitions of ``SMALL`` ids (SQLite: as it is)."""
    monkeypatch.setattr(pg_search, "PARTITION_IDS", SMALL)
    # A few partitions a look: a thousand candidates take several looks, the
    # last ones stopping short of the partitions they were given.
    monkeypatch.setattr(pg_search, "LOOK_PARTITIONS", 3)
    catalog.create_schema()  # the trigger's partitions are SMALL ids from here on
    return catalog


def _turn(speaker: str, start: float, text: str) -> Turn:
    return Turn(
        speaker, tuple(Word(start + i * 0.5, start + i * 0.5 + 0.4, w, speaker) for i, w in enumerate(text.split()))
    )


def _harbour(catalog: Catalog, newer: int, *, every: int) -> None:
    """Many matches, then the best "harbour lights" turn, then ``newer`` matches, each after ``every - 1`` others.

    More matches than the candidates in all: PostgreSQL looks at partitions
    one by one until it has them.
    """
    spaces = [
        Space("older", "Older", "ann", 0.5, state=READY, speakers=("ann",)),
        Space("old", "Old", "ann", 1.0, state=READY, speakers=("ann",)),
        Space("new", "New", "ben", 2.0, state=READY, speakers=("ben",)),
        Space("hid", "Hidden", "cy", 3.0, state=READY, visibility=Visibility.PRIVATE, speakers=("cy",)),
    ]
    rows = [TurnRow("older", i, "ann", i * 1.0, i + 0.5, f"harbour lights far back {i}") for i in range(1500)]
    rows.append(TurnRow("old", 0, "ann", 0.0, 2.0, "harbour lights harbour lights zanzibar"))
    rows += [TurnRow("old", 1 + i, "ann", 3.0 + i, 3.5 + i, "the sea is calm tonight") for i in range(200)]
    # Newer, in a space nobody may see: never a candidate, whatever its words.
    rows += [TurnRow("hid", i, "cy", i * 1.0, i + 0.5, "harbour lights zanzibar") for i in range(50)]
    for i in range(newer * every):
        text = f"the boats left the harbour lights on {i}" if i % every == every - 1 else f"calm water {i}"
        rows.append(TurnRow("new", i, "ben", i * 3.0, i * 3.0 + 2, text))
    rows.append(TurnRow("new", newer * every, "ben", 1e6, 1e6 + 1, "zanzibar at last"))
    catalog.bulk_insert(spaces, rows)


@pytest.mark.parametrize("every", [1, 3, 12])
@pytest.mark.parametrize("newer", [MAX_CANDIDATES - 1, MAX_CANDIDATES])
def test_the_candidates_are_the_newest_matching_turns_however_dense(
    partitioned: Catalog, newer: int, every: int
) -> None:
    """Dense (each turn), middling and sparse matches across partitions: the old best turn is ranked
    while it is among the newest MAX_CANDIDATES matches, and not once it is older."""
    _harbour(partitioned, newer, every=every)
    hits = partitioned.search("harbour lights", limit=20)
    assert len(hits) == 20 and "hid" not in {h.space_id for h in hits}
    ranked_old = (hits[0].space_id, hits[0].start) == ("old", 0.0)
    assert ranked_old == (newer < MAX_CANDIDATES)
    pages = [partitioned.search("harbour lights", limit=100, offset=o) for o in range(0, MAX_CANDIDATES + 100, 100)]
    seen = [(h.space_id, h.start) for page in pages for h in page]
    assert len(seen) == len(set(seen)) == MAX_CANDIDATES, "every candidate once, none more"
    assert {h.space_id for h in partitioned.search("zanzibar", limit=10)} == {"old", "new"}, "rare words: all turns"
    assert [h.space_id for h in partitioned.search("zanzibar", limit=10, visible=["hid"])][:1] == ["hid"]


def _mirror(cur: psycopg.Cursor[tuple[object, ...]]) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    columns = "id, space_id, start_s, live, ts_config::text, tsv::text"
    turns = cur.execute(f"SELECT {columns} FROM turns ORDER BY id").fetchall()
    return turns, cur.execute(f"SELECT {columns} FROM turn_search ORDER BY id").fetchall()


@pytest.fixture
def pg(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PostgresCatalog, psycopg.Connection[tuple[object, ...]]]]:
    monkeypatch.setattr(pg_search, "PARTITION_IDS", SMALL)
    catalog = PostgresCatalog(pg_url)
    catalog.create_schema()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield catalog, conn
    catalog.close()


def test_postgres_search_table_follows_every_write_to_turns(
    pg: tuple[PostgresCatalog, psycopg.Connection[tuple[object, ...]]],
) -> None:
    catalog, conn = pg
    cur = conn.cursor()
    _harbour(catalog, 100, every=2)
    turns, mirrored = _mirror(cur)
    assert len(turns) > 300 and mirrored == turns
    made = cur.execute(
        "SELECT (SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'turn_search'::regclass),"
        f" (SELECT MAX(id) / {SMALL} + 1 FROM turns)"
    ).fetchone()
    assert made is not None and made[0] == made[1], "a partition for each SMALL ids"

    catalog.put_space(Space("live1", "On air", "dee", 4.0, state=SpaceState.LIVE, speakers=("dee",)))
    catalog.add_live_turns("live1", [_turn("dee", 1.0, "harbour lights live")])
    catalog.replace_turns("old", [_turn("ann", 0.0, "only the harbour now")])
    catalog.delete_space("hid")
    cur.execute("UPDATE turns SET text = 'renamed harbour' WHERE space_id = 'new' AND seq = 1")
    turns, mirrored = _mirror(cur)
    assert mirrored == turns
    assert any(r[1] == "live1" and r[3] == 1 for r in mirrored), "a live turn, marked live"
    assert not any(r[1] == "hid" for r in mirrored)
    assert [h.start for h in catalog.search("renamed", limit=5)] == [3.0]


def test_an_older_postgres_catalog_gets_its_search_table_and_answers_the_same(
    pg: tuple[PostgresCatalog, psycopg.Connection[tuple[object, ...]]],
) -> None:
    catalog, conn = pg
    _harbour(catalog, 300, every=3)

    def answers() -> list[list[tuple[str, float, float]]]:
        return [
            [(h.space_id, h.start, h.rank) for h in catalog.search(q, limit=20)]
            for q in ("harbour lights", "zanzibar", "calm", "boats harb")
        ]

    before = answers()
    assert all(before)
    conn.execute(
        "DROP TABLE turn_search; DROP TRIGGER turns_search_insert ON turns; DROP TRIGGER turns_search_update ON turns;"
        " DROP TRIGGER turns_search_delete ON turns; DROP FUNCTION turn_search_keep(); "
        "DROP FUNCTION turn_search_partitions(BIGINT, BIGINT)"
    )
    catalog.create_schema()
    turns, mirrored = _mirror(conn.cursor())
    assert mirrored == turns
    assert answers() == before
    catalog.put_space(Space("more", "More", "eve", 5.0, state=READY, speakers=("eve",)))
    catalog.replace_turns("more", [_turn("eve", 0.0, "zanzibar again")])
    assert {h.space_id for h in catalog.search("zanzibar", limit=10)} == {"old", "new", "more"}


@pytest.mark.parametrize(
    ("found", "seen", "need", "partitions"),
    [
        (0, 0, 500, 1),  # nothing seen yet: the newest partition first
        (3, SMALL // 2 - 1, 500, 1),  # too few ids seen to tell how dense: the next partition
        (100, SMALL, 50, 2),  # dense: half a partition's ids hold them, reached back twice as far
        (10, SMALL, 40, 9),  # 4 partitions' ids hold them: 8 with the reach, and the newest's few
        (1, SMALL, 500, 16),  # sparse: as many partitions as a look asks at most
    ],
)
def test_postgres_looks_as_far_back_as_the_matches_found_say(
    monkeypatch: pytest.MonkeyPatch, found: int, seen: int, need: int, partitions: int
) -> None:
    monkeypatch.setattr(pg_search, "PARTITION_IDS", SMALL)
    high = SMALL * 20 + 5
    assert high - pg_search.look_low(found, seen, high, need) == SMALL * (partitions - 1) + 5
    assert pg_search.look_low(found, seen, SMALL * 2, need) >= 0, "no further back than the first id"
    assert pg_search.rare(0, SMALL // 2) and not pg_search.rare(0, SMALL // 2 - 1) and not pg_search.rare(1, SMALL)
    # 5 in the newest SMALL ids: about 100 below SMALL * 20, read at once if more are needed.
    assert pg_search.at_once(5, SMALL, SMALL * 20, 101) and not pg_search.at_once(5, SMALL, SMALL * 20, 100)
    assert not pg_search.at_once(1, SMALL // 2 - 1, SMALL * 20, 1000), "too few ids seen to tell"
    assert pg_search.look(5, SMALL, SMALL * 20, 101) == [(0, SMALL * 20)]
    assert pg_search.look(100, SMALL, high, 50) == [(SMALL * 20, high), (SMALL * 19, SMALL * 20)]
    assert pg_search.partition_low(SMALL * 3 + 1) == SMALL * 3
    assert pg_search.partition_low(SMALL * 3) == SMALL * 2


def _lights(catalog: Catalog) -> dict[tuple[str, float], str]:
    """Three old turns say "light" as typed; the newest, whole partitions of them, only "lighthouse" (30 turns).

    Returns each turn that says either, by (space, start), with its text.
    """
    spaces = [
        Space("old", "Old", "ann", 1.0, state=READY, speakers=("ann",)),
        Space("new", "New", "ben", 2.0, state=READY, speakers=("ben",)),
    ]
    rows = [TurnRow("old", i, "ann", i * 1.0, i + 0.5, f"the light was low {i}") for i in range(3)]
    rows += [
        TurnRow("new", i, "ben", i * 3.0, i * 3.0 + 2, f"a lighthouse beam {i}" if i % 10 == 9 else f"calm water {i}")
        for i in range(300)
    ]
    catalog.bulk_insert(spaces, rows)
    return {(r.space_id, r.start): r.text for r in rows if "light" in r.text}


def test_words_as_typed_too_rare_to_fill_the_page_are_counted_not_ranked(
    partitioned: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last word as typed ("light") is in no newest turn and in fewer turns than the page: PostgreSQL counts
    them and searches by prefix at once instead of ranking them first. The hits are those of the full read."""
    said = _lights(partitioned)
    old = {k for k, text in said.items() if "lighthouse" not in text}

    def found(limit: int, offset: int = 0) -> list[tuple[str, float, float, str]]:
        return [
            (h.space_id, h.start, h.rank, h.snippet) for h in partitioned.search("light", limit=limit, offset=offset)
        ]

    whole = found(50)
    assert {(s, start) for s, start, *_ in whole} == set(said), "every light and lighthouse, by prefix"
    assert {(s, start) for s, start, *_ in found(3)} == old, "a page the words as typed fill: theirs alone"
    assert found(3, offset=1) == whole[1:4], "a page they do not fill (its end is past them): by prefix"
    assert found(20, offset=10) == whole[10:30]
    if not isinstance(partitioned, PostgresCatalog):
        return
    ranked_all = 0
    rank_all = PostgresCatalog._ranked

    def counting(self: PostgresCatalog, *args: object) -> object:
        nonlocal ranked_all
        ranked_all += 1
        return rank_all(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PostgresCatalog, "_ranked", counting)
    skipped = [found(50), found(3, offset=1), found(20, offset=10)]
    assert ranked_all == 0, "the words as typed were counted, never ranked"
    # As before the count: the words as typed read, ranked, then dropped.
    monkeypatch.setattr(PostgresCatalog, "_fills_page", lambda *_: True)
    assert [found(50), found(3, offset=1), found(20, offset=10)] == skipped
    assert ranked_all == 3
