"""What every job needs, built once per worker process from the environment.

Jobs take only ids (rq habit): the settings, blob store and catalog they work
against come from here. ``spaces worker`` is the entry point that configures
the environment; tests start real worker processes with their own.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from faster_whisper import WhisperModel
from rq import get_current_job

from spaces import layout
from spaces.blobstore import BlobStore, open_blob_store
from spaces.catalog import Catalog, open_catalog
from spaces.exceptions import NotFound
from spaces.models import Manifest, Track
from spaces.queue import current_run, run_of
from spaces.settings import Settings
from transcribe.model import load_model

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Context:
    settings: Settings
    blobs: BlobStore
    catalog: Catalog

    def manifest(self, space_id: str) -> Manifest:
        return layout.read_manifest(self.blobs, space_id)

    def track(self, space_id: str, track_id: str) -> Track:
        return layout.read_track(self.blobs, space_id, track_id)

    def language(self, space_id: str) -> str:
        """The space's language as set: by ``spaces import`` in its manifest, else when opened (catalog)."""
        language = self.manifest(space_id).language
        if language == "auto":  # a live space: the SFU's manifest does not carry it
            try:
                language = self.catalog.get_space(space_id).language
            except NotFound:
                pass
        return language

    def model(self, *, passes: int = 1, name: str | None = None) -> WhisperModel:
        """The Whisper model the settings name, or ``name`` (loaded once per process).

        With ``passes``, that many run side by side, sharing the process's
        CPU share (:attr:`Settings.model_threads`) between them.
        """
        s = self.settings
        return load_model(
            s.whisper_model if name is None else name,
            device=s.whisper_device,
            compute_type=s.whisper_compute_type,
            cpu_threads=max(1, s.model_threads // passes),
            passes=passes,
        )

    def read_json(self, key: str) -> Any:
        return json.loads(self.blobs.get(key))

    def write_json(self, key: str, data: Any) -> None:
        # Sorted keys and fixed separators: the same input gives the same bytes.
        body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self.blobs.put(key, body.encode(), content_type="application/json")


@functools.cache
def context() -> Context:
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    catalog.create_schema()
    return Context(settings=settings, blobs=open_blob_store(settings), catalog=catalog)


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
