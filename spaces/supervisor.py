"""Starting the stages as processes: one by one, or all together (``spaces up``)."""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import pkgutil
import shutil
import signal
import subprocess
import sys
import time
from urllib.parse import urlparse

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from spaces import queue
from spaces.catalog import open_catalog
from spaces.exceptions import ConfigError
from spaces.nodes import parse_port_range
from spaces.settings import Settings

log = logging.getLogger(__name__)

API_APP = "replay_api.app:create_app"
SFU_MODULE = "ingest"

#: ``spaces up`` starts an exited process again, up to this many times in
#: RESTART_WINDOW seconds; more means it cannot run (a port taken, a bad
#: setting) and the stack stops instead.
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0

#: Seconds a worker keeps retrying a Redis command while Redis is away. An
#: idle rq worker reconnects on its own, but a connection error while it
#: watches a running job (heartbeats) or while the job reports its result
#: escapes rq: with redis-py's default of about 5 s a Redis restart killed
#: the worker and orphaned its work-horse. The scheduler process it forks
#: reuses these connection settings.
REDIS_PATIENCE = 60.0


def run_api(settings: Settings) -> int:
    import uvicorn

    # An HLS player re-reads its playlist every segment: its keep-alive connection must outlast
    # that wait (uvicorn's default is 5 s), or each poll opens a new one.
    keep_alive = max(5, math.ceil(2 * settings.hls_segment_seconds) + 1)
    uvicorn.run(
        API_APP,
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        timeout_keep_alive=keep_alive,
    )
    return 0


#: Resolves ``WHISPER_MODEL`` to local files (joining a packaged model's parts
#: once), by dotted name: the core never imports a stage.
MODEL_CHECK = "transcribe.model.resolve_model"


def check_model(settings: Settings, *, live: bool = False) -> None:
    """Stop at start, naming the model, if ``WHISPER_MODEL`` is not usable here (with ``live``: nor the captions' one).

    Raises:
        ConfigError: The model does not exist, is not installed, or its parts are incomplete.
    """
    resolve = pkgutil.resolve_name(MODEL_CHECK)
    names = [settings.whisper_model]
    if live:
        names += [settings.live_model_for("en"), settings.live_final_model_for("en")]
    try:
        for name in dict.fromkeys(names):
            resolve(name)
    except Exception as e:  # the stage's ModelError, whatever its class
        raise ConfigError(f"cannot start workers: {e}") from e


def run_worker(settings: Settings, *, burst: bool = False, live: bool = False) -> int:
    """A pipeline worker, or with ``live`` a worker of the room agents' queue (one live space at a time)."""
    from spaces.sweeper import SweepingWorker

    check_model(settings, live=live)
    connection = queue.connect(settings, patience=REDIS_PATIENCE)
    worker = SweepingWorker(
        [queue.live_queue(settings, connection) if live else queue.pipeline_queue(settings, connection)],
        settings=settings,
        connection=connection,
        # Short intervals: a job whose whole worker was killed is noticed
        # and retried within about a minute and a half, not fifteen.
        maintenance_interval=settings.worker_maintenance,
        job_monitoring_interval=settings.worker_heartbeat,
        # An idle worker only sweeps when its blocking dequeue times out,
        # which is worker_ttl - 15 s: make that the maintenance interval.
        worker_ttl=settings.worker_maintenance + 15,
    )
    if not burst and not live:  # the retention sweep runs on the pipeline queue's scheduler
        queue.schedule_retention(settings)
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    return 0


def run_sfu(settings: Settings) -> int:
    """One SFU node in the foreground (``spaces sfu``): for nodes on other machines."""
    return subprocess.call([sys.executable, "-m", SFU_MODULE])


