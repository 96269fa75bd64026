"""Job functions for fault tests, importable by real worker processes."""

from __future__ import annotations

import threading
import time

from rq import Queue, get_current_job


def finish_while_dependents_register(idle_queue: str, seconds: float) -> str:
    """Return while another client keeps changing the set of this job's dependents.

    As ``finalize`` does when it enqueues ``complete`` with ``depends_on``
    the ``mix`` job another worker is finishing.
    One real dependent is enqueued (to ``idle_queue``, which no worker
    serves); then a thread takes it out of the set and puts it back as fast
    as Redis answers, for ``seconds``, so that whatever rq does with the
    set while reporting this job's success sees it change.
    """
    job = get_current_job()
    assert job is not None
    dependent = Queue(idle_queue, connection=job.connection).enqueue("tests.faults.jobs.nothing", depends_on=job)
    connection = job.connection

    def churn() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            connection.srem(job.dependents_key, dependent.id)
            connection.sadd(job.dependents_key, dependent.id)

    threading.Thread(target=churn, daemon=True).start()
    return "done"


def nothing() -> None:
    pass
