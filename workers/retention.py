"""Job: the retention sweep (``spaces.retention``), every ``retention_interval`` seconds.

Each sweep schedules the next one on rq's scheduler (``schedule_retention``;
workers schedule the first as they start).
"""

from __future__ import annotations

import logging
import time

from spaces import retention
from spaces.queue import schedule_retention
from workers.environment import environment

log = logging.getLogger(__name__)


def sweep(reschedule: bool = True) -> list[str]:
    """Apply retention now; returns the ids of the spaces it touched."""
    env = environment()
    touched = []
    for expiry in retention.plan(env.settings, env.catalog, env.blobs, now=time.time()):
        retention.apply(env.settings, env.catalog, env.blobs, expiry)
        touched.append(expiry.space_id)
        log.info(
            "retention: space %s (%.1f days) lost %s",
            expiry.space_id,
            expiry.age_days,
            "everything" if expiry.whole else ", ".join(expiry.kinds),
            extra={"space_id": expiry.space_id},
        )
    if reschedule:
        schedule_retention(env.settings)
    return touched
