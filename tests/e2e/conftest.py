"""The whole stack as a user runs it: ``spaces up`` in a child process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from spaces.settings import Settings
from tests.support.services import REDIS_URL, free_port, free_ports, settings_env, wait_for_port
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack per test process, shared by the e2e modules: starting one (its workers load
    Whisper) is most of a short e2e module's time. Each test works on spaces of its own, and
    the supervision test leaves the stack whole again (it asserts so)."""
    data_dir = tmp_path_factory.mktemp("stack") / "data"
    # One SFU node per CPU, as ``spaces up`` starts by default, on consecutive ports.
    api_port, sfu_port = free_port(), free_ports(len(os.sched_getaffinity(0)))
    settings = Settings(
        data_dir=data_dir,
        api_port=api_port,
        sfu_port=sfu_port,
        redis_url=REDIS_URL,
        queue_name=f"e2e-{uuid.uuid4().hex[:12]}",
        job_retries=1,
        # aioice skips loopback addresses unless told; this machine has no other.
        sfu_ice_addresses="127.0.0.1",
    )
    env = settings_env(settings)
    # In a session of its own: its process group holds whatever it started, even what outlives
    # the process that started it (the rq scheduler of a worker a test SIGKILLed), for the end.
    proc = subprocess.Popen([sys.executable, "-m", "spaces.cli", "up"], env=env, start_new_session=True)
    try:
        wait_for_port(api_port, timeout=60)
        yield Stack(env=env, url=f"http://127.0.0.1:{api_port}", proc=proc, data_dir=data_dir)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            # What is left once ``spaces up`` stopped its stages was orphaned on the way.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
