"""The one typed settings object, read from the environment by entry points.

Library code never reads the environment: the CLI, the app factories and
the workers call ``Settings.from_env()`` and pass what is needed down as
explicit arguments. Every field is documented in the README.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from spaces.exceptions import ConfigError

#: The development signing secret; refused unless ``SPACES_ENV=development``.
DEV_SECRET = "development-secret-change-me-in-production"


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    """``development`` or ``production``; production refuses the dev secret."""

    data_dir: Path = Path("data")
    """Root of everything local: blobs (embedded default), SQLite catalog, spool."""

    database_url: str = ""
    """``sqlite:///path`` or ``postgresql://...``; empty = SQLite in ``data_dir``."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """The rq queue's Redis."""

    queue_name: str = "spaces"
    """rq queue the pipeline jobs go to."""

    s3_bucket: str = ""
    """When set, blobs go to this S3 bucket instead of ``data_dir/blobs``."""

    s3_endpoint_url: str = ""
    """Endpoint of an S3-compatible store (MinIO, moto...); empty = AWS."""

    s3_region: str = "us-east-1"
    """Region of the bucket."""

    s3_prefix: str = ""
    """Key prefix inside the bucket, so several deployments can share one."""

    whisper_model: str = ""
    """A model that installs with the project (``tiny.en``, ``base``), a faster-whisper name or a directory.

    Empty = the embedded default (``transcribe.model.DEFAULT_MODEL``). Workers
    refuse to start, naming it, if it is unknown or incomplete.
    """

    whisper_device: str = "cpu"
    """``cpu`` or ``cuda``."""

    whisper_compute_type: str = "int8"
    """CTranslate2 compute type (``int8`` on CPU, ``float16`` on GPU)."""

    whisper_threads: int = 0
    """CPU threads per model; 0 = the CPUs shared out among the workers (at least 1)."""

    workers: int = 0
    """Worker processes ``spaces up`` starts; 0 = one per CPU. On CPU, parallel
    track jobs with one thread each transcribe a space about twice as fast as
    one job with every thread (``bench/transcripts.py``)."""

    secret_key: str = DEV_SECRET
    """Signs join and access tokens (shared by the API and the SFU)."""

    token_ttl: int = 3600
    """Lifetime of issued tokens, seconds."""

    api_host: str = "127.0.0.1"
    """Where ``spaces up`` / ``spaces api`` listen."""

    api_port: int = 8000
    """Port of the replay/API server."""

    public_url: str = ""
    """Public base URL of the API; empty = ``http://api_host:api_port``."""

    max_body_bytes: int = 1_048_576
    """Largest request body the API accepts, bytes; a larger one gets 413 before it is read."""

    search_rate_limit: int = 600
    """Searches per minute one client address may make, sustained; 0 = no limit."""

    search_rate_burst: int = 60
    """Searches one client address may make at once before the per-minute rate applies."""

    token_rate_limit: int = 120
    """Tokens (new spaces, join tokens) issued per minute to one client address; 0 = no limit."""

    token_rate_burst: int = 30
    """Tokens one client address may be issued at once before the per-minute rate applies."""

    rate_limit_store: str = "memory"
    """Where the API counts requests: ``memory`` (per API process) or ``redis``
    (at ``redis_url``, shared by every API process; fails open if Redis is down)."""

    sfu_host: str = "127.0.0.1"
    """Where the SFU listens."""

    sfu_port: int = 8001
    """Port of the SFU's signaling server."""

    sfu_public_url: str = ""
    """Public base URL of the SFU given to the live page; empty = derived."""

    sfu_segment_seconds: int = 10
    """Length of the Ogg/Opus segments the SFU records per speaker, seconds."""

    sfu_empty_timeout: int = 60
    """A live space with no host or speaker in it (listeners alone, or nobody) ends
    (and is recorded) after this many seconds; the listeners are told why."""

    sfu_max_participants: int = 500
    """Participants one live space admits; listeners past it get a ``too_many``
    error, the host and invited speakers are always let in."""

    sfu_setup_timeout: int = 10
    """Seconds a participant has, after joining, to connect its media (answer the
    offer, ICE and DTLS); then it is dropped with ``setup_timeout``."""

    sfu_max_remote_candidates: int = 20
    """ICE candidates one client's answer may name (per m-line); more is refused,
    and at most this many addresses are ever checked per connection."""

    sfu_ice_excluded: str = ""
    """Comma-separated networks (CIDR) the SFU never sends ICE checks to; ``none`` for
    none; empty = loopback, link-local and the SFU's own addresses in production,
    nothing in development (tests and a laptop run on loopback)."""

    space_join_timeout: int = 600
    """A space nobody has joined this many seconds after it was created ends as
    ``empty``: it leaves the live list and is never listed as a past space."""

    sfu_join_burst: int = 50
    """Join attempts one client address may make at once (then 5 per second)."""

    sfu_ice_addresses: str = ""
    """Comma-separated local IPs the SFU offers as ICE candidates; empty = every interface."""

    sfu_ice_servers: str = ""
    """Comma-separated STUN/TURN URLs for the SFU's ICE; empty = host candidates only."""

    sfu_loop: str = "asyncio"
    """Event loop of an SFU process: ``asyncio`` (the standard loop, whose UDP sockets
    ``ingest.udp`` drains itself) or ``uvloop``; measured side by side by ``bench/sfu.py --loop``."""

    job_timeout: int = 3600
    """Seconds one pipeline job may run before rq kills it."""

    job_retries: int = 3
    """How often a failed or killed job is retried."""

    worker_heartbeat: int = 10
    """Seconds between a worker's heartbeats; a job whose worker died is
    considered abandoned about 60 s after the last one."""

    worker_maintenance: int = 30
    """Seconds between a worker's sweeps for abandoned jobs (which are retried)."""

    live_workers: int = 1
    """Workers of the ``live`` queue that ``spaces up`` starts; each runs one room agent
    (live captions) at a time, so this is how many spaces get live captions at once."""

    live_job_timeout: int = 12 * 3600
    """Longest a room agent may stay in one space, seconds (and its token's lifetime)."""

    @property
    def worker_count(self) -> int:
        return self.workers or _cpus()

    @property
    def model_threads(self) -> int:
        return self.whisper_threads or max(1, _cpus() // self.worker_count)

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def catalog_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'catalog.db'}"

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def sfu_url(self) -> str:
        return self.sfu_public_url or f"http://{self.sfu_host}:{self.sfu_port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``SPACES_*`` (and the conventional un-prefixed) variables."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = _lookup(env, f.name)
            if raw is None:
                continue
            values[f.name] = _convert(f.name, raw, f.type)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.env != "development" and self.secret_key == DEV_SECRET:
            raise ConfigError("SPACES_SECRET_KEY must be set to a random secret outside development")
        if not (self.catalog_url.startswith(("sqlite:", "postgresql:", "postgres:"))):
            raise ConfigError(f"DATABASE_URL must be sqlite:// or postgresql://, got {self.catalog_url!r}")


#: Variables known by their conventional names rather than ``SPACES_*``.
_ALIASES = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "s3_bucket": "S3_BUCKET",
    "s3_endpoint_url": "S3_ENDPOINT_URL",
    "s3_region": "S3_REGION",
    "whisper_model": "WHISPER_MODEL",
    "whisper_device": "WHISPER_DEVICE",
    "whisper_compute_type": "WHISPER_COMPUTE_TYPE",
}


def _cpus() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    return len(os.sched_getaffinity(0))


def _lookup(env: Mapping[str, str], name: str) -> str | None:
    prefixed = env.get(f"SPACES_{name.upper()}")
    if prefixed is not None:
        return prefixed
    alias = _ALIASES.get(name)
    return env.get(alias) if alias else None


def _convert(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as e:
        raise ConfigError(f"{name}: expected {kind}, got {raw!r}") from e
    return raw
