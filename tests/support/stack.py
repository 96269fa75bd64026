"""The whole stack as a user runs it (``spaces up`` in a child process), seen through its API."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


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
