"""The order test modules are handed to pytest-xdist's workers in: the slowest first.

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

#: Modules measured slowest (seconds on the 2-CPU machine, ``--durations``), slowest first.
#: A module not listed comes after these, in collection order; only the order matters.
SLOWEST: tuple[str, ...] = (
    "tests/workers/test_languages.py",
    "tests/ingest/test_s3_outage_live.py",
    "tests/workers/test_privacy.py",
    "tests/workers/test_quality.py",
    "tests/replay_api/test_browser.py",
    "tests/e2e/test_live_search.py",
    "tests/workers/test_pipeline.py",
    "tests/ingest/test_nodes.py",
    "tests/workers/test_agent_faults.py",
    "tests/e2e/test_live.py",
    "tests/e2e/test_import.py",
    "tests/e2e/test_supervision.py",
    "tests/ingest/test_crash.py",
)


def slowest_first(items: list[pytest.Item]) -> None:
    """Sort ``items`` in place: the listed modules first, in their order; tests keep their order within a module."""
    rank = {module: i for i, module in enumerate(SLOWEST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
