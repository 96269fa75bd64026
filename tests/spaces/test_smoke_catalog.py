from spaces.catalog import Catalog, SpaceFilter
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
