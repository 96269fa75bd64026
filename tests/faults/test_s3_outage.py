"""The S3 endpoint goes away during processing; the space still ends whole.

The workers reach moto through :class:`~tests.faults.proxy.TcpProxy`; the
test itself talks to moto directly, so it can watch the store while the
workers cannot reach it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from spaces import keys, queue
from spaces.blobstore import open_blob_store
from spaces.blobstore.s3 import S3BlobStore
from spaces.catalog import open_catalog
from spaces.models import SpaceState
from spaces.settings import Settings
from tests.faults.proxy import TcpProxy
from tests.speech import Space as SpeechSpace
from tests.support.faults import (
    assert_indexed_once,
    output_keys,
    snapshot,
    stage_jobs,
    wait_until_running,
)
from tests.support.services import MotoServer
from tests.support.workers import Workers, import_files

pytestmark = pytest.mark.slow

#: How long the endpoint stays away. The issue asks for 60 s, and the default
#: retry policy rides that out (test_retry_policy.py checks the arithmetic),
#: but a job that fails as the outage starts is then retried at +5 s, +35 s
#: and +155 s: a 60 s outage makes this one test last about three minutes,
#: over the whole suite's budget. 30 s still far outlasts botocore's own
#: retries (about a second for a refused connection: 5 attempts, 50 ms
#: base backoff) and spans the first two rq retries (+5 s, +35 s), so what
#: rides it out is our rq Retry, not botocore.
OUTAGE_SECONDS = 30.0


@pytest.fixture
def s3_proxy(moto_server: MotoServer) -> Iterator[TcpProxy]:
    with TcpProxy(moto_server.port).running() as proxy:
        yield proxy


def test_space_survives_s3_going_away_mid_processing(
    settings: Settings,
    s3_bucket: str,
    moto_server: MotoServer,
    s3_proxy: TcpProxy,
    worker_procs: Workers,
    two_speakers: SpeechSpace,
) -> None:
    # The default retry policy, not the test suite's single retry.
    direct = replace(
        settings, s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint, job_retries=Settings().job_retries
    )
    proxied = replace(direct, s3_endpoint_url=s3_proxy.endpoint)
    blobs, catalog = open_blob_store(direct), open_catalog(direct)
    space_id = import_files(direct, dict(two_speakers)).space_id
    inputs = snapshot(blobs, keys.space_prefix(space_id))
    worker_procs.start(proxied)
    queue.enqueue_finalize(proxied, space_id)
    # Cut while a work-horse is transcribing: it has read its segments and
    # will fail writing its words; the jobs queued behind it fail reading.
    wait_until_running(proxied, "--transcribe-")
    s3_proxy.cut()
    cut_at = time.monotonic()
    states = set()
    while time.monotonic() - cut_at < OUTAGE_SECONDS:
        states.add(catalog.get_space(space_id).state)
        time.sleep(0.5)
    s3_proxy.restore()
    assert s3_proxy.connections, "the workers did not go through the proxy"

    # While S3 was away the space was never given up on.
    assert SpaceState.FAILED not in states
    done = worker_procs.wait_for(catalog, space_id, timeout=150)
    assert done.state is SpaceState.READY, f"{done.error}\n{worker_procs.logs()}"

    # Our rq Retry rode it out: some stage failed and was run again.
    jobs = stage_jobs(direct, space_id)
    retried = {stage: job.retries_left for stage, job in jobs.items() if (job.retries_left or 0) < direct.job_retries}
    assert retried, "no stage was retried: the outage did not hit a job"
    assert all(job.get_status() == "finished" for job in jobs.values())

    # Nothing lost: every input is there with the same bytes...
    after = snapshot(blobs, keys.space_prefix(space_id))
    assert {k: after.get(k) for k in inputs} == inputs
    # ...every output once, and nothing else (no stray or partial objects).
    assert set(after) == set(inputs) | output_keys(blobs, space_id)
    assert not unfinished_multipart_uploads(direct)
    assert_indexed_once(blobs, catalog, space_id)


def unfinished_multipart_uploads(settings: Settings) -> list[str]:
    """Multipart uploads begun and never completed or aborted: invisible debris."""
    client = S3BlobStore.from_settings(settings).client
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", [])]
