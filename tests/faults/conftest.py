"""Real processes for fault tests: workers, a Redis of the test's own, snapshots.

Each test starts ``spaces worker`` processes with the environment it wants
(a tiny job timeout, a Redis it can restart, an S3 endpoint behind a proxy it
can cut) and stops them at teardown. Worker output goes to a log file per
process, printed when a test fails, so a fault test says what the workers saw.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import Job

from spaces import keys, queue
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.models import Manifest, Space, SpaceState, Transcript
from spaces.settings import Settings
from tests.conftest import free_port
from tests.speech import VOICES, build_space
from tests.speech import Space as SpeechSpace
from tests.workers.conftest import DURATION, UTTERANCES, env_of


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechSpace:
    """The workers suite's 15 s two-speaker space (cached on disk by content)."""
    return build_space(
        UTTERANCES,
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=DURATION,
        out_dir=tmp_path_factory.mktemp("speech"),
    )


# --- worker processes -----------------------------------------------------


class WorkerProcs:
    """``spaces worker`` processes with per-test environment; all stopped at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.stopped: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.queues: dict[tuple[str, str], Settings] = {}

    def start(self, settings: Settings, **env: str) -> subprocess.Popen[bytes]:
        self.queues[settings.redis_url, settings.queue_name] = settings
        log_path = self.log_dir / f"worker-{len(self.stopped) + len(self.procs) + 1}.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "spaces.cli", "worker"],
                env={**env_of(settings), **env},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((proc, log_path))
        return proc

    def wait_for(self, catalog: Catalog, space_id: str, *, timeout: float) -> Space:
        """The space once READY or FAILED; fails at once if a worker died meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [proc.pid for proc, _ in self.procs if proc.poll() is not None]
            assert not dead, f"worker {dead} exited\n{self.logs()}"
            space = catalog.get_space(space_id)
            if space.state in (SpaceState.READY, SpaceState.FAILED):
                return space
            time.sleep(0.2)
        raise TimeoutError(f"space {space_id} still {catalog.get_space(space_id)} after {timeout}s\n{self.logs()}")

    def logs(self, tail: int = 60) -> str:
        out = []
        for proc, path in self.stopped + self.procs:
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- worker pid {proc.pid} (exit {proc.poll()}) ---\n" + "\n".join(lines))
        return "\n".join(out)

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # The work-horse runs in a process group of its own: kill it too.
                for child in _children(proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.stopped += self.procs
        self.procs = []


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def work_horse(worker_pid: int) -> int:
    """The worker's work-horse: forked after its scheduler process, so its newest child."""

    def started(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])

    return max(_children(worker_pid), key=started)


@pytest.fixture
def worker_procs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WorkerProcs]:
    procs = WorkerProcs(tmp_path)
    yield procs
    procs.stop_all()
    for settings in procs.queues.values():
        drop_queue(settings)
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(procs.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures know it failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


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


# --- a Redis of the test's own ----------------------------------------------


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


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


# --- what a space holds -----------------------------------------------------


def snapshot(blobs: BlobStore, prefix: str) -> dict[str, str]:
    """Key -> SHA-256 of every object under ``prefix``."""
    return {key: hashlib.sha256(blobs.get(key)).hexdigest() for key in blobs.list(prefix)}


def manifest_of(blobs: BlobStore, space_id: str) -> Manifest:
    return Manifest.from_dict(json.loads(blobs.get(keys.manifest(space_id))))


def output_keys(blobs: BlobStore, space_id: str) -> set[str]:
    """Every object a finished pipeline writes for the space."""
    manifest = manifest_of(blobs, space_id)
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


def stage_jobs(settings: Settings, blobs: BlobStore, space_id: str, run: int = 0) -> dict[str, Job]:
    """The pipeline's jobs of one run, by stage (``finalize``, ``transcribe-t0-alice``, ``mix``...)."""
    tracks = [track_id for track_id, _ in manifest_of(blobs, space_id).tracks]
    per_track = [f"{stage}-{t}" for stage in ("levels", "transcribe") for t in tracks]
    stages = ["finalize", *per_track, "mix", "assemble", "complete"]
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
