"""Two SFU nodes on loopback (``python -m ingest`` each): placement, ``moved``, a node killed.

Each node has its own port, spool and node id; both share the catalog, the
blob store and Redis with the API (run in-process), as nodes on several
machines do.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from rq import Queue

from ingest.client import PcmTrack, SpaceClient
from replay_api.app import create_app
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.models import Manifest, SpaceState, Track
from spaces.queue import connect, job_id
from spaces.router import NodeRouter
from spaces.settings import Settings
from spaces.sweeper import Sweeper
from spaces.tokens import Role
from tests.exclusive import Hold
from tests.support.services import free_port
from tests.support.sfu import (
    VOICE_A,
    VOICE_B,
    get_space,
    make_space,
    rtc_url,
    sfu_env,
    sfu_process,
    sfu_stats,
    speech48k,
    token,
)

#: Fast heartbeats so a dead node is noticed within a couple of seconds.
HEARTBEAT, NODE_TIMEOUT = 0.5, 2.0


@dataclass
class Nodes:
    api: Settings
    a: Settings
    b: Settings
    logs: Path

    def log(self, settings: Settings) -> Path:
        return self.logs / f"{settings.sfu_node_id}.log"

    def router(self) -> NodeRouter:
        return NodeRouter.from_settings(self.api)


def node_settings(base: Settings, node_id: str, tmp_path: Path, *, grace: float) -> Settings:
    return replace(
        base,
        sfu_port=free_port(),
        sfu_node_id=node_id,
        sfu_spool_dir=str(tmp_path / f"spool-{node_id}"),
        sfu_heartbeat=HEARTBEAT,
        sfu_node_timeout=NODE_TIMEOUT,
        sfu_node_grace=grace,
    )


def two_nodes(sfu_settings: Settings, tmp_path: Path, *, grace: float = 600.0) -> Nodes:
    api = replace(sfu_settings, sfu_node_timeout=NODE_TIMEOUT, sfu_node_grace=grace)
    return Nodes(
        api=api,
        a=node_settings(api, "node-a", tmp_path, grace=grace),
        b=node_settings(api, "node-b", tmp_path, grace=grace),
        logs=tmp_path,
    )


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not in {timeout:.0f} s"
        time.sleep(0.1)


def live_ids(nodes: Nodes) -> set[str]:
    router = nodes.router()
    try:
        return {n.node_id for n in router.live_nodes()}
    finally:
        router.close()


@pytest.fixture
def pair(sfu_settings: Settings, tmp_path: Path) -> Iterator[Nodes]:
    nodes = two_nodes(sfu_settings, tmp_path)
    with sfu_process(nodes.a, nodes.log(nodes.a)), sfu_process(nodes.b, nodes.log(nodes.b)):
        wait_until(lambda: live_ids(nodes) == {"node-a", "node-b"}, "both nodes registered")
        yield nodes


def port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def test_spaces_spread_over_both_nodes_and_a_wrong_join_follows_moved(pair: Nodes) -> None:
    nodes = pair
    ports = {nodes.a.sfu_port: "node-a", nodes.b.sfu_port: "node-b"}
    with TestClient(create_app(nodes.api)) as api:
        created = [api.post("/spaces", json={"title": f"Room {i}", "host": "ann"}).json() for i in range(4)]
        on = [ports[port_of(c["rtc_url"])] for c in created]
        assert sorted(on) == ["node-a", "node-a", "node-b", "node-b"], on
        for c, node in zip(created, on, strict=True):
            assert get_space(nodes.api, c["space_id"]).node == node
            assert port_of(c["sfu_url"]) == port_of(c["rtc_url"])
        listed = {n["node_id"]: n for n in api.get("/nodes").json()}
        assert set(listed) == {"node-a", "node-b"} and all(n["alive"] for n in listed.values())
        page = api.get("/live").text
        assert 'data-node="node-a"' in page and 'data-node="node-b"' in page
        # The live page may be sent to either node by a "moved": both are allowed to connect.
        csp = api.get(f"/spaces/{created[0]['space_id']}/live").headers["content-security-policy"]
        assert f"ws://127.0.0.1:{nodes.a.sfu_port}" in csp and f"ws://127.0.0.1:{nodes.b.sfu_port}" in csp

    # A join sent to the wrong node is told where the space is, and follows.
    first = created[on.index("node-a")]
    space_id = first["space_id"]
    wrong = rtc_url(nodes.b, space_id)

    async def join() -> SpaceClient:
        client = SpaceClient(wrong, first["token"], decode=False)
        await client.connect()
        await client.wait_for(lambda c: c.welcome is not None)
        await client.close()
        return client

    client = asyncio.run(join())
    moved = [m for m in client.messages if m["type"] == "moved"]
    assert moved == [{"type": "moved", "rtc_url": rtc_url(nodes.a, space_id), "node": "node-a"}]
    assert client.rtc_url == rtc_url(nodes.a, space_id) and not client.errors
    # Never a second copy of the room: only node-a opened it.
    stats = {n: sfu_stats(s) for n, s in (("a", nodes.a), ("b", nodes.b))}
    assert [r["space_id"] for r in stats["a"]["rooms"]] == [space_id]
    assert stats["b"]["rooms"] == [] and stats["b"]["node"] == "node-b"


def test_a_second_node_with_the_same_id_refuses_to_start(pair: Nodes, tmp_path: Path) -> None:
    nodes = pair
    twin = replace(nodes.a, sfu_port=free_port(), sfu_spool_dir=str(tmp_path / "spool-twin"))
    done = subprocess.run(
        [sys.executable, "-m", "ingest"], env=sfu_env(twin), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error: SFU node 'node-a' is already running at http://127.0.0.1:" in done.stderr
    # The first one is untouched.
    assert live_ids(nodes) == {"node-a", "node-b"}
    assert httpx.get(f"http://127.0.0.1:{nodes.a.sfu_port}/healthz").status_code == 200


SAID = {
    "ann": "Please remember to bring your notebook to the meeting tomorrow.",
    "bob": "The train to the city leaves every hour from platform four.",
    "cy": "Our team finished the project two weeks ahead of schedule.",
}


@dataclass
class Killed:
    spaces: list[str]
    """The killed node's spaces."""
    other: str
    """node-b's space."""
    killed_at: float
    gaps: int
    """RTP packets missing in what the other node's listener received."""
    received: int


