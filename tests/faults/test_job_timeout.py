"""Jobs over their timeout: nothing half-written is visible, the state tells the truth.

rq enforces ``SPACES_JOB_TIMEOUT`` inside the work-horse (SIGALRM raises
``JobTimeoutException`` wherever the job is). Outputs are written by atomic
puts at the end of each stage, so a stage cut short leaves the previous
complete version, or nothing, never a part. The worker's timeout applies to
the stage jobs because ``finalize`` enqueues them with the worker's settings.
"""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rq.job import Job, JobStatus

from spaces import keys, queue
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.models import Space, SpaceState
from spaces.settings import Settings
from tests.media import duration
from tests.speech import Space as SpeechSpace
from tests.support.faults import (
    assert_indexed_once,
    output_keys,
    snapshot,
    stage_jobs,
    wait_until_running,
)
from tests.support.workers import DURATION, Workers, import_files, stores, work_horse

pytestmark = pytest.mark.slow

#: rq's smallest timeout. Which stage runs over it first depends on the
#: machine: a transcription, the mix, or assemble (whose context pass loads
#: the model and runs Whisper before it writes anything).
TINY_TIMEOUT = "1"

#: The first stage to use up its retries names itself in the space's error.
TIMED_OUT = re.compile(rf"^(transcribe_room|mix|assemble) timed out after {TINY_TIMEOUT} s$")


def test_job_over_its_timeout_leaves_no_half_written_output(
    settings: Settings, worker_procs: Workers, two_speakers: SpeechSpace, request: pytest.FixtureRequest
) -> None:
    blobs, catalog = stores(settings)
    space_id = import_files(settings, dict(two_speakers)).space_id
    request.addfinalizer(lambda: queue.connect(settings).delete(f"spaces:runs:{space_id}"))
    inputs = snapshot(blobs, keys.space_prefix(space_id))

    # First run: every transcription times out, is retried, times out again.
    worker_procs.start(settings, SPACES_JOB_TIMEOUT=TINY_TIMEOUT)
    queue.enqueue_finalize(settings, space_id)
    failed = wait_for_run(worker_procs, settings, catalog, space_id, 0)
    assert failed.state is SpaceState.FAILED
    assert failed.error and TIMED_OUT.match(failed.error), failed.error
    # What failed was retried before it was given up on.
    gave_up = [j for j in stage_jobs(settings, space_id).values() if j.get_status() == JobStatus.FAILED]
    assert gave_up and all(j.retries_left == 0 for j in gave_up)
    # No transcript, captions, words or index rows; at most a whole replay
    # (the mix may beat a one-second timeout on a fast machine).
    written = set(snapshot(blobs, keys.space_prefix(space_id))) - set(inputs)
    # A track whose transcription beat the timeout leaves its whole words file.
    per_track = {k for k in written if k.startswith(f"spaces/{space_id}/words/")}
    for key in per_track - {k for k in per_track if k.endswith(".npz")}:
        json.loads(blobs.get(key))
    assert written - per_track <= {keys.replay(space_id, "ogg"), keys.replay(space_id, "m4a")}
    assert_whole_replays(settings, blobs_written=written - per_track)
    assert catalog.talk_times(space_id) == {}  # no turns indexed
    worker_procs.stop_all()
    assert_no_debris(settings)

    # Reprocess with the default timeout: it completes.
    worker_procs.start(settings)
    run = queue.next_run(settings, space_id)
    queue.enqueue_finalize(settings, space_id, run=run)
    done = wait_for_run(worker_procs, settings, catalog, space_id, run)
    assert done.state is SpaceState.READY and done.error is None
    # The first run's retries still pending when the reprocess began fail
    # late (they keep the one-second timeout they were enqueued with): they
    # must not turn the reprocessed space back to failed.
    wait_until_settled(settings, blobs, space_id, run=0)
    assert catalog.get_space(space_id).state is SpaceState.READY
    complete = snapshot(blobs, keys.space_prefix(space_id))
    talk_times = catalog.talk_times(space_id)
    assert set(complete) == set(inputs) | output_keys(blobs, space_id)
    assert_indexed_once(blobs, catalog, space_id)

    # Reprocess again with the tiny timeout: it fails, and the previous
    # complete version is what stays, byte for byte.
    worker_procs.stop_all()
    worker_procs.start(settings, SPACES_JOB_TIMEOUT=TINY_TIMEOUT)
    run = queue.next_run(settings, space_id)
    queue.enqueue_finalize(settings, space_id, run=run)
    again = wait_for_run(worker_procs, settings, catalog, space_id, run)
    assert again.state is SpaceState.FAILED and again.error and TIMED_OUT.match(again.error), again.error
    after = snapshot(blobs, keys.space_prefix(space_id))
    replays = {keys.replay(space_id, "ogg"), keys.replay(space_id, "m4a")}
    # Ogg stream serial numbers are random: a mix that beat the timeout
    # rewrote the replay with other bytes; everything else is untouched.
    assert {k: v for k, v in after.items() if k not in replays} == {
        k: v for k, v in complete.items() if k not in replays
    }
    assert set(after) == set(complete)
    assert catalog.talk_times(space_id) == talk_times  # the index rows too
    assert_whole_replays(settings, blobs_written=replays)
    worker_procs.stop_all()
    assert_no_debris(settings)


