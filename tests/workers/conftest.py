"""Real ``spaces worker`` processes on a queue of the test's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spaces import queue
from spaces.blobstore import BlobStore, open_blob_store
from spaces.catalog import Catalog, open_catalog
from spaces.importer import TrackFile, import_space
from spaces.models import Space, SpaceState
from spaces.settings import Settings
from tests.speech import VOICES, Utterance, build_space
from tests.speech import Space as SpeechSpace

UTTERANCES = [
    Utterance("alice", 0.8, "The weather was lovely this morning, so we walked down to the river."),
    Utterance("bob", 6.0, "Our team finished the project two weeks ahead of schedule."),
    Utterance("alice", 10.5, "I read a wonderful book about the history of the ocean."),
]
DURATION = 15.0


def env_of(settings: Settings) -> dict[str, str]:
    env = {
        **os.environ,
        "SPACES_DATA_DIR": str(settings.data_dir),
        "REDIS_URL": settings.redis_url,
        "SPACES_QUEUE_NAME": settings.queue_name,
        "SPACES_JOB_RETRIES": str(settings.job_retries),
        "SPACES_WORKER_HEARTBEAT": "2",
        "SPACES_WORKER_MAINTENANCE": "5",
    }
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("S3_BUCKET", settings.s3_bucket),
        ("S3_ENDPOINT_URL", settings.s3_endpoint_url),
        ("WHISPER_MODEL", settings.whisper_model),
    ):
        if value:
            env[name] = value
    return env


def use_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point this process's environment at ``settings`` (for the CLI run in-process)."""
    for name, value in env_of(settings).items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


class Workers:
    """Start and kill real worker processes; all are stopped at teardown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *, live: bool = False, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A pipeline worker, or with ``live`` a room agents' worker."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "spaces.cli", "worker", *(["--live"] if live else [])],
            env={**env_of(self.settings), **(env or {})},
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _workers(settings: Settings) -> Iterator[Workers]:
    w = Workers(settings)
    yield w
    w.stop_all()
    for q in (queue.pipeline_queue(settings), queue.live_queue(settings)):
        q.empty()
        q.delete(delete_jobs=True)


@pytest.fixture
def workers(settings: Settings) -> Iterator[Workers]:
    """Workers on the embedded defaults."""
    yield from _workers(settings)


@pytest.fixture
def backend_workers(backend_settings: Settings) -> Iterator[Workers]:
    """Workers on each backend: embedded, and S3 + PostgreSQL."""
    yield from _workers(backend_settings)


@pytest.fixture(scope="session")
def two_speakers(tmp_path_factory: pytest.TempPathFactory) -> SpeechSpace:
    return build_space(
        UTTERANCES,
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=DURATION,
        out_dir=tmp_path_factory.mktemp("speech"),
    )


def import_files(settings: Settings, files: dict[str, Path], title: str = "test") -> Space:
    catalog = open_catalog(settings)
    catalog.create_schema()
    return import_space(open_blob_store(settings), catalog, [TrackFile(s, p) for s, p in files.items()], title=title)


def wait_for(catalog: Catalog, space_id: str, until: Callable[[Space], bool], *, timeout: float = 240) -> Space:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        space = catalog.get_space(space_id)
        if until(space):
            return space
        time.sleep(0.2)
    raise TimeoutError(f"space {space_id} is still {catalog.get_space(space_id)} after {timeout}s")


def finished(space: Space) -> bool:
    return space.state in (SpaceState.READY, SpaceState.FAILED)


def stores(settings: Settings) -> tuple[BlobStore, Catalog]:
    catalog = open_catalog(settings)
    catalog.create_schema()
    return open_blob_store(settings), catalog
