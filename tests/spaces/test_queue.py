"""Job ids make enqueues idempotent, and queued jobs find their function (real Redis, a queue of our own)."""

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


def test_same_stage_enqueued_twice_is_one_job(q: Queue, settings: Settings) -> None:
    first = queue.enqueue_finalize(settings, "space1", queue=q)
    second = queue.enqueue_finalize(settings, "space1", queue=q)
    assert first.id == second.id == "space1--finalize"
    assert q.job_ids == ["space1--finalize"]
    assert first.retries_left == settings.job_retries


def test_reprocess_runs_get_their_own_ids(q: Queue, settings: Settings) -> None:
    queue.enqueue_finalize(settings, "space2", queue=q)
    run = queue.next_run(settings, "space2")
    again = queue.enqueue_finalize(settings, "space2", run=run, queue=q)
    assert again.id == f"space2--finalize--r{run}"
    assert again.args == ("space2", run)
    assert queue.run_of(again) == run
    assert len(q.job_ids) == 2
    assert queue.next_run(settings, "space2") == run + 1
    queue.connect(settings).delete("spaces:runs:space2")


def test_failed_job_may_be_enqueued_again(q: Queue, settings: Settings) -> None:
    job = queue.enqueue_finalize(settings, "space3", queue=q)
    q.remove(job)
    job.set_status("failed")
    again = queue.enqueue_finalize(settings, "space3", queue=q)
    assert again.get_status() == "queued"
    assert q.job_ids == ["space3--finalize"]


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