def _start(command: list[str], workers: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # The worker count reaches the workers too: it shares the CPUs out among their models.
    return subprocess.Popen(command, env={**os.environ, "SPACES_WORKERS": str(workers), **(env or {})})


def sfu_node_envs(settings: Settings, nodes: int) -> list[dict[str, str]]:
    """The settings that make each of ``nodes`` SFU processes on this machine a node of its own.

    Node ``i`` (from 1) listens on ``sfu_port + i - 1``, takes the ``i``-th
    share of ``sfu_udp_ports`` (if set) and has a spool of its own (node 1
    keeps ``data_dir/spool``, so a single node finds what an older version
    left there). Its id is derived from the port unless ``sfu_node_id`` is
    set (then ``<id>-<i>``). The public URL setting only fits one node.
    """
    ports = parse_port_range(settings.sfu_udp_ports)
    envs = []
    for i in range(1, nodes + 1):
        port = settings.sfu_port + i - 1
        env = {"SPACES_SFU_PORT": str(port)}
        if settings.sfu_node_id:
            env["SPACES_SFU_NODE_ID"] = settings.sfu_node_id if nodes == 1 else f"{settings.sfu_node_id}-{i}"
        if i > 1:
            env["SPACES_SFU_SPOOL_DIR"] = str(settings.data_dir / f"spool-{i}")
            env["SPACES_SFU_PUBLIC_URL"] = ""
        if ports is not None:
            share = (ports[1] - ports[0] + 1) // nodes
            if share < 1:
                raise ConfigError(f"SPACES_SFU_UDP_PORTS {settings.sfu_udp_ports!r} is too small for {nodes} nodes")
            low = ports[0] + (i - 1) * share
            env["SPACES_SFU_UDP_PORTS"] = f"{low}-{low + share - 1}"
        envs.append(env)
    return envs


def ensure_redis(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start a local redis-server if none answers at REDIS_URL (embedded default)."""
    if _redis_up(settings):
        return None
    url = urlparse(settings.redis_url)
    if url.hostname not in ("127.0.0.1", "localhost") or not shutil.which("redis-server"):
        raise ConfigError(f"no Redis at {settings.redis_url}, and none can be started here")
    log.info("starting redis-server on port %s", url.port or 6379)
    data = settings.data_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(url.port or 6379),
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _redis_up(settings):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise ConfigError("redis-server did not start")
        time.sleep(0.1)
    return proc


def _redis_up(settings: Settings) -> bool:
    try:
        return bool(Redis.from_url(settings.redis_url, socket_connect_timeout=1).ping())
    except RedisConnectionError:
        return False


def run_stack(settings: Settings, *, workers: int, sfu_nodes: int = 1) -> int:
    """Run every stage until Ctrl-C (or SIGTERM); then stop them all.

    A process that exits is started again (the SFU recovers its spool, a
    worker's abandoned job is retried), unless it keeps exiting: then the
    stack stops rather than spin.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if workers:
        check_model(settings, live=settings.live_captions and settings.live_workers > 0)
    open_catalog(settings).create_schema()
    redis = ensure_redis(settings)
    spaces_cli = [sys.executable, "-m", "spaces.cli"]
    commands: dict[str, list[str]] = {"api": [*spaces_cli, "api"]}
    envs: dict[str, dict[str, str]] = {}
    if importlib.util.find_spec(SFU_MODULE) is not None:
        for i, env in enumerate(sfu_node_envs(settings, sfu_nodes), start=1):
            commands[f"sfu-{i}"] = [sys.executable, "-m", SFU_MODULE]
            envs[f"sfu-{i}"] = env
    for i in range(workers):
        commands[f"worker-{i + 1}"] = [*spaces_cli, "worker"]
    for i in range(settings.live_workers if settings.live_captions else 0):
        commands[f"live-{i + 1}"] = [*spaces_cli, "worker", "--live"]
    procs = {name: _start(cmd, workers, envs.get(name)) for name, cmd in commands.items()}
    exits: dict[str, list[float]] = {name: [] for name in commands}
    sfu_ports = f"{settings.sfu_port}" + (f"-{settings.sfu_port + sfu_nodes - 1}" if sfu_nodes > 1 else "")
    print(
        f"audio-spaces is up: {settings.api_url}  ({sfu_nodes} SFU node(s) on port {sfu_ports}; Ctrl-C stops)",
        flush=True,
    )
    stopping = False
    crashed = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping and not crashed:
            for name, proc in procs.items():
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                exits[name] = [t for t in exits[name] if now - t < RESTART_WINDOW] + [now]
                if len(exits[name]) > MAX_RESTARTS:
                    log.error("%s keeps exiting (%s); stopping the stack", name, proc.returncode)
                    crashed = True
                    break
                log.warning("%s exited (%s); starting it again", name, proc.returncode)
                procs[name] = _start(commands[name], workers, envs.get(name))
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
    return 1 if crashed else 0
