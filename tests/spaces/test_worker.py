"""Jobs queued before their function moved still run (real Redis, a queue of our own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rq import Queue

from spaces import queue
from spaces.settings import Settings
from spaces.worker import MOVED, PipelineWorker
from workers.assemble import assemble
from workers.transcribe_room import transcribe_room


@pytest.fixture
def q(settings: Settings) -> Iterator[Queue]:
    q = queue.pipeline_queue(settings)
    yield q
    q.empty()
    q.delete(delete_jobs=True)


def test_a_job_queued_under_its_old_path_finds_its_function(q: Queue) -> None:
    for old in MOVED:
        q.enqueue(old, "space1")
    worker = PipelineWorker([q], connection=q.connection)
    found = []
    while (dequeued := Queue.dequeue_any([q], None, connection=q.connection, job_class=worker.job_class)) is not None:
        found.append(dequeued[0].func)
    assert found == [transcribe_room, assemble]


def test_a_job_under_its_current_path_is_untouched(q: Queue) -> None:
    job = q.enqueue("workers.assemble.assemble", "space1")
    assert PipelineWorker.job_class.fetch(job.id, connection=q.connection).func is assemble
