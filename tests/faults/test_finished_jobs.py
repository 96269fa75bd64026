"""A job that succeeded stays finished: rq's routine clean-up never runs it again.

Seen in a live space: two ``measure_levels`` jobs were "scheduled for retry"
by the clean-up a minute after they succeeded (cause in ``spaces.worker``).
"""

from __future__ import annotations

import time
from dataclasses import replace

from rq.job import Job, JobStatus

from spaces import queue
from spaces.settings import Settings
from tests.support.faults import drop_queue
from tests.support.workers import Workers


def _wait_status(job: Job, status: JobStatus, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while job.get_status() != status:
        assert time.monotonic() < deadline, f"{job.id} is {job.get_status()}, not {status}"
        time.sleep(0.1)


def test_a_job_finishing_while_dependents_register_is_not_left_started(
    settings: Settings, worker_procs: Workers
) -> None:
    idle = replace(settings, queue_name=f"{settings.queue_name}-idle")
    try:
        worker_procs.start(settings)
        q = queue.pipeline_queue(settings)
        job = q.enqueue(
            "tests.faults.jobs.finish_while_dependents_register", idle.queue_name, 1.0, retry=queue.retry_policy(3)
        )
        _wait_status(job, JobStatus.FINISHED)
        # rq's success transaction was redone (another client changed the
        # job's dependents meanwhile); the redo must still unregister it,
        # or the clean-up takes it for abandoned once its heartbeat expires.
        # (The unregistering may follow the status by a moment: left means still there 10 s on.)
        deadline = time.monotonic() + 10
        while job.id in q.started_job_registry.get_job_ids(cleanup=False):
            assert time.monotonic() < deadline, f"{job.id} finished but was left in the started registry"
            time.sleep(0.1)
        assert job.id not in q.scheduled_job_registry.get_job_ids()
    finally:
        drop_queue(idle)


def test_the_clean_up_leaves_a_finished_job_finished(settings: Settings, worker_procs: Workers) -> None:
    worker_procs.start(settings)
    q = queue.pipeline_queue(settings)
    job = q.enqueue("tests.faults.jobs.nothing", retry=queue.retry_policy(3))
    _wait_status(job, JobStatus.FINISHED)
    # A started entry of the finished job, its heartbeat long expired: what
    # the race above leaves, whatever else might.
    stale = f"{job.id}:left-behind"
    q.connection.zadd(q.started_job_registry.key, {stale: 1})
    deadline = time.monotonic() + 60
    while q.connection.zscore(q.started_job_registry.key, stale) is not None:  # the workers' next sweep
        assert time.monotonic() < deadline, "no clean-up ran"
        time.sleep(0.2)
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    assert job.retries_left == 3
    assert job.id not in q.scheduled_job_registry.get_job_ids()
    assert q.count == 0
