"""Job: delete a space, leaving nothing under its id in any store or index.

``DELETE /spaces/{id}`` (and ``spaces delete``) marks the space ``deleting``
in the catalog, which makes it a 404 at once and keeps every later state
change off it, then enqueues :func:`delete_space`. The job removes every
blob under ``spaces/{id}/`` (on S3 every version and delete marker too),
then every catalog row: the space, its turns and their search index, its
speakers, names, bans, erasures and retention.

A live space ends first: the SFU sees the ``deleting`` state within a
second and closes the room without handing it over (its spool is thrown
away). Uploads already in flight at that moment may still land, so a
space that was live gets a second pass a little later (``LATE_PASS``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis import Redis

from spaces import keys
from spaces.live_captions import stream_key
from spaces.queue import job_id, pipeline_queue
from workers.environment import environment

log = logging.getLogger(__name__)

#: Seconds after the first pass that a space deleted while live is swept again.
LATE_PASS = 60


def delete_space(space_id: str, was_live: bool = False, late: bool = False) -> int:
    """Remove every object and row of the space; returns how many blobs were left before.

    Idempotent: a retried or repeated pass deletes what is there, nothing else.
    """
    env = environment()
    prefix = keys.space_prefix(space_id)
    found = len(list(env.blobs.list(prefix)))
    env.blobs.delete_prefix(prefix)
    env.catalog.delete_space(space_id)
    redis = Redis.from_url(env.settings.redis_url)
    try:  # the live captions stream, and the run counter of reprocessing
        redis.delete(stream_key(env.settings.queue_name, space_id), f"spaces:runs:{space_id}")
    finally:
        redis.close()
    log.info(
        "space %s deleted (%d objects%s)", space_id, found, ", late pass" if late else "", extra={"space_id": space_id}
    )
    if was_live and not late:
        queue = pipeline_queue(env.settings)
        queue.enqueue_in(
            timedelta(seconds=LATE_PASS),
            "workers.deletion.delete_space",
            space_id,
            False,
            True,
            job_id=job_id(space_id, "delete-late"),
        )
    return found
