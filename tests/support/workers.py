"""Real ``spaces worker`` processes on a queue of the test's own, the settings they get, spaces to feed them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spaces.blobstore import BlobStore, open_blob_store
from spaces.catalog import Catalog, open_catalog
from spaces.importer import TrackFile, import_space
from spaces.models import Space, SpaceState
from spaces.settings import Settings
from tests.speech import VOICES, Utterance, build_space
from tests.speech import Space as SpeechSpace
from tests.support.services import settings_env

UTTERANCES = [
    Utterance("alice", 0.8, "The weather was lovely this morning, so we walked down to the river."),
    Utterance("bob", 6.0, "Our team finished the project two weeks ahead of schedule."),
    Utterance("alice", 10.5, "I read a wonderful book about the history of the ocean."),
]
DURATION = 15.0


def two_speakers_space(out_dir: Path) -> SpeechSpace:
    """Alice and bob saying ``UTTERANCES`` over ``DURATION`` s (cached on disk by content)."""
    return build_space(UTTERANCES, {"alice": VOICES[0], "bob": VOICES[1]}, duration=DURATION, out_dir=out_dir)


def env_of(settings: Settings) -> dict[str, str]:
    """A worker's environment: ``settings``, with heartbeats and maintenance quick enough to wait on."""
    return settings_env(settings, SPACES_WORKER_HEARTBEAT="2", SPACES_WORKER_MAINTENANCE="5")


def use_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point this process's environment at ``settings`` (for the CLI run in-process)."""
    for name, value in env_of(settings).items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


class Workers:
    """Real ``spaces worker`` processes; ``stop_all`` (the fixtures' teardown) stops every one.

    With ``log_dir`` each worker writes to a log file of its own there
    (``logs``: what the workers saw, printed when a fault test fails);
    without, their output goes where the test's does.
    """

    def __init__(self, settings: Settings, log_dir: Path | None = None) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopped: list[subprocess.Popen[bytes]] = []
        self._log_paths: dict[int, Path] = {}
        #: Every queue a worker was started on, by (Redis, queue name): teardown drops them.
        self.queues: dict[tuple[str, str], Settings] = {}

    def start(self, settings: Settings | None = None, *, live: bool = False, **env: str) -> subprocess.Popen[bytes]:
        """A pipeline worker (or with ``live`` a room agents' worker) on ``settings``, with ``env`` over them."""
        settings = settings or self.settings
        self.queues[settings.redis_url, settings.queue_name] = settings
        command = [sys.executable, "-m", "spaces.cli", "worker", *(["--live"] if live else [])]
        environment = {**env_of(settings), **env}
        if self.log_dir is None:
            proc = subprocess.Popen(command, env=environment, start_new_session=True)
        else:
            log_path = self.log_dir / f"worker-{len(self.stopped) + len(self.procs) + 1}.log"
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    command, env=environment, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
                )
            self._log_paths[proc.pid] = log_path
        self.procs.append(proc)
        return proc

    def wait_for(self, catalog: Catalog, space_id: str, *, timeout: float) -> Space:
        """The space once READY or FAILED; fails at once if a worker died meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [proc.pid for proc in self.procs if proc.poll() is not None]
            assert not dead, f"worker {dead} exited\n{self.logs()}"
            space = catalog.get_space(space_id)
            if finished(space):
                return space
            time.sleep(0.2)
        raise TimeoutError(f"space {space_id} still {catalog.get_space(space_id)} after {timeout}s\n{self.logs()}")

    def logs(self, tail: int = 60) -> str:
        out = []
        for proc in self.stopped + self.procs:
            path = self._log_paths.get(proc.pid)
            lines = path.read_text(errors="replace").splitlines()[-tail:] if path else ["(output not logged)"]
            out.append(f"--- worker pid {proc.pid} (exit {proc.poll()}) ---\n" + "\n".join(lines))
        return "\n".join(out)

    def stop_all(self) -> None:
        for proc in self.procs:
            # The group even when its worker is gone: a worker a test SIGKILLed leaves its rq scheduler there.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # The work-horse runs in a process group of its own: kill it too.
                for child in children(proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.stopped += self.procs
        self.procs = []


def children(pid: int) -> list[int]:
    """The child processes of ``pid``."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def work_horses(worker_pid: int) -> list[int]:
    """A worker's work-horse while a job runs (none while idle).

    Not every child: the worker holding the queue's scheduler lock also has
    rq's scheduler as a child. rq puts each work-horse in a process group of
    its own (the scheduler stays in the worker's), which tells them apart.
    """
    horses = []
    for pid in children(worker_pid):
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                horses.append(pid)
    return horses


def work_horse(worker_pid: int, timeout: float = 30) -> int:
    """The worker's one work-horse, once it has one.

    rq lists a job as started before it forks the horse that runs it, so a
    horse may be a moment behind its job.
    """
    deadline = time.monotonic() + timeout
    while not (horses := work_horses(worker_pid)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker {worker_pid} has no work-horse after {timeout}s")
        time.sleep(0.01)
    (horse,) = horses
    return horse


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
