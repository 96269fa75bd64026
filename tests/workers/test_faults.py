"""Killed workers: the job is retried and its outputs are written exactly once."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from rq.job import Job

from spaces import keys, queue
from spaces.models import SpaceState, Transcript
from spaces.settings import Settings
from tests.speech import Space as SpeechSpace
from tests.support.workers import Workers, finished, import_files, stores, wait_for

pytestmark = pytest.mark.slow


def newest_child(pid: int) -> int:
    """The worker's work-horse: forked after its scheduler process, so the newest child."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        pids = [int(p) for p in f.read().split()]

    def started(child: int) -> int:
        with open(f"/proc/{child}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])

    return max(pids, key=started)


def wait_until_transcribing(settings: Settings, space_id: str, timeout: float = 60) -> Job:
    """The transcribe_room job, once a work-horse is running it."""
    connection = queue.connect(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_id in queue.pipeline_queue(settings, connection).started_job_registry.get_job_ids():
            if "--transcribe-" in job_id:
                return Job.fetch(job_id, connection=connection)
        time.sleep(0.05)
    raise TimeoutError("no transcription started")


def assert_written_once(settings: Settings, space_id: str) -> None:
    blobs, catalog = stores(settings)
    transcript = Transcript.from_dict(json.loads(blobs.get(keys.transcript(space_id))))
    assert [t.speaker for t in transcript.turns] == ["alice", "bob", "alice"]
    assert len(catalog.search("wonderful book", limit=10)) == 1
    assert len(catalog.search("project schedule", limit=10)) == 1


def test_killed_work_horse_is_retried(settings: Settings, workers: Workers, two_speakers: SpeechSpace) -> None:
    _, catalog = stores(settings)
    space = import_files(settings, dict(two_speakers))
    worker = workers.start()
    queue.enqueue_finalize(settings, space.space_id)
    job = wait_until_transcribing(settings, space.space_id)
    time.sleep(0.5)
    os.kill(newest_child(worker.pid), signal.SIGKILL)
    done = wait_for(catalog, space.space_id, finished)
    assert done.state is SpaceState.READY, done.error
    job.refresh()
    assert job.retries_left == settings.job_retries - 1
    assert_written_once(settings, space.space_id)


def test_killed_worker_job_is_picked_up_by_another(
    settings: Settings, workers: Workers, two_speakers: SpeechSpace
) -> None:
    _, catalog = stores(settings)
    space = import_files(settings, dict(two_speakers))
    first = workers.start()
    queue.enqueue_finalize(settings, space.space_id)
    wait_until_transcribing(settings, space.space_id)
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its work-horse, no goodbye
    first.wait()
    workers.start()
    done = wait_for(catalog, space.space_id, finished, timeout=300)
    assert done.state is SpaceState.READY, done.error
    assert_written_once(settings, space.space_id)
