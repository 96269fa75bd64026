"""The stack under load: the SFU, the API and a worker as real processes in a work directory of their own."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.services import free_port, free_ports

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@dataclass
class Stack:
    work: Path
    env: dict[str, str]
    api_url: str
    sfu_urls: dict[str, str]
    """Each SFU node's process name and base URL: ``sfu``, or ``sfu-1``, ``sfu-2``... as ``spaces up`` names them."""
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def spawn(
        self, name: str, args: list[str], *, stdin: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """A child process; stdout is the JSON-lines channel when ``stdin``, else its log; ``env`` adds to ours."""
        log = (self.work / f"{name}.log").open("a")
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin else log,
            stderr=log,
            text=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def check(self) -> None:
        for name in (*self.sfu_urls, "api", "worker"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.work / (name + '.log')}")


def start_stack(work: Path, *, redis_url: str, nodes: int = 1) -> Stack:
    """The stack, with ``nodes`` SFU nodes on consecutive ports (each a node of its own, as ``spaces up`` runs them)."""
    api_port, sfu_port = free_port(), free_ports(nodes)
    env = dict(os.environ)
    for name in ("S3_BUCKET", "SPACES_S3_BUCKET", "DATABASE_URL", "SPACES_DATABASE_URL"):
        env.pop(name, None)
    env.update(
        SPACES_ENV="development",
        SPACES_DATA_DIR=str(work / "data"),
        SPACES_SECRET_KEY="bench-" + secrets.token_hex(16),
        # Per-room /stats (dropped packets per track) needs the operator's token.
        SPACES_OPERATOR_TOKEN=secrets.token_urlsafe(32),
        REDIS_URL=redis_url,
        SPACES_QUEUE_NAME=f"bench-load-{uuid.uuid4().hex[:8]}",
        # One worker, given every CPU's thread, as `spaces up` shares them out.
        SPACES_WORKERS="1",
        SPACES_API_HOST="127.0.0.1",
        SPACES_API_PORT=str(api_port),
        SPACES_SFU_HOST="127.0.0.1",
        SPACES_SFU_PORT=str(sfu_port),
        SPACES_SFU_ICE_ADDRESSES="127.0.0.1",
        # One loopback address plays every user: lift the per-address limits.
        SPACES_SFU_JOIN_BURST="1000000",
        SPACES_SEARCH_RATE_LIMIT="0",
        SPACES_TOKEN_RATE_LIMIT="0",
        SPACES_LOG_LEVEL="INFO",
    )
    names = ["sfu"] if nodes == 1 else [f"sfu-{i}" for i in range(1, nodes + 1)]
    sfu_urls = {name: f"http://127.0.0.1:{sfu_port + i}" for i, name in enumerate(names)}
    stack = Stack(work, env, f"http://127.0.0.1:{api_port}", sfu_urls)
    from spaces.catalog import open_catalog
    from spaces.supervisor import sfu_node_envs

    catalog = open_catalog(settings_of(stack))
    catalog.create_schema()
    catalog.close()
    import httpx

    try:
        for name, node_env in zip(names, sfu_node_envs(settings_of(stack), nodes), strict=True):
            stack.spawn(name, [PYTHON, "-m", "ingest"], env=node_env)
        stack.spawn("api", [PYTHON, "-m", "spaces.cli", "api"])
        stack.spawn("worker", [PYTHON, "-m", "spaces.cli", "worker"])
        deadline = time.monotonic() + 60
        for url in (f"{stack.api_url}/spaces?limit=1", *(f"{u}/healthz" for u in sfu_urls.values())):
            while True:
                stack.check()
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer in 60 s")
                time.sleep(0.2)
    except BaseException:
        stack.stop()
        raise
    return stack


def settings_of(stack: Stack) -> Any:
    from spaces.settings import Settings

    return Settings.from_env(stack.env)


def enqueue(stack: Stack, space_id: str) -> None:
    from spaces import queue

    queue.enqueue_finalize(settings_of(stack), space_id)


def states(stack: Stack, space_ids: list[str]) -> dict[str, str]:
    from spaces.catalog import open_catalog

    catalog = open_catalog(settings_of(stack))
    try:
        return {s: str(catalog.get_space(s).state) for s in space_ids}
    finally:
        catalog.close()


def wait_processed(stack: Stack, space_ids: list[str], timeout: float, *, settled: str = "ready") -> float:
    """Seconds until every space is ``settled`` (or failed); TimeoutError past ``timeout``."""
    began = time.monotonic()
    final = {settled, "failed"} if settled == "ready" else {settled, "processing", "ready", "failed"}
    while True:
        stack.check()
        if all(s in final for s in states(stack, space_ids).values()):
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"spaces not {settled} after {timeout:.0f} s: {states(stack, space_ids)}")
        time.sleep(0.25)
