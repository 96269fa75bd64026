"""The order test modules are handed to pytest-xdist's workers in: the ones that run alone, then the slowest.

``--dist loadfile`` gives each worker a module at a time, in collection
order (``--no-loadscope-reorder``: by default xdist puts the modules with
the most tests first, which sends the long one-test modules last). A long
module handed out last makes a tail: the run ends on one worker while the
other idles. Handed out first, the long modules overlap each other and
the many short ones fill the gaps at the end.

Every worker collects and sorts the same way (xdist checks that their
collections agree), so the order is a fixed list, not measured at run time.
"""

from __future__ import annotations

import pytest

#: The modules handed out first, in this order; the rest follow in collection order.
#: First the modules whose tests run alone (``realtime``), then those with a stretch
#: alone (``cpu_lock.alone()``): a test waiting to go alone waits for the other
#: worker's current test, and with both workers in these modules that is a short
#: one (in a run with the languages module first, the S3 outage test waited 136 s
#: for one of its pipelines). Every ``realtime`` module is here: one handed out in
#: collection order would wait for whatever the other worker runs then (the
#: erasure-kill test runs nearly two minutes). Then the slowest of the rest, slowest
#: first (measured with ``--durations``: the languages module alone runs several
#: minutes), down to half a minute a module: a long one handed out last makes the tail.
FIRST: tuple[str, ...] = (
    "tests/ingest/test_nodes.py",
    "tests/workers/test_agent_faults.py",
    "tests/ingest/test_s3_outage_live.py",
    "tests/ingest/test_browser_nodes.py",
    "tests/workers/test_live_page.py",
    "tests/workers/test_hls_live_edge.py",
    "tests/ingest/test_udp_garbage.py",
    "tests/ingest/test_browser.py",
    "tests/ingest/test_live.py",
    "tests/ingest/test_consent_late_loop.py",
    "tests/ingest/test_paced_joins.py",
    "tests/e2e/test_live_search.py",
    "tests/e2e/test_live.py",
    "tests/ingest/test_crash.py",
    "tests/ingest/test_browser_consent.py",
    "tests/workers/test_languages.py",
    "tests/workers/test_privacy.py",
    "tests/workers/test_quality.py",
    "tests/replay_api/test_browser.py",
    "tests/workers/test_pipeline.py",
    "tests/faults/test_s3_outage.py",
    "tests/faults/test_erasure_kill.py",
    "tests/transcribe/test_streaming.py",
    "tests/faults/test_job_timeout.py",
    "tests/transcribe/test_room.py",
    "tests/faults/test_redis_restart.py",
    "tests/transcribe/test_context_pass.py",
    "tests/workers/test_cli.py",
    "tests/workers/test_faults.py",
    "tests/workers/test_hls_page.py",
    "tests/e2e/test_import.py",
    "tests/e2e/test_supervision.py",
)


def first_listed(items: list[pytest.Item]) -> None:
    """Sort ``items`` in place: the ``FIRST`` modules first, in their order; tests keep their order within a module."""
    rank = {module: i for i, module in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
