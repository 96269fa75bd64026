"""``cpuload``: lowest CPU in 10 % steps, then rooms (placed included)."""

from __future__ import annotations

from spaces.placement import resolve_selector
from spaces.placement.cpuload import select_cpuload
from tests.spaces.placement import node


def test_lowest_cpu_wins_over_fewer_rooms() -> None:
    assert select_cpuload([node("a", rooms=1, cpu=0.7), node("b", rooms=5, cpu=0.2)]).node_id == "b"


def test_cpu_noise_below_a_step_falls_back_to_rooms() -> None:
    nodes = [node("a", rooms=0, pending=2, cpu=0.01), node("b", rooms=1, cpu=0.04)]
    assert select_cpuload(nodes).node_id == "b"


def test_resolved_by_name() -> None:
    assert resolve_selector("cpuload") is select_cpuload
