"""Real processes for fault tests: workers with logs, a Redis of the test's own, snapshots of stored outputs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import Job

from spaces import keys, layout, queue
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.models import Transcript
from spaces.settings import Settings
from tests.support.services import free_port
from tests.support.workers import UTTERANCES


def drop_queue(settings: Settings) -> None:
    """Remove the test's queue and every job it saw (the shared Redis is never flushed).

    Jobs left in registries would otherwise outlive the test: finished and
    failed ones for a week, deferred ones (stages after a failed one) for ever.
    Their keys are deleted directly: ``Job.delete`` trips over execution
    records a killed work-horse leaves half-written.
    """
    q = queue.pipeline_queue(settings)
    connection = q.connection
    registries = (
        q.started_job_registry,
        q.finished_job_registry,
        q.failed_job_registry,
        q.deferred_job_registry,
        q.scheduled_job_registry,
        q.canceled_job_registry,
    )
    for registry in registries:
        for job_id in registry.get_job_ids():
            job_key = Job.key_for(job_id)
            connection.delete(
                job_key,
                f"{job_key}:dependents",
                f"{job_key}:dependencies",
                f"rq:executions:{job_id}",
                f"rq:results:{job_id}",
            )
        connection.delete(registry.key)
    q.empty()
    q.delete(delete_jobs=True)


class RedisServer:
    """redis-server on a free port, persisting to an append-only file in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                # Every write on disk before it is acknowledged: a restart loses nothing.
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not self.up():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on :{self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as a service manager restarting Redis does."""
        if self.proc is None:
            return
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.proc = None

    def up(self) -> bool:
        try:
            return bool(Redis.from_url(self.url, socket_connect_timeout=0.5, retry=None).ping())
        except RedisConnectionError:
            return False


def snapshot(blobs: BlobStore, prefix: str) -> dict[str, str]:
    """Key -> SHA-256 of every object under ``prefix``."""
    return {key: hashlib.sha256(blobs.get(key)).hexdigest() for key in blobs.list(prefix)}


def output_keys(blobs: BlobStore, space_id: str) -> set[str]:
    """Every object a finished pipeline writes for the space."""
    manifest = layout.read_manifest(blobs, space_id)
    return {
        *(keys.levels(space_id, track_id) for track_id, _ in manifest.tracks),
        *(keys.words(space_id, track_id) for track_id, _ in manifest.tracks),
        *(keys.context_clips(space_id, track_id) for track_id, _ in manifest.tracks),
        keys.transcript(space_id),
        keys.captions(space_id, "vtt"),
        keys.captions(space_id, "srt"),
        keys.replay(space_id, "ogg"),
        keys.replay(space_id, "m4a"),
    }


def assert_indexed_once(blobs: BlobStore, catalog: Catalog, space_id: str) -> None:
    """The transcript says who spoke when, and each sentence is found once by search."""
    transcript = Transcript.from_dict(json.loads(blobs.get(keys.transcript(space_id))))
    assert [t.speaker for t in transcript.turns] == [u.speaker for u in UTTERANCES]
    for phrase in ("wonderful book", "project schedule", "walked river"):
        assert [h.space_id for h in catalog.search(phrase, limit=10)] == [space_id], phrase


def stage_jobs(settings: Settings, space_id: str, run: int = 0) -> dict[str, Job]:
    """The pipeline's jobs of one run, by stage (``finalize``, ``transcribe-room``, ``mix``...)."""
    stages = ["finalize", "transcribe-room", "mix", "assemble", "complete"]
    connection = queue.connect(settings)
    return {stage: Job.fetch(queue.job_id(space_id, stage, run), connection=connection) for stage in stages}


def wait_until_running(settings: Settings, fragment: str, timeout: float = 120) -> Job:
    """The first job whose id contains ``fragment``, once a work-horse runs it."""
    connection = queue.connect(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_id in queue.pipeline_queue(settings, connection).started_job_registry.get_job_ids():
            if fragment in job_id:
                return Job.fetch(job_id, connection=connection)
        time.sleep(0.05)
    raise TimeoutError(f"no job matching {fragment!r} started within {timeout}s")
