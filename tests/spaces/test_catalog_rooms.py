"""Room state the API and the SFU share through the catalog: names, removals, unjoined spaces.

One suite over both backends: a name is bound to the first token that claims
it (atomically), a removal is remembered by token and by address, and
spaces nobody joined end as ``empty`` and leave the listings.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from spaces.catalog import Catalog, SpaceFilter
from spaces.models import Space, SpaceState


def test_a_name_belongs_to_the_first_token_that_claims_it(catalog: Catalog) -> None:
    catalog.put_space(Space("n1", "Names", "alice", 1.0))
    assert catalog.claim_name("n1", "carol", "t1") == "t1"
    assert catalog.claim_name("n1", "carol", "t2") == "t1"
    assert catalog.claim_name("n1", "carol", "t1") == "t1"
    assert catalog.claim_name("n2", "carol", "t2") == "t2", "names are per space"
    # Many claims at once (several API processes): exactly one wins, all agree on it.
    with ThreadPoolExecutor(8) as pool:
        holders = set(pool.map(lambda i: catalog.claim_name("n1", "dave", f"d{i}"), range(16)))
    assert len(holders) == 1
    catalog.delete_space("n1")
    assert catalog.claim_name("n1", "carol", "t3") == "t3", "deleting a space forgets its names"


def test_removal_is_remembered_by_token_and_address(catalog: Catalog) -> None:
    assert not catalog.is_banned("b1", token_id="t1")
    catalog.ban("b1", token_id="t1", address="203.0.113.7")
    catalog.ban("b1", token_id="t1", address="203.0.113.7")
    catalog.ban("b1", token_id="t2", address=None)
    assert catalog.is_banned("b1", token_id="t1") and catalog.is_banned("b1", token_id="t2")
    assert catalog.is_banned("b1", address="203.0.113.7")
    assert catalog.is_banned("b1", token_id="other", address="203.0.113.7")
    assert not catalog.is_banned("b1", token_id="t3", address="198.51.100.1")
    assert not catalog.is_banned("b2", token_id="t1", address="203.0.113.7"), "bans are per space"
    assert not catalog.is_banned("b1")


def test_unjoined_spaces_end_empty_and_leave_the_lists(catalog: Catalog) -> None:
    catalog.put_space(Space("old", "Abandoned", "a", 100.0))
    catalog.put_space(Space("new", "Fresh", "a", 900.0))
    catalog.put_space(Space("live", "On air", "a", 50.0, state=SpaceState.LIVE))
    catalog.put_space(Space("done", "Past", "a", 40.0, state=SpaceState.READY))
    assert catalog.end_unjoined(500.0) == 1
    assert catalog.end_unjoined(500.0) == 0, "idempotent"
    assert catalog.get_space("old").state is SpaceState.EMPTY
    assert catalog.get_space("new").state is SpaceState.CREATED
    assert [s.space_id for s in catalog.list_spaces(SpaceFilter(), limit=10)] == ["new", "live", "done"]
    assert [s.space_id for s in catalog.list_spaces(SpaceFilter(state=SpaceState.EMPTY), limit=10)] == ["old"]
