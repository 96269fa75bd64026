"""The sweep: a dead node's live space is finalized from the blob store, as partial, once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from rq import Queue

from ingest.node import Counters, NodeAgent
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.models import Manifest, Segment, Space, SpaceState, Track
from spaces.nodes import Node
from spaces.placement.load import select_least_loaded
from spaces.queue import connect, job_id
from spaces.settings import Settings
from spaces.sweeper import Sweeper, SweepingWorker
from tests.spaces.test_router import wait_until


@pytest.fixture
def sweep_settings(backend_settings: Settings, redis_url: str) -> Settings:
    return replace(backend_settings, sfu_node_timeout=0.5, sfu_node_grace=0.0)


@pytest.fixture
def sweeper(sweep_settings: Settings) -> Iterator[Sweeper]:
    s = Sweeper(sweep_settings)
    yield s
    Queue(sweep_settings.queue_name, connection=connect(sweep_settings)).delete(delete_jobs=True)
    s.close()


def test_dead_nodes_spaces_are_finalized_once(sweep_settings: Settings, sweeper: Sweeper) -> None:
    settings = sweep_settings
    blobs, catalog = open_blob_store(settings), open_catalog(settings)
    catalog.create_schema()
    live, idle = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    started = time.time() - 30
    catalog.put_space(
        Space(
            space_id=live,
            title="Lost node",
            host="ann",
            created_at=started,
            node="n1",
            state=SpaceState.LIVE,
            speakers=("ann",),
        )
    )
    catalog.put_space(Space(space_id=idle, title="Nobody came", host="bob", created_at=started, node="n1"))
    # What the node had uploaded when it died: its manifest (written at room start) and two tracks.
    blobs.put(keys.manifest(live), json.dumps(Manifest(live, "Lost node", "ann", started).to_dict()).encode())
    for track_id, speaker, end in (("00-ann", "ann", 20.0), ("01-cy", "cy", 14.0)):
        segs = tuple(
            Segment(seq=i, key=keys.segment(live, track_id, i), offset=i * 10.0, duration=min(10.0, end - i * 10))
            for i in range(int((end + 9.99) // 10))
        )
        blobs.put(keys.track_manifest(live, track_id), json.dumps(Track(track_id, speaker, segs).to_dict()).encode())
    router = sweeper.router
    router.register(Node(node_id="n1", url="http://n1.test:8001"), "i1", holds_spool=True)
    for s in (live, idle):
        router.place(s, select_least_loaded)
    router.open_room(live, "n1")

    assert sweeper.sweep() == []  # alive: nothing to do
    wait_until(lambda: not router.live_nodes())
    assert sweeper.sweep() == [live]

    space = catalog.get_space(live)
    assert space.state is SpaceState.RECORDED and space.partial
    assert space.duration == 20.0 and set(space.speakers) == {"ann", "cy"}
    manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(live))))
    assert manifest.partial and manifest.tracks == (("00-ann", "ann"), ("01-cy", "cy"))
    assert manifest.ended_at == pytest.approx(started + 20.0)
    queue = Queue(settings.queue_name, connection=connect(settings))
    assert queue.job_ids == [job_id(live, "finalize")]
    # The space that never went live is free to be placed again; the dead node is forgotten.
    assert catalog.get_space(idle).state is SpaceState.CREATED and router.owner(idle) is None
    assert router.nodes() == []
    # Once: another pass, and the node coming back, change nothing.
    assert sweeper.sweep() == []
    assert not router.claim_recovery(live, "n1")
    assert queue.job_ids == [job_id(live, "finalize")]


def test_pipeline_workers_sweep_in_their_maintenance_pass(sweep_settings: Settings, sweeper: Sweeper) -> None:
    """With every SFU node gone, the workers still finalize the spaces of the dead."""
    settings = sweep_settings
    catalog = open_catalog(settings)
    catalog.create_schema()
    space_id = uuid.uuid4().hex[:16]
    catalog.put_space(
        Space(space_id=space_id, title="All gone", host="ann", created_at=time.time(), state=SpaceState.LIVE, node="n1")
    )
    router = sweeper.router
    router.register(Node(node_id="n1", url="http://n1.test:8001"), "i1", holds_spool=True)
    router.place(space_id, select_least_loaded)
    wait_until(lambda: not router.live_nodes())
    connection = connect(settings)
    worker = SweepingWorker(
        [Queue(settings.queue_name, connection=connection)], connection=connection, settings=settings
    )
    worker.run_maintenance_tasks()
    space = catalog.get_space(space_id)
    assert space.state is SpaceState.RECORDED and space.partial
    assert Queue(settings.queue_name, connection=connection).job_ids == [job_id(space_id, "finalize")]


@pytest.mark.parametrize("finisher", ["next sweep", "the node back"])
def test_a_sweep_that_died_before_the_queue_is_finished(
    sweep_settings: Settings, sweeper: Sweeper, finisher: str
) -> None:
    """Killed between marking the space recorded and enqueueing its pipeline: the job still comes, once."""
    settings = sweep_settings
    catalog = open_catalog(settings)
    catalog.create_schema()
    space_id = uuid.uuid4().hex[:16]
    space = Space(space_id=space_id, title="Half swept", host="ann", created_at=time.time(), state=SpaceState.LIVE)
    catalog.put_space(space)
    router = sweeper.router
    router.register(Node(node_id="n1", url="http://n1.test:8001"), "i1", holds_spool=True)
    router.place(space_id, select_least_loaded)
    router.open_room(space_id, "n1")
    wait_until(lambda: not router.live_nodes())
    # What the dying sweep did: the claim, then the catalog; not the queue.
    assert router.claim_sweep(space_id, "n1")
    catalog.put_space(replace(space, state=SpaceState.RECORDED, partial=True))
    queue = Queue(settings.queue_name, connection=connect(settings))
    assert queue.job_ids == []

    if finisher == "next sweep":
        assert sweeper.sweep() == [space_id]
    else:
        agent = NodeAgent(replace(settings, sfu_node_id="n1"), catalog=catalog, counters=lambda: Counters(0, 0, 0))
        assert not agent.claim_recovery(space_id)  # swept: the node sets its spool aside
        agent.sweeper.close()
    assert queue.job_ids == [job_id(space_id, "finalize")]
    assert router.spaces_of("n1") == []
    # Nothing more on a later pass.
    assert sweeper.sweep() == []
    assert queue.job_ids == [job_id(space_id, "finalize")]
