"""The default selector: fewest rooms, placed-but-unjoined spaces included."""

from __future__ import annotations

from spaces.placement import resolve_selector
from spaces.placement.load import select_least_loaded
from tests.spaces.placement import node


def test_fewest_rooms_wins() -> None:
    nodes = [node("a", rooms=3), node("b", rooms=1), node("c", rooms=2)]
    assert select_least_loaded(nodes).node_id == "b"


def test_placed_spaces_count_so_a_burst_spreads() -> None:
    # b reports fewer rooms, but three spaces were just placed on it.
    nodes = [node("a", rooms=2), node("b", rooms=0, pending=3)]
    assert select_least_loaded(nodes).node_id == "a"


def test_a_burst_alternates_between_equal_nodes() -> None:
    pending = {"a": 0, "b": 0}
    chosen = []
    for _ in range(6):
        pick = select_least_loaded([node(i, pending=n) for i, n in pending.items()])
        pending[pick.node_id] += 1
        chosen.append(pick.node_id)
    assert pending == {"a": 3, "b": 3}, chosen


def test_ties_go_to_fewer_participants_then_cpu() -> None:
    assert select_least_loaded([node("a", rooms=1, participants=9), node("b", rooms=1, participants=2)]).node_id == "b"
    assert select_least_loaded([node("a", rooms=1, cpu=0.5), node("b", rooms=1, cpu=0.2)]).node_id == "b"


def test_is_the_default_setting() -> None:
    assert resolve_selector("load") is select_least_loaded
