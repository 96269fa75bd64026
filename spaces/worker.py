"""The rq worker that runs the pipeline: rq's ``Worker``, with two of its job failures handled.

A killed work-horse's job gets its failure callback (``handle_work_horse_killed``),
and a finished job is kept finished:

rq 2.12 can leave a job that succeeded in its queue's ``StartedJobRegistry``:
the work-horse reports success in one Redis transaction that WATCHes the
job's dependents key, and ``cleanup_execution`` forgets the execution when it
queues its removal. If another client registers a dependent meanwhile (our
``finalize`` enqueues ``assemble`` and ``complete`` with ``depends_on`` the
``transcribe_room`` and ``mix`` jobs, which other workers may already be
running and finishing; it was seen when the levels, a job of half a second,
came first), the transaction fails with ``WatchError`` and is redone
without the removal. About a minute later (the heartbeat TTL: the monitoring
interval + 60 s) the routine clean-up finds the entry expired, takes the
finished job for abandoned and schedules it for retry: the job runs again.
Upstream: rq/rq#2424, fixed by rq/rq#2466 (not in a release we pin).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.timeouts import UnixSignalDeathPenalty
from rq.utils import current_timestamp, import_attribute

log = logging.getLogger(__name__)

#: A job in one of these states is not running, whatever a registry says.
_ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


class WorkHorseKilled(Exception):
    """A job's work-horse died without reporting (a signal, or an abrupt exit)."""


#: Job functions that moved (old import path -> new): a job queued before
#: the move still runs. An entry may go once no queue can hold such a job.
MOVED = {
    "workers.transcription.transcribe_room": "workers.transcribe_room.transcribe_room",
    "workers.transcript.assemble": "workers.assemble.assemble",
}


class PipelineJob(Job):
    """An rq job whose function is found where it is now (``MOVED``), not only where it was."""

    @property
    def func(self) -> Any:
        moved = MOVED.get(self.func_name or "")
        return import_attribute(moved) if moved is not None else super().func


#: Linux ``prctl`` option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1
#: The pid of this process's ``PipelineWorker``; None in any other process.
_worker_pid: int | None = None
#: True while the worker forks a work-horse (which outlives a killed worker, as in rq).
_forking_horse = False


def die_with(parent: int) -> None:
    """Get SIGTERM when ``parent``, this process's parent, dies (Linux; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _after_fork_in_child() -> None:
    # rq forks its scheduler (RQScheduler.start, from two places in rq) and reaps
    # it only when the worker stops cleanly. A worker killed outright (SIGKILL,
    # the OOM killer) left it running for good under init, holding the
    # scheduler lock, so a restarted worker ran without one of its own.
    global _worker_pid
    if _worker_pid is not None and not _forking_horse:
        die_with(_worker_pid)
    _worker_pid = None


os.register_at_fork(after_in_child=_after_fork_in_child)


class PipelineWorker(Worker):
    job_class = PipelineJob

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        global _worker_pid
        super().__init__(*args, **kwargs)
        _worker_pid = os.getpid()

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        global _forking_horse
        _forking_horse = True
        try:
            super().fork_work_horse(job, queue)
        finally:
            _forking_horse = False

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        """Give a job whose work-horse was killed its failure callback.

        rq runs a job's ``on_failure`` when the job raises and when a sweep finds
        it abandoned, but not when the work-horse is killed under a live worker:
        the OOM killer, or rq's own SIGKILL a minute past the job's timeout when
        SIGALRM cannot interrupt it. The job is retried all the same, but on its
        last attempt nothing marked the space failed: it stayed "processing".
        Runs in the worker process, before rq decrements the retries, as in the
        other two paths.
        """
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)  # type: ignore[no-untyped-call]
        if os.WIFSIGNALED(ret_val):
            reason = f"killed by {signal.Signals(os.WTERMSIG(ret_val)).name}"
        else:
            reason = f"exited with status {os.waitstatus_to_exitcode(ret_val)}"
        error = WorkHorseKilled(f"work-horse {reason}")
        try:
            job.execute_failure_callback(UnixSignalDeathPenalty, WorkHorseKilled, error, None)
        except Exception:
            # Already logged by rq; the worker must live on to run other jobs.
            log.warning("failure callback of %s did not complete", job.id)

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry) -> None:
        execution = self.execution
        super().handle_job_success(job, queue, started_job_registry)
        if execution is None:
            return
        # Idempotent: a no-op unless rq's transaction was redone without it.
        # The job has succeeded: an error here must not make it a failure
        # (the caller, rq's perform_job, would), the clean-up below covers it.
        try:
            with self.connection.pipeline() as pipeline:
                execution.delete(job=job, pipeline=pipeline)
                pipeline.execute()
        except RedisError as e:
            log.warning("job %s: could not unregister its execution (%s)", job.id, e)

    def clean_registries(self) -> None:
        # An entry of a job that ended, left behind whatever the cause, is
        # dropped before rq's clean-up would retry the job as abandoned.
        for queue in self.queues:
            try:
                forget_ended_jobs(queue.started_job_registry)
            except RedisError as e:
                log.warning("queue %s: ended jobs not checked (%s)", queue.name, e)
        super().clean_registries()  # type: ignore[no-untyped-call]


def forget_ended_jobs(registry: StartedJobRegistry, timestamp: float | None = None) -> list[str]:
    """Remove the registry's expired entries of jobs that already ended; returns their ids."""
    score = timestamp if timestamp is not None else current_timestamp()
    forgotten: list[str] = []
    entries: list[bytes] = registry.connection.zrangebyscore(registry.key, 0, score)  # type: ignore[assignment]
    for entry in entries:
        job_id = registry.parse_job_id(entry.decode())
        try:
            status: Any = Job.fetch(job_id, connection=registry.connection).get_status(refresh=False)
        except NoSuchJobError:
            continue  # rq's clean-up skips it too
        if status in _ENDED:
            registry.connection.zrem(registry.key, entry)
            forgotten.append(job_id)
            log.warning("job %s ended (%s) but was still registered as started; entry removed", job_id, status)
    return forgotten
