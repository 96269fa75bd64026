"""Redis restarts mid-processing: the same worker reconnects and the work resumes.

The test runs a redis-server of its own (append-only file, fsync on every
write), so it can stop and start it without touching the shared one.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from spaces import keys, queue
from spaces.models import SpaceState
from spaces.settings import Settings
from tests.speech import Space as SpeechSpace
from tests.support.faults import (
    RedisServer,
    assert_indexed_once,
    output_keys,
    snapshot,
    wait_until_running,
)
from tests.support.workers import Workers, import_files, stores

pytestmark = pytest.mark.slow

#: How long Redis stays down. A bare restart takes well under a second, which
#: redis-py's default retries (10 attempts, jittered backoff capped at 1 s:
#: at most about 5 s in all) hide from rq; 10 s is past them, so the worker
#: really meets the failure (before the fix in supervisor.py it died of it).
REDIS_DOWN_SECONDS = 10.0


def test_worker_reconnects_after_redis_restarts_mid_transcription(
    settings: Settings, own_redis: RedisServer, worker_procs: Workers, two_speakers: SpeechSpace
) -> None:
    settings = replace(settings, redis_url=own_redis.url)
    blobs, catalog = stores(settings)
    space_id = import_files(settings, dict(two_speakers)).space_id
    inputs = snapshot(blobs, keys.space_prefix(space_id))
    worker = worker_procs.start(settings)
    queue.enqueue_finalize(settings, space_id)
    transcribing = wait_until_running(settings, "--transcribe-")

    own_redis.stop()
    time.sleep(REDIS_DOWN_SECONDS)
    own_redis.start()

    done = worker_procs.wait_for(catalog, space_id, timeout=150)
    assert done.state is SpaceState.READY, f"{done.error}\n{worker_procs.logs()}"
    # The same worker process did it: it reconnected rather than died.
    assert worker.poll() is None, worker_procs.logs()
    # The queue came back from the append-only file: the job that was running
    # when Redis went away is still known and ended finished.
    transcribing.refresh()
    assert transcribing.get_status() == "finished"
    assert set(snapshot(blobs, keys.space_prefix(space_id))) == set(inputs) | output_keys(blobs, space_id)
    assert_indexed_once(blobs, catalog, space_id)