def kill_one_node(nodes: Nodes, hold: Hold) -> Killed:
    """Two rooms on node-a, one on node-b; SIGKILL node-a while all three have a speaker.

    The rooms run alone (``hold``): packets are counted across the kill, and
    what node-a wrote before it is measured against real time.
    """
    on_a = [make_space(nodes.api, title="On A 1"), make_space(nodes.api, title="On A 2")]
    on_b = make_space(nodes.api, title="On B")
    seqs: list[int] = []
    killed_at = 0.0

    with sfu_process(nodes.a, nodes.log(nodes.a)) as proc_a, sfu_process(nodes.b, nodes.log(nodes.b)):
        wait_until(lambda: live_ids(nodes) == {"node-a", "node-b"}, "both nodes registered")

        async def scenario() -> None:
            nonlocal killed_at
            speakers = [
                SpaceClient(
                    rtc_url(s, space_id),
                    token(s, space_id, name, Role.HOST),
                    track=PcmTrack(speech48k(SAID[name], voice, tail=0.3), loop=True),
                    decode=False,
                )
                for s, space_id, name, voice in (
                    (nodes.a, on_a[0], "ann", VOICE_A),
                    (nodes.a, on_a[1], "bob", VOICE_B),
                    (nodes.b, on_b, "cy", VOICE_A),
                )
            ]
            listener = SpaceClient(
                rtc_url(nodes.b, on_b),
                token(nodes.b, on_b, "lis", Role.LISTENER),
                decode=False,
                on_packet=lambda slot, packet, now: seqs.append(packet.sequence_number),
            )
            for client in (*speakers, listener):
                await client.connect()
            await listener.wait_for(lambda c: any(r.packets > 50 for r in c.received.values()), timeout=20)
            await asyncio.sleep(4.5)  # at least two 2-s segments per speaker uploaded
            killed_at = time.time()
            proc_a.send_signal(signal.SIGKILL)
            heard = len(seqs)
            await asyncio.sleep(4.0)  # node-b's room carries on meanwhile
            assert len(seqs) - heard > 150, "node-b's listener stopped hearing its speaker"
            await speakers[2].send({"type": "end"})
            await speakers[2].wait_for(lambda c: any(m["type"] == "ended" for m in c.messages), timeout=20)
            for client in (*speakers, listener):
                await client.close()

        with hold.alone():
            asyncio.run(scenario())
        assert proc_a.wait(timeout=10) == -signal.SIGKILL
        wait_until(lambda: get_space(nodes.api, on_b).state is SpaceState.RECORDED, "node-b's room recorded")
    assert not get_space(nodes.api, on_b).partial
    # Wrapping 16-bit sequence numbers, in arrival order: any jump over 1 is a lost packet.
    gaps = sum(((b - a) % 65536) - 1 for a, b in zip(seqs, seqs[1:], strict=False) if (b - a) % 65536 > 1)
    return Killed(spaces=on_a, other=on_b, killed_at=killed_at, gaps=gaps, received=len(seqs))


