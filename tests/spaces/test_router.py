"""The node router on a real Redis: registration, liveness, placement, ownership, hand-over claims."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from spaces.exceptions import NodeIdTaken, NoNode, RouterUnavailable
from spaces.nodes import Node, NodeLoad
from spaces.placement.load import select_least_loaded
from spaces.router import NodeRouter
from spaces.settings import Settings
from tests.support.services import free_port

TIMEOUT = 1.0


@pytest.fixture
def router(settings: Settings, redis_url: str) -> Iterator[NodeRouter]:
    r = NodeRouter.from_settings(replace(settings, sfu_node_timeout=TIMEOUT))
    yield r
    r.close()


def a_node(node_id: str, *, spool: str = "/spool") -> Node:
    return Node(node_id=node_id, url=f"http://{node_id}.test:8001", host="machine", spool=spool)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def space() -> str:
    return uuid.uuid4().hex[:16]


def test_a_second_process_with_the_same_id_is_refused(router: NodeRouter) -> None:
    router.register(a_node("n1"), "first", holds_spool=True)
    with pytest.raises(NodeIdTaken, match=r"SFU node 'n1' is already running at http://n1.test:8001 on machine"):
        router.register(a_node("n1"), "second", holds_spool=False)
    # Another spool (another process on the same machine): refused too.
    with pytest.raises(NodeIdTaken, match="SPACES_SFU_NODE_ID"):
        router.register(a_node("n1", spool="/other"), "second", holds_spool=True)
    # The same spool, whose lock the caller holds: the first process is gone, its id is taken back.
    router.register(a_node("n1"), "restarted", holds_spool=True)
    with pytest.raises(NodeIdTaken, match="taken over"):
        router.heartbeat(a_node("n1"), "first", NodeLoad())


def test_stale_registrations_are_never_handed_out(router: NodeRouter) -> None:
    router.register(a_node("old"), "i-old", holds_spool=True)
    router.register(a_node("new"), "i-new", holds_spool=True)
    assert {n.node_id for n in router.live_nodes()} == {"old", "new"}

    def only_new_alive() -> bool:
        router.heartbeat(a_node("new"), "i-new", NodeLoad(rooms=5))
        return [n.node_id for n in router.live_nodes()] == ["new"]

    wait_until(only_new_alive)
    # "old" has the fewest rooms, but its registration is stale.
    assert {router.place(space(), select_least_loaded).node_id for _ in range(5)} == {"new"}
    assert {n.node_id: n.alive for n in router.nodes()} == {"old": False, "new": True}
    wait_until(lambda: not router.live_nodes())
    with pytest.raises(NoNode, match="no SFU node is running"):
        router.place(space(), select_least_loaded)


def test_a_burst_of_placements_spreads(router: NodeRouter) -> None:
    router.register(a_node("a"), "ia", holds_spool=True)
    router.register(a_node("b"), "ib", holds_spool=True)
    placed = [router.place(space(), select_least_loaded).node_id for _ in range(6)]
    assert placed.count("a") == 3 and placed.count("b") == 3, placed
    assert {n.node_id: n.pending for n in router.nodes()} == {"a": 3, "b": 3}


def test_only_the_owner_opens_a_room(router: NodeRouter) -> None:
    router.register(a_node("a"), "ia", holds_spool=True)
    router.register(a_node("b"), "ib", holds_spool=True)
    s = space()
    owner = router.place(s, select_least_loaded).node_id
    other = "b" if owner == "a" else "a"
    moved = router.open_room(s, other)
    assert moved.kind == "moved" and moved.node is not None and moved.node.node_id == owner
    assert moved.node.rtc_url(s) == f"ws://{owner}.test:8001/spaces/{s}/rtc"
    assert router.open_room(s, owner).kind == "own"
    assert {n.node_id: n.pending for n in router.nodes()}[owner] == 0  # opened: no longer pending
    # A space nobody placed (created before nodes existed): the first node asked takes it.
    legacy = space()
    assert router.open_room(legacy, "b").kind == "own"
    assert router.open_room(legacy, "a").kind == "moved"


def test_a_dead_nodes_space_is_finalized_by_one_party_only(router: NodeRouter) -> None:
    router.register(a_node("a"), "ia", holds_spool=True)
    swept, recovered = space(), space()
    for s in (swept, recovered):
        router.place(s, select_least_loaded)
        router.open_room(s, "a")
    wait_until(lambda: not router.live_nodes())  # "a" stopped heartbeating
    assert router.open_room(swept, "b").kind == "dead"
    # A sweep took one space: the node, back, may no longer finalize it.
    assert router.claim_sweep(swept, "a")
    assert not router.claim_recovery(swept, "a")
    assert router.open_room(swept, "b").kind == "ended"
    # The node recovered the other first: the sweep leaves it alone once it is released.
    assert router.claim_recovery(recovered, "a")
    router.release(recovered, "a")
    assert router.spaces_of("a") == [swept]
    assert not router.claim_sweep(recovered, "a")
    router.swept(swept, "a")
    assert router.spaces_of("a") == []
    assert router.forget("a") and router.nodes() == []


def test_a_space_that_never_went_live_moves_off_a_dead_node(router: NodeRouter) -> None:
    router.register(a_node("a"), "ia", holds_spool=True)
    s = space()
    router.place(s, select_least_loaded)
    wait_until(lambda: not router.live_nodes())
    router.register(a_node("b"), "ib", holds_spool=True)
    with pytest.raises(NoNode, match="not responding"):
        router.node_for(s, select_least_loaded, may_move=False)
    node = router.node_for(s, select_least_loaded, may_move=True)
    assert node is not None and node.node_id == "b"
    assert router.owner(s) == "b" and router.spaces_of("a") == []


def test_redis_unreachable_is_router_unavailable(settings: Settings) -> None:
    away = NodeRouter.from_settings(replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(RouterUnavailable, match="registry .*unreachable"):
        away.place(space(), select_least_loaded)
