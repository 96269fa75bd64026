"""The whole stack as a user runs it: ``spaces up`` in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, free_port, free_ports, wait_for_port


@dataclass
class Stack:
    env: dict[str, str]
    url: str
    proc: subprocess.Popen[bytes]
    data_dir: Path

    def spaces(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run the ``spaces`` CLI against this stack."""
        return subprocess.run(
            [sys.executable, "-m", "spaces.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=30)

    def post(self, path: str, body: dict[str, object], token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=30)

    def wait_state(self, space_id: str, states: set[str], timeout: float = 300) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            space: dict[str, object] = self.get(f"/spaces/{space_id}").json()
            if space.get("state") in states:
                return space
            time.sleep(0.5)
        raise TimeoutError(f"space {space_id} not in {states} after {timeout}s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("stack") / "data"
    # One SFU node per CPU, as ``spaces up`` starts by default, on consecutive ports.
    api_port, sfu_port = free_port(), free_ports(len(os.sched_getaffinity(0)))
    env = {
        **os.environ,
        "SPACES_DATA_DIR": str(data_dir),
        "SPACES_API_PORT": str(api_port),
        "SPACES_SFU_PORT": str(sfu_port),
        "REDIS_URL": REDIS_URL,
        "SPACES_QUEUE_NAME": f"e2e-{uuid.uuid4().hex[:12]}",
        "SPACES_JOB_RETRIES": "1",
        # aioice skips loopback addresses unless told; this machine has no other.
        "SPACES_SFU_ICE_ADDRESSES": "127.0.0.1",
    }
    proc = subprocess.Popen([sys.executable, "-m", "spaces.cli", "up"], env=env)
    try:
        wait_for_port(api_port, timeout=60)
        yield Stack(env=env, url=f"http://127.0.0.1:{api_port}", proc=proc, data_dir=data_dir)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
