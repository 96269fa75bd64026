"""A pipeline stage: a job of one run of a space's pipeline, that stands down once a newer run began.

The run a job belongs to is in its ``job.meta`` (``spaces.queue.run_of``):
``spaces reprocess`` starts a newer run while jobs of the earlier one may
still be queued or waiting for a retry.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from rq import get_current_job

from spaces.catalog import Catalog
from spaces.queue import current_run, run_of

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def stage(func: Callable[Concatenate[str, P], R]) -> Callable[Concatenate[str, P], R | None]:
    """A pipeline job (first argument: the space id) that does nothing once superseded."""

    @functools.wraps(func)
    def run(space_id: str, /, *args: P.args, **kwargs: P.kwargs) -> R | None:
        if superseded(space_id):
            log.info("space %s: %s of a superseded run skipped", space_id, func.__name__, extra={"space_id": space_id})
            return None
        return func(space_id, *args, **kwargs)

    return run


def job_run() -> int:
    """The pipeline run the running job belongs to (0 outside a job)."""
    job = get_current_job()
    return run_of(job) if job is not None else 0


def superseded(space_id: str) -> bool:
    """Whether the running job is of an earlier run than the space's newest.

    ``spaces reprocess`` starts a run under new job ids while jobs of the
    earlier one may still be queued or waiting for a retry: those must not
    write outputs over the new run's, nor mark the space ready.
    """
    job = get_current_job()
    return job is not None and run_of(job) < current_run(job.connection, space_id)


class Progress:
    """Reports one stage's progress to the catalog, at most every ``interval`` s.

    As progress of the running job's run: a superseded run's job reports
    nothing over the newer run's (``Catalog.set_progress``).
    """

    def __init__(self, catalog: Catalog, space_id: str, stage: str, *, interval: float = 1.0) -> None:
        self.catalog = catalog
        self.space_id = space_id
        self.stage = stage
        self.interval = interval
        self.run = job_run()
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last >= self.interval:
            self._last = now
            self.catalog.set_progress(self.space_id, self.stage, fraction, run=self.run)