def test_work_horse_killed_on_its_last_attempt_fails_the_space(
    settings: Settings, worker_procs: Workers, two_speakers: SpeechSpace
) -> None:
    """rq's own SIGKILL a minute past a job's timeout (when the job is stuck
    where SIGALRM cannot reach it), or the OOM killer: no retry left, so the
    space must end FAILED with the reason, not stay PROCESSING for ever."""
    settings = replace(settings, job_retries=0)
    blobs, catalog = stores(settings)
    space_id = import_files(settings, dict(two_speakers)).space_id
    inputs = snapshot(blobs, keys.space_prefix(space_id))
    worker = worker_procs.start(settings)
    queue.enqueue_finalize(settings, space_id)
    wait_until_running(settings, "--transcribe-")
    os.kill(work_horse(worker.pid), signal.SIGKILL)

    failed = worker_procs.wait_for(catalog, space_id, timeout=60)
    assert failed.state is SpaceState.FAILED
    assert failed.error == "transcribe_room failed: work-horse killed by SIGKILL", failed.error
    # No transcript or captions: the space failed. The other track's own job
    # may still run after the failure and leave its (whole) per-track words.
    written = set(snapshot(blobs, keys.space_prefix(space_id))) - set(inputs)
    assert not written & {keys.transcript(space_id), keys.captions(space_id, "vtt"), keys.captions(space_id, "srt")}
    assert worker.poll() is None  # the worker itself carries on


def wait_for_run(worker_procs: Workers, settings: Settings, catalog: Catalog, space_id: str, run: int) -> Space:
    """The outcome of one run, not the state the previous run left.

    ``finalize`` sets the space PROCESSING before it enqueues the stages, so
    once that run's finalize job has finished, READY or FAILED is this run's.
    """
    finalize = Job.fetch(queue.job_id(space_id, "finalize", run), connection=queue.connect(settings))
    deadline = time.monotonic() + 60
    while finalize.get_status() != "finished":
        assert time.monotonic() < deadline, f"finalize of run {run} is {finalize.get_status()}"
        time.sleep(0.2)
    return worker_procs.wait_for(catalog, space_id, timeout=150)


def wait_until_settled(settings: Settings, blobs: BlobStore, space_id: str, *, run: int) -> None:
    """Until no job of ``run`` is queued, scheduled for a retry or running.

    Stages whose dependencies failed stay deferred for ever; they never run.
    """
    pending = {"queued", "scheduled", "started"}
    deadline = time.monotonic() + 60
    while any(job.get_status() in pending for job in stage_jobs(settings, space_id, run).values()):
        assert time.monotonic() < deadline, f"run {run} of {space_id} still has jobs pending"
        time.sleep(0.5)


def assert_whole_replays(settings: Settings, *, blobs_written: set[str]) -> None:
    """Any replay written is whole: it plays for the space's full length."""
    blobs, _ = stores(settings)
    for key in blobs_written:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / key.rsplit("/", 1)[-1]
            blobs.download(key, path)
            assert duration(path) == pytest.approx(DURATION, abs=0.1), key


def assert_no_debris(settings: Settings) -> None:
    """No temporary files left in the blob directory by interrupted puts.

    Checked with the workers stopped: a put in flight has one for a moment.
    """
    assert not list(settings.blob_dir.rglob(".tmp-*"))