def finalize_jobs(settings: Settings) -> list[str]:
    return sorted(j for j in Queue(settings.queue_name, connection=connect(settings)).job_ids if "finalize" in j)


def assert_partial_and_bounded(settings: Settings, space_id: str, killed_at: float, *, max_lost: float) -> bytes:
    """Recorded as partial, with at most ``max_lost`` seconds before the kill missing; the manifest."""
    space = get_space(settings, space_id)
    assert space.state is SpaceState.RECORDED and space.partial, space
    blobs = open_blob_store(settings)
    raw = blobs.get(keys.manifest(space_id))
    manifest = Manifest.from_dict(json.loads(raw))
    assert manifest.partial and len(manifest.tracks) == 1
    ((track_id, _),) = manifest.tracks
    track = Track.from_dict(json.loads(blobs.get(keys.track_manifest(space_id, track_id))))
    lost = killed_at - manifest.started_at - track.end
    print(f"{space_id}: {lost:.2f} s before the kill missing")
    assert 0 <= lost <= max_lost, f"{space_id}: {lost:.2f} s lost"
    return raw


@pytest.mark.parametrize("comes_back", [True, False], ids=["restarted", "gone"])
def test_a_killed_node_costs_the_other_nothing_and_its_spaces_are_finalized_once(
    sfu_settings: Settings, tmp_path: Path, comes_back: bool, cpu_lock: Hold
) -> None:
    grace = 600.0 if comes_back else 3.0
    nodes = two_nodes(sfu_settings, tmp_path, grace=grace)
    killed = kill_one_node(nodes, cpu_lock)
    print(f"node-b's listener: {killed.received} packets, {killed.gaps} lost across the kill of node-a")
    assert killed.gaps == 0
    log_a = nodes.log(nodes.a)

    if comes_back:
        # Restarted on the same machine, the node recovers its spool: the last moments lost at most.
        with sfu_process(nodes.a, log_a):
            for space_id in killed.spaces:
                wait_until(lambda s=space_id: get_space(nodes.api, s).state is SpaceState.RECORDED, "recovered")
            router = nodes.router()
            # The catalog says recorded a moment before the node releases each space in the registry.
            wait_until(lambda: {router.owner(s) for s in killed.spaces} == {"done:node-a"}, "handed over")
            assert router.spaces_of("node-a") == []
            # A sweep now (or later) finds nothing to do: the node handed them over itself.
            sweeper = Sweeper(replace(nodes.api, sfu_node_grace=0.0), router=router)
            assert sweeper.sweep() == []
        for space_id in killed.spaces:
            assert_partial_and_bounded(nodes.api, space_id, killed.killed_at, max_lost=2.0)
    else:
        # It does not come back: after the grace period node-b's sweep finalizes its spaces
        # from the segments already in the blob store, as partial.
        with sfu_process(nodes.b, nodes.log(nodes.b)):
            for space_id in killed.spaces:
                wait_until(
                    lambda s=space_id: get_space(nodes.api, s).state is SpaceState.RECORDED,
                    "swept",
                    timeout=NODE_TIMEOUT + grace + 30,
                )
        # Lost for good: the open segment, and any closed one not yet uploaded.
        limit = nodes.a.sfu_segment_seconds + 1.5
        manifests = {
            s: assert_partial_and_bounded(nodes.api, s, killed.killed_at, max_lost=limit) for s in killed.spaces
        }
        spaces_before = {s: get_space(nodes.api, s) for s in killed.spaces}
        # Then it comes back after all: its spool is set aside, nothing is finalized twice.
        with sfu_process(nodes.a, log_a):
            wait_until(lambda: not any((Path(nodes.a.sfu_spool_dir) / s).exists() for s in killed.spaces), "set aside")
        aside = Path(nodes.a.sfu_spool_dir) / ".superseded"
        assert sorted(p.name for p in aside.iterdir()) == sorted(killed.spaces)
        assert "was finalized without this node while it was down" in log_a.read_text()
        blobs = open_blob_store(nodes.api)
        for space_id in killed.spaces:
            assert blobs.get(keys.manifest(space_id)) == manifests[space_id]
            assert get_space(nodes.api, space_id) == spaces_before[space_id]
    # Once each: one pipeline run per space, whoever finalized it.
    assert finalize_jobs(nodes.api) == sorted(job_id(s, "finalize") for s in (*killed.spaces, killed.other))
    Queue(nodes.api.queue_name, connection=connect(nodes.api)).delete(delete_jobs=True)
