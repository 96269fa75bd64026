"""The pipeline's shape: which stage runs after which, and the space's state.

``finalize(space_id)`` is what the SFU and ``spaces import`` enqueue. It fans
out one ``transcribe_track`` job per track (parallel across workers) and the
``mix`` job, then ``assemble`` after every track is transcribed, then
``complete`` after assemble and mix. Every job id is derived from the space,
the stage and the run number, so a replayed enqueue is not a second run.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from rq import Callback
from rq.job import Job

from spaces.models import SpaceState
from spaces.queue import enqueue_once, job_id, pipeline_queue
from workers.context import context

log = logging.getLogger(__name__)

ON_FAILURE = Callback("workers.pipeline.on_failure")


def finalize(space_id: str, run: int = 0) -> None:
    ctx = context()
    manifest = ctx.manifest(space_id)
    ctx.catalog.set_state(space_id, SpaceState.PROCESSING)
    queue = pipeline_queue(ctx.settings)
    retries = ctx.settings.job_retries

    def stage(func: str, name: str, *args: Any, depends_on: list[Job] | None = None) -> Job:
        return enqueue_once(
            queue,
            func,
            space_id,
            *args,
            job_id=job_id(space_id, name, run),
            retries=retries,
            depends_on=depends_on,
            on_failure=ON_FAILURE,
        )

    transcribed = [
        stage("workers.transcription.transcribe_track", f"transcribe-{track_id}", track_id)
        for track_id, _ in manifest.tracks
    ]
    mixed = stage("workers.mix.mix", "mix")
    assembled = stage("workers.transcript.assemble", "assemble", depends_on=transcribed)
    stage("workers.pipeline.complete", "complete", depends_on=[assembled, mixed])
    log.info("space %s: pipeline enqueued (run %d, %d tracks)", space_id, run, len(transcribed),
             extra={"space_id": space_id})


def complete(space_id: str) -> None:
    ctx = context()
    ctx.catalog.set_state(space_id, SpaceState.READY)
    log.info("space %s is ready", space_id, extra={"space_id": space_id})


def on_failure(job: Job, connection: Redis, exc_type: type, exc: BaseException, tb: Any) -> None:
    """Mark the space failed once a stage has used up its retries."""
    if job.retries_left:
        return
    space_id = job.args[0]
    message = f"{(job.func_name or 'a stage').rsplit('.', 1)[-1]} failed: {exc}"
    context().catalog.set_state(space_id, SpaceState.FAILED, error=message)
    log.error("space %s: %s", space_id, message, extra={"space_id": space_id})
