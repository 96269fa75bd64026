"""The pipeline's shape: which stage runs after which, and the space's state.

``finalize(space_id)`` is what the SFU and ``spaces import`` enqueue. It
enqueues one ``transcribe_room`` job (every track's levels, then the room's
words from its mix, the speakers from the levels) and beside it the ``mix``
(the replay, each speaker brought to one loudness); then ``assemble`` after
the transcription, then ``complete`` after assemble and mix. Every job id is derived from the
space, the stage and the run number, so a replayed enqueue is not a second run.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from rq import Callback
from rq.job import Job
from rq.timeouts import JobTimeoutException

from spaces.catalog import open_catalog
from spaces.exceptions import NotFound
from spaces.models import SpaceState
from spaces.queue import current_run, enqueue_once, job_id, pipeline_queue, run_of
from spaces.settings import Settings
from workers.environment import environment
from workers.stage import job_run, stage

log = logging.getLogger(__name__)

ON_FAILURE = Callback("workers.pipeline.on_failure")


@stage
def finalize(space_id: str, run: int = 0) -> None:
    env = environment()
    try:
        deleting = env.catalog.get_space(space_id).state is SpaceState.DELETING
    except NotFound:
        deleting = True
    if deleting:  # the host deleted it meanwhile: nothing to process
        log.info("space %s is deleted; not processed", space_id, extra={"space_id": space_id})
        return
    manifest = env.manifest(space_id)
    if not env.catalog.start_run(space_id, run):
        log.info("space %s: run %d superseded before it started", space_id, run, extra={"space_id": space_id})
        return
    queue = pipeline_queue(env.settings)
    retries = env.settings.job_retries

    def enqueue(func: str, name: str, *args: Any, depends_on: list[Job] | None = None) -> Job:
        return enqueue_once(
            queue,
            func,
            space_id,
            *args,
            job_id=job_id(space_id, name, run),
            run=run,
            retries=retries,
            depends_on=depends_on,
            on_failure=ON_FAILURE,
        )

    # One transcription for the whole room (its mix gives Whisper the context):
    # its cost follows the room's speech, not its number of speakers. It
    # measures every track's levels first, as it reads them: they tell who
    # speaks when, and what is bleed.
    transcribed = enqueue("workers.transcribe_room.transcribe_room", "transcribe-room")
    # The replay beside it, at idle priority: it waits on nothing.
    mixed = enqueue("workers.mix.mix", "mix")
    assembled = enqueue("workers.assemble.assemble", "assemble", depends_on=[transcribed])
    enqueue("workers.pipeline.complete", "complete", depends_on=[assembled, mixed])
    log.info(
        "space %s: pipeline enqueued (run %d, %d tracks)",
        space_id,
        run,
        len(manifest.tracks),
        extra={"space_id": space_id},
    )


@stage
def complete(space_id: str) -> None:
    env = environment()
    env.catalog.set_state(space_id, SpaceState.READY, run=job_run())
    log.info("space %s is ready", space_id, extra={"space_id": space_id})


def on_failure(job: Job, connection: Redis, exc_type: type, exc: BaseException, tb: Any) -> None:
    """Mark the space failed once a stage has used up its retries.

    rq may call this in the worker process rather than the work-horse (a
    killed work-horse, an abandoned job), so it opens and closes a catalog of
    its own: a cached one would be inherited by every later work-horse fork.
    """
    if job.retries_left:
        return
    space_id = job.args[0]
    if run_of(job) < current_run(connection, space_id):
        # A retry of a superseded run (the space was reprocessed meanwhile)
        # failing late must not mark the newer run's space failed.
        log.warning(
            "space %s: %s of an earlier run failed; the newer run decides the state",
            space_id,
            job.id,
            extra={"space_id": space_id},
        )
        return
    message = failure_message(job, exc)
    catalog = open_catalog(Settings.from_env())
    try:
        catalog.set_state(space_id, SpaceState.FAILED, error=message, run=run_of(job))
    except NotFound:  # deleted meanwhile: nothing to mark
        return
    finally:
        catalog.close()
    log.error("space %s: %s", space_id, message, extra={"space_id": space_id})


def failure_message(job: Job, exc: BaseException) -> str:
    """What the space's error says about a stage that gave up.

    A stage over its timeout is said to be one, whatever it raised: rq's
    ``JobTimeoutException`` lands wherever the job is, and libraries turn it
    into their own errors (faster-whisper reports an interrupted import as
    "the VAD filter requires the onnxruntime package").
    """
    stage = (job.func_name or "a stage").rsplit(".", 1)[-1]
    if _timed_out(job, exc):
        return f"{stage} timed out after {job.timeout} s"
    return f"{stage} failed: {exc}"


def _timed_out(job: Job, exc: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, JobTimeoutException):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    # The alarm is set after started_at, so a run that lasted the whole
    # timeout was cut by it even if the exception no longer says so.
    if job.timeout and job.timeout > 0 and job.started_at and job.ended_at:
        return bool((job.ended_at - job.started_at).total_seconds() >= job.timeout)
    return False
