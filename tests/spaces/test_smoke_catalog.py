from spaces.catalog import Catalog, SpaceFilter, TurnRow
from spaces.models import Space, SpaceState, Turn, Word


def test_roundtrip_and_search(catalog: Catalog) -> None:
    catalog.put_space(Space("s1", "Cards night", "alice", 1.0, state=SpaceState.READY, speakers=("alice", "bob")))
    w = [Word(1.0, 1.4, "ten", "bob"), Word(1.5, 1.8, "of", "bob"), Word(1.9, 2.3, "clubs", "bob")]
    catalog.replace_turns("s1", [Turn("bob", tuple(w))])
    catalog.replace_turns("s1", [Turn("bob", tuple(w))])
    hits = catalog.search('"ten of clubs"', limit=10)
    assert [(h.space_id, h.speaker, h.start) for h in hits] == [("s1", "bob", 1.0)]
    assert "<mark>" in hits[0].snippet
    assert catalog.search('clubs" NEAR( * (', limit=10) == []
    assert catalog.search('(clubs" *', limit=10)[0].space_id == "s1"
    assert [s.space_id for s in catalog.list_spaces(SpaceFilter(speaker="bob"), limit=5)] == ["s1"]


def test_bulk_insert_talk_times_and_transcript_filters(catalog: Catalog) -> None:
    spaces = [
        Space(f"b{i}", f"Bulk {i}", "ann", float(i), state=SpaceState.READY, speakers=("ann", "ben")) for i in range(3)
    ]
    rows = [
        TurnRow(f"b{i}", seq, "ben" if seq % 2 else "ann", seq * 2.0, seq * 2.0 + 1.5, f"turn {seq} on harbour seals")
        for i in range(3)
        for seq in range(4)
    ]
    catalog.bulk_insert(spaces, rows)
    assert catalog.talk_times("b1") == {"ann": 3.0, "ben": 3.0}
    assert len(catalog.search("harbour seals", limit=50)) == 12
    assert {h.space_id for h in catalog.search("seals", limit=50, space_id="b2")} == {"b2"}
    # The text filter of listings matches titles and transcripts.
    assert [s.space_id for s in catalog.list_spaces(SpaceFilter(text="harbour"), limit=10)] == ["b2", "b1", "b0"]
    assert [s.space_id for s in catalog.list_spaces(SpaceFilter(text="bulk 1"), limit=10)] == ["b1"]
    # Bulk-loaded turns are replaced like any others.
    catalog.replace_turns("b0", [])
    assert {h.space_id for h in catalog.search("seals", limit=50)} == {"b1", "b2"}
    assert catalog.talk_times("b0") == {}
