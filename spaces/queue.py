"""rq wiring: the queue, and enqueuing pipeline stages by dotted name.

The core never imports a stage: jobs are named by their dotted path
(``"workers.pipeline.finalize"``), which rq resolves in the worker process.

Job ids are ``{space_id}--{stage}[--r{run}]`` (rq allows only letters,
digits, ``-`` and ``_``), so enqueuing the same stage of
the same space twice (a replayed "space ended" event) is one run, not two.
The run a job belongs to travels in its ``meta`` (``run_of``); the id only
keeps runs apart and is never read back.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from spaces.settings import Settings

log = logging.getLogger(__name__)

FINALIZE = "workers.pipeline.finalize"
DELETE_SPACE = "workers.deletion.delete_space"
ERASE_SPEAKER = "workers.erasure.erase_speaker"
LIVE_ROOM = "workers.agent.live_room"

#: A job in one of these states is not enqueued again under the same id.
_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.FINISHED}

#: The ``job.meta`` key of the pipeline run a job is of (``spaces reprocess`` starts a new run).
RUN = "run"

#: Seconds between retries of a failed stage: quick, then backing off.
RETRY_INTERVALS = [5, 30, 120]


def connect(settings: Settings, *, patience: float = 0) -> Redis:
    """A client of the queue's Redis.

    ``patience`` is how many seconds each command keeps retrying while Redis
    is unreachable (a restart, a failover). 0 keeps redis-py's default, a few
    seconds, so short-lived callers (the CLI, an import) fail fast.
    """
    options: dict[str, Any] = {}
    if patience > 0:
        # One attempt a second: a restarting Redis is back within seconds, and
        # workers reconnecting once a second are no load for it.
        options["retry"] = RedisRetry(ConstantBackoff(1.0), retries=math.ceil(patience))
    return Redis.from_url(settings.redis_url, health_check_interval=30, socket_connect_timeout=5, **options)


def pipeline_queue(settings: Settings, connection: Redis | None = None) -> Queue:
    return Queue(
        settings.queue_name,
        connection=connection or connect(settings),
        default_timeout=settings.job_timeout,
    )


def live_queue(settings: Settings, connection: Redis | None = None) -> Queue:
    """The room agents' queue: one long job per live space, apart from the pipeline's short ones."""
    return Queue(
        f"{settings.queue_name}-live",
        connection=connection or connect(settings),
        default_timeout=settings.live_job_timeout,
    )


def enqueue_live_room(
    settings: Settings, space_id: str, rtc_url: str, *, attempt: int, queue: Queue | None = None
) -> Job:
    """Send a room agent into a live space at ``rtc_url`` (its node's signaling socket).

    The SFU calls this when the room opens, and when its agent left. Each
    attempt is its own job id, so an agent that died is replaced at once
    instead of waiting for rq to notice its job was abandoned.
    """
    q = queue or live_queue(settings)
    return enqueue_once(q, LIVE_ROOM, space_id, rtc_url, job_id=job_id(space_id, f"live-a{attempt}"))


def job_id(space_id: str, stage: str, run: int = 0) -> str:
    return f"{space_id}--{stage}" if run == 0 else f"{space_id}--{stage}--r{run}"


def retry_policy(retries: int) -> Retry | None:
    if retries <= 0:
        return None
    return Retry(max=retries, interval=RETRY_INTERVALS[:retries])


def enqueue_once(
    queue: Queue, func: str, *args: Any, job_id: str, retries: int = 0, run: int = 0, **options: Any
) -> Job:
    """Enqueue ``func`` under ``job_id`` unless a job by that id is alive or done.

    ``run``: the pipeline run the job is of, kept in its ``meta`` (``run_of``).
    """
    try:
        existing = Job.fetch(job_id, connection=queue.connection)
        status = existing.get_status(refresh=False)
        if status in _ALIVE:
            log.info("job %s already %s; not enqueued again", job_id, status)
            return existing
    except NoSuchJobError:
        pass
    return queue.enqueue(
        func,
        *args,
        job_id=job_id,
        retry=retry_policy(retries),
        meta={RUN: run},
        failure_ttl=7 * 24 * 3600,
        result_ttl=7 * 24 * 3600,
        **options,
    )


def enqueue_finalize(settings: Settings, space_id: str, *, run: int = 0, queue: Queue | None = None) -> Job:
    """Start the pipeline for a recorded space (the SFU and ``spaces import`` call this)."""
    q = queue or pipeline_queue(settings)
    return enqueue_once(
        q, FINALIZE, space_id, run, job_id=job_id(space_id, "finalize", run), retries=settings.job_retries, run=run
    )


def next_run(settings: Settings, space_id: str, *, after: int = 0) -> int:
    """A new run number for ``spaces reprocess``: fresh job ids, same output keys.

    ``after`` is the newest run the catalog knows of: a Redis that lost its
    run counter must not hand out a run number already used.
    """
    connection = connect(settings)
    run = int(connection.incr(_runs_key(space_id)))
    if run <= after:
        run = after + 1
        connection.set(_runs_key(space_id), run)
    return run


def current_run(connection: Redis, space_id: str) -> int:
    """The newest run started for the space (0 until it is first reprocessed)."""
    value = connection.get(_runs_key(space_id))
    return int(value) if value else 0


def run_of(job: Job) -> int:
    """The pipeline run ``job`` belongs to (0 for the first run and for jobs outside the pipeline)."""
    return int(job.meta.get(RUN, 0))


def _runs_key(space_id: str) -> str:
    return f"spaces:runs:{space_id}"


def enqueue_deletion(settings: Settings, space_id: str, *, was_live: bool, queue: Queue | None = None) -> Job:
    """Delete a space already marked ``deleting`` (the API and ``spaces delete`` call this).

    ``was_live``: the space was live (or about to be), so its room may still
    be uploading: the job sweeps it a second time a little later.
    """
    q = queue or pipeline_queue(settings)
    return enqueue_once(
        q, DELETE_SPACE, space_id, was_live, job_id=job_id(space_id, "delete"), retries=settings.job_retries
    )


def enqueue_erasure(settings: Settings, space_id: str, speaker: str, *, queue: Queue | None = None) -> Job:
    """Erase one speaker from an ended space (the API and ``spaces erase`` call this).

    One job id per space and speaker: asking twice is one erasure. The job
    fans out the erasure's stages itself, under ids derived from this one.
    """
    q = queue or pipeline_queue(settings)
    return enqueue_once(
        q,
        ERASE_SPEAKER,
        space_id,
        speaker,
        job_id=job_id(space_id, f"erase-{speaker_slug(speaker)}"),
        retries=settings.job_retries,
    )


def speaker_slug(speaker: str) -> str:
    """A job-id-safe stand-in for a speaker's name (names may hold any printable character)."""
    return hashlib.sha256(speaker.encode()).hexdigest()[:16]


RETENTION_SWEEP = "workers.retention.sweep"


def schedule_retention(settings: Settings, *, now: float | None = None, queue: Queue | None = None) -> Job:
    """Schedule the next retention sweep on rq's scheduler, at the start of the next time slot.

    The job id names the slot (``retention--{n}``), so every worker starting
    up and every sweep rescheduling itself make one sweep per slot. A sweep
    with no retention set anywhere finds nothing to do.
    """
    interval = max(60, settings.retention_interval)
    at = time.time() if now is None else now
    slot = int(at // interval) + 1
    q = queue or pipeline_queue(settings)
    slot_id = f"retention--{slot}"
    existing = q.fetch_job(slot_id)
    if existing is not None:
        return existing
    return q.enqueue_in(
        timedelta(seconds=max(1.0, slot * interval - at)), RETENTION_SWEEP, job_id=slot_id, result_ttl=interval
    )
