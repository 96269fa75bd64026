"""A late failure of a superseded run does not overwrite the newer run's state.

The job timeout test meets this with real workers, when the first run's
pending retries fail after a reprocess started; whether any are pending then
depends on timing. Here the failure callback is called as rq calls it, on a
real Redis and catalog, so both sides are checked every time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from spaces import queue
from spaces.catalog import Catalog, open_catalog
from spaces.models import Space, SpaceState
from spaces.settings import Settings
from tests.support.workers import use_env
from workers import pipeline


@pytest.fixture
def worker_catalog(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    """The catalog the failure callback opens from the environment (as in a worker)."""
    use_env(settings, monkeypatch)
    cat = open_catalog(settings)
    cat.create_schema()
    yield cat
    cat.close()


def failed_job(connection: Redis, settings: Settings, space_id: str, stage: str, run: int) -> Job:
    """A stage job of ``run`` with no retries left, as rq hands it to ``on_failure``."""
    job = Queue(settings.queue_name, connection=connection).create_job(
        "workers.mix.mix", args=(space_id,), job_id=queue.job_id(space_id, stage, run), meta={queue.RUN: run}
    )
    job.retries_left = 0
    return job


def test_late_failure_of_a_superseded_run_leaves_the_state(settings: Settings, worker_catalog: Catalog) -> None:
    connection = queue.connect(settings)
    space_id = uuid.uuid4().hex[:16]
    worker_catalog.put_space(
        Space(space_id=space_id, title="t", host="alice", created_at=time.time(), state=SpaceState.READY)
    )
    try:
        run = queue.next_run(settings, space_id)  # a reprocess started (and here, finished)
        error = TimeoutError("Task exceeded maximum timeout value (1 seconds)")

        stale = failed_job(connection, settings, space_id, "mix", run - 1)
        pipeline.on_failure(stale, connection, type(error), error, None)
        assert worker_catalog.get_space(space_id).state is SpaceState.READY

        current = failed_job(connection, settings, space_id, "mix", run)
        pipeline.on_failure(current, connection, type(error), error, None)
        failed = worker_catalog.get_space(space_id)
        assert failed.state is SpaceState.FAILED
        assert failed.error == f"mix failed: {error}"
    finally:
        connection.delete(f"spaces:runs:{space_id}")


def test_the_run_travels_with_the_job_not_in_its_id(settings: Settings) -> None:
    connection = queue.connect(settings)
    q = Queue(settings.queue_name, connection=connection)
    space_id = uuid.uuid4().hex[:16]
    enqueued = queue.enqueue_once(q, "workers.mix.mix", space_id, job_id=f"{space_id}--mix", run=3)
    unmarked = q.create_job("workers.mix.mix", args=(space_id,), job_id=f"{space_id}--mix--r7")
    try:
        assert queue.run_of(Job.fetch(enqueued.id, connection=connection)) == 3
        assert queue.run_of(unmarked) == 0  # an id that looks like a run says nothing
    finally:
        enqueued.delete()
