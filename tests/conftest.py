"""Fixtures for real services: S3 (moto's server), PostgreSQL, Redis.

Nothing here is mocked. Each service is used under names of our own (a
bucket, a PostgreSQL schema, a unique rq queue) and cleaned up afterwards;
Redis is never flushed, since other runs may share it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import boto3
import psycopg
import pytest
from redis import Redis

from spaces.blobstore import BlobStore
from spaces.blobstore.local import LocalBlobStore
from spaces.blobstore.s3 import S3BlobStore
from spaces.catalog import Catalog
from spaces.catalog.postgres import PostgresCatalog
from spaces.catalog.sqlite import SqliteCatalog
from spaces.nodes import Node
from spaces.router import NodeRouter
from spaces.settings import Settings
from tests.exclusive import REALTIME_MODULES, holding, lock_dir

# The suite's bounds were measured with tiny.en, the fastest model: workers
# and in-process models use it unless a test asks for another (the language
# tests ask for base, the multilingual default).
os.environ.setdefault("WHISPER_MODEL", "tiny.en")
TEST_MODEL = os.environ["WHISPER_MODEL"]

PG_BASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def realtime_alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under pytest-xdist, a real-time test runs while no other test does (``tests/exclusive.py``)."""
    directory = lock_dir()
    if directory is None:
        yield
        return
    module = Path(request.node.path).relative_to(request.config.rootpath).as_posix()
    with holding(directory, exclusive=module in REALTIME_MODULES):
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (``spaces up`` gives its SFU nodes consecutive ports)."""
    for _ in range(100):
        first = free_port()
        if first + count - 1 > 65535:
            continue
        try:
            socks = []
            for port in range(first, first + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --- S3 -------------------------------------------------------------------


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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


# --- PostgreSQL -----------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_BASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_BASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


# --- Redis ----------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    Redis.from_url(REDIS_URL).ping()
    return REDIS_URL


# --- Settings and the two seams, over every backend -----------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults in a temporary directory, with a queue of our own."""
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=REDIS_URL,
        queue_name=f"test-{uuid.uuid4().hex[:12]}",
        job_retries=1,
    )


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    server: MotoServer = request.getfixturevalue("moto_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    s = Settings(s3_bucket=bucket, s3_endpoint_url=server.endpoint)
    return S3BlobStore.from_settings(s)


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    cat: Catalog
    if request.param == "sqlite":
        cat = SqliteCatalog(tmp_path / "catalog.db")
    else:
        cat = PostgresCatalog(request.getfixturevalue("pg_url"))
    cat.create_schema()
    yield cat
    cat.close()


@pytest.fixture(params=["embedded", "production"])
def backend_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings for the embedded defaults and for S3 + PostgreSQL."""
    if request.param == "embedded":
        return settings
    server: MotoServer = request.getfixturevalue("moto_server")
    return replace(
        settings,
        s3_bucket=request.getfixturevalue("s3_bucket"),
        s3_endpoint_url=server.endpoint,
        database_url=request.getfixturevalue("pg_url"),
    )


# --- SFU nodes ------------------------------------------------------------


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
