"""Real services the tests use: free ports, moto's S3 server, PostgreSQL and Redis addresses, SFU nodes.

Importing this module makes in-process models and started workers use
``tiny.en`` (the model the suite's bounds were measured with) unless
``WHISPER_MODEL`` says otherwise.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

from spaces.nodes import Node
from spaces.router import NodeRouter
from spaces.settings import Settings
from spaces.variables import variables

os.environ.setdefault("WHISPER_MODEL", "tiny.en")


TEST_MODEL = os.environ["WHISPER_MODEL"]


PG_BASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


#: Ports for the tests' servers: below the kernel's ephemeral range (32768 on),
#: so that no outgoing connection takes one between our check and the
#: server's bind, which parallel test workers made likely.
_OWN_PORTS = range(10000, 32000)


def _port_slice() -> range:
    """This test process's share of ``_OWN_PORTS`` (one slice per pytest-xdist worker)."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    span = len(_OWN_PORTS) // max(count, 1)
    first = _OWN_PORTS.start + index * span
    return range(first, first + span)


def _cycle() -> Iterator[int]:
    # From a random place in the slice, so that two test runs side by side
    # do not try the same ports in the same order.
    ports = _port_slice()
    start = random.randrange(len(ports))
    return itertools.cycle([*ports[start:], *ports[:start]])


_next_ports = _cycle()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (``spaces up`` gives its SFU nodes consecutive ports)."""
    for _ in range(len(_port_slice())):
        first = next(_next_ports)
        ports = range(first, first + count)
        if ports[-1] in _port_slice() and all(_bindable(p) for p in ports):
            for _ in range(count - 1):
                next(_next_ports)
            return first
    raise RuntimeError(f"no {count} consecutive free ports in {_port_slice()}")


def free_port() -> int:
    return free_ports(1)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class MotoServer:
    """moto's standalone S3-compatible HTTP server in a child process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@contextmanager
def registered_node(settings: Settings, url: str, node_id: str = "test-node") -> Iterator[Node]:
    """A node record in the registry, for API tests that run no SFU: placement hands out ``url``.

    Registered with a long lease (no heartbeats needed while the test runs),
    deregistered at the end.
    """
    router = NodeRouter(Redis.from_url(settings.redis_url), prefix=f"{settings.queue_name}:sfu", node_timeout=3600)
    node = Node(node_id=node_id, url=url, host="test", spool="-")
    instance = uuid.uuid4().hex
    router.register(node, instance, holds_spool=False)
    try:
        yield node
    finally:
        router.deregister(node_id, instance)
        router.close()


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment with ``settings`` in it, for a child process (a worker, an SFU, ``spaces up``).

    The fields off their defaults are written; the rest are left to this
    process's environment, which tests set variables in for a child
    (``WHISPER_MODEL``, ``monkeypatch.setenv``). ``extra``: further variables,
    over the settings'.
    """
    env = dict(os.environ)
    defaults = Settings()
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value is not None and value != getattr(defaults, field.name):
            env[variables(field.name)[0]] = str(value).lower() if isinstance(value, bool) else str(value)
    return {**env, **extra}
