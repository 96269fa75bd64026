"""The one typed settings object, read from the environment by entry points.

Library code never reads the environment: the CLI, the app factories and
the workers call ``Settings.from_env()`` and pass what is needed down as
explicit arguments. Every field is documented in the README (a test checks
the table against the fields).

``Settings`` is a (pydantic) dataclass: code builds and ``replace``s it like
any other, with its types enforced; ``from_env`` reads the environment with
pydantic-settings, so a bad value is refused naming the variable it came from.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, ValidationError
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from spaces.exceptions import ConfigError
from spaces.languages import AUTO
from spaces.nodes import NODE_ID, parse_port_range
from spaces.secret_strength import DEV_SECRET, MAKE_SECRET, is_dev_secret, is_loopback, secret_weakness
from spaces.variables import describe, read

#: What retention may keep of an old space (``retention_keep``).
RETENTION_KINDS = frozenset({"mix", "transcript", "words", "tracks"})

#: The bitrates (bit/s) an Opus encoder takes, lowest and highest (libopus: 6 to 510 kb/s).
OPUS_BITRATES = (6000, 510000)


def _positive_days(value: object) -> float | None:
    """Blank is unset; anything else must be a positive, finite number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        days = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        days = math.nan
    if not math.isfinite(days) or days <= 0:
        raise PydanticCustomError(
            "positive_days", "must be a positive number of days, got {value}", {"value": repr(value)}
        )
    return days


PositiveDays = Annotated[float | None, BeforeValidator(_positive_days)]


@dataclass(frozen=True)
class Settings:
    env: Literal["development", "production"] = "development"
    """``development`` or ``production``; production refuses a secret under 32
    random bytes' worth, and development refuses its public secret on a
    non-loopback address."""

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

    operator_token: str = ""
    """Bearer token that unlocks the per-room detail of the SFU's ``/stats``
    (live spaces, private ones too, and their publishers); empty = totals only."""

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

    sfu_segment_seconds: float = 10.0
    """Length of the Ogg/Opus segments the SFU records per speaker, seconds."""

    sfu_opus_bitrate: int = 64000
    """The Opus bitrate (bit/s) the SFU asks speakers' browsers to send at (``maxaveragebitrate`` on the
    publish m-line of a speaker's offers): what is recorded is what Whisper hears. At browsers' own
    32 kb/s Whisper reads a tenth more errors on the bench's answers, a third more on their short
    answers (README, "Recording bitrate"). 6000-510000 (``OPUS_BITRATES``); 0 leaves it to the browser."""

    sfu_empty_timeout: float = 60.0
    """A live space with no host or speaker in it (listeners alone, or nobody) ends
    (and is recorded) after this many seconds; the listeners are told why."""

    sfu_max_participants: int = 500
    """Participants one live space admits; listeners past it get a ``too_many``
    error, the host and invited speakers are always let in."""

    sfu_setup_timeout: float = 10.0
    """Seconds a participant has, after joining, to connect its media (answer the
    offer, ICE and DTLS); then it is dropped with ``setup_timeout``."""

    sfu_joins_in_setup: int = 8
    """Joins one SFU node takes through media setup (offer, ICE, DTLS) at once; the
    next wait in line (told ``queued``) and their ``sfu_setup_timeout`` starts with
    their turn. Bounds how late a burst of joins makes the node's event loop."""

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

    sfu_fanout: Literal["c", "python"] = "c"
    """How an SFU node sends a packet to a slot's listeners: ``c`` (``ingest._fanout``, one call
    per packet; the Python loop, with one warning, if it was not built) or ``python`` (one
    ``Sink.send`` per listener: the reference the C path is tested and benchmarked against)."""

    sfu_loop: Literal["asyncio", "uvloop"] = "asyncio"
    """Event loop of an SFU process: ``asyncio`` (the standard loop, whose UDP sockets
    ``ingest.udp`` drains, control packets first; ``sfu_udp_ports`` needs it) or ``uvloop``
    (libuv reads up to 32 datagrams per readiness in C; compare with ``bench/sfu.py --loop``)."""

    sfu_node_id: str = ""
    """This SFU node's id, unique in the deployment (Redis refuses a second live
    node with the same id); empty = ``<hostname>-<sfu_port>``, stable across restarts."""

    sfu_udp_ports: str = ""
    """UDP port range ``MIN-MAX`` this node's media sockets bind in (one port
    per participant); empty = any ephemeral port."""

    sfu_spool_dir: str = ""
    """This node's spool directory; empty = ``data_dir/spool``."""

    sfu_nodes: int = 0
    """SFU nodes ``spaces up`` starts (ports ``sfu_port``, ``sfu_port + 1``...); 0 = one per CPU."""

    sfu_selector: str = "load"
    """How a new space picks its node among the live ones: ``load`` (fewest
    rooms, counting spaces placed but not yet joined, then participants, then
    CPU), ``cpuload`` (lowest CPU, then rooms) or ``any`` (random)."""

    sfu_heartbeat: float = 2.0
    """Seconds between a node's heartbeats (its load) to Redis."""

    sfu_node_timeout: float = 10.0
    """A node without a heartbeat for this long is dead: no space is placed on it."""

    sfu_node_grace: float = 120.0
    """A dead node that is not back after this many seconds loses its spaces:
    they are finalized, as partial, from the segments already in the blob store."""

    job_timeout: int = 3600
    """Seconds one pipeline job may run before rq kills it."""

    job_retries: int = 3
    """How often a failed or killed job is retried."""

    worker_heartbeat: int = 10
    """Seconds between a worker's heartbeats; a job whose worker died is
    considered abandoned about 60 s after the last one."""

    worker_maintenance: int = 30
    """Seconds between a worker's sweeps for abandoned jobs (which are retried)."""

    live_captions: bool = True
    """A room agent captions every live space (needs ``live`` workers); ``0``: no live captions."""

    live_hls: int = 1
    """1: the room agent also writes the live space as HLS (``spaces/{id}/live/``) for listeners
    past the WebRTC tier and the instant replay; 0: no HLS. Needs ``live_captions`` (the agent)."""

    hls_segment_seconds: float = 2.0
    """Length of the live HLS segments. A joining listener starts three segments behind the
    room: about 7.7 s behind with 2 s segments, 4.7 s with 1 s (``bench/hls.py``), for twice the requests."""

    hls_base_url: str = ""
    """Where players fetch the live HLS of public spaces, e.g. a CDN in front of the bucket
    (``{base}/spaces/{id}/live/master.m3u8``); empty: the API serves it (local store) or
    hands out presigned S3 URLs."""

    live_workers: int = 1
    """Workers of the ``live`` queue that ``spaces up`` starts; each runs one room agent
    (live captions) at a time, so this is how many spaces get live captions at once."""

    live_model: str = ""
    """The Whisper model of live captions (a ``WHISPER_MODEL`` value); empty: ``tiny.en``
    for spaces in English (and ``auto``), the workers' model for other languages.

    Latency first: a pass of ``base`` costs about twice one of ``tiny.en``, which on
    a small CPU puts captions seconds behind the voice (README, live captions).
    The pipeline's transcript, made with ``WHISPER_MODEL``, replaces them after the space.
    """

    live_final_model: str = ""
    """The Whisper model of the live captions' final passes (a ``WHISPER_MODEL`` value): the
    text that stays on screen and in search; empty: the interim passes' (``live_model``).

    ``base`` here cuts the live WER of English spaces by a quarter to a half but
    puts finals 1.05-1.6 s behind an utterance's end (p50, p95 2.7-3.5 s) on a
    loaded 2-core machine, against 0.8-0.95 s (README, live captions).
    """

    live_final_context: float = 0.0
    """Seconds of the room's latest finalized speech a live final pass hears before its utterance
    (the newest finals, cut at a word, no more than fits in the encoder window the utterance
    needs anyway), with the text said before them as its prompt; only the utterance's words
    are kept. 0: each utterance is heard alone.

    Whisper guesses on a short utterance heard alone: with 8 s of the room before it,
    finals on ``base`` make a quarter to a third fewer word errors, but the pass decodes
    the context too, about twice the CPU, and the agent falls behind on a loaded
    2-core machine (README, live captions). With ``tiny.en`` finals it gains nothing.
    """

    live_revise: float = 15.0
    """Seconds of newly finalized speech after which the room agent hears the room's finals again
    (also after a 3 s pause with nobody talking): every speaker's newly finalized speech (up to
    28 s), mixed, transcribed with ``WHISPER_MODEL`` as the pipeline transcribes a room, each
    utterance's words then sent as a *settled* caption that replaces its final on screen, in the
    caption stream and in search. 0: no revision, the finals stay.

    The finals of one utterance heard alone stay at two to three times the pipeline's word
    errors; the settled text is at 0.75-1.30x, for 0.09 CPU-s per second of speech, about 9 s
    (p50) to 16-19 s (max) after an utterance ends (README, live captions, ``bench.live_wer
    --revise`` and ``bench.live_captions``).
    """

    live_job_timeout: int = 12 * 3600
    """Longest a room agent may stay in one space, seconds (and its token's lifetime)."""

    erasure_ttl: int = 30 * 24 * 3600
    """Lifetime of a speaker's erasure link (``POST /spaces/{id}/erasure-link``), seconds."""

    retention_days: PositiveDays = None
    """Spaces older than this many days (a positive number) lose what ``retention_keep``
    does not keep; empty = kept for ever. A host may set a space's own retention."""

    retention_keep: str = ""
    """Comma-separated outputs retention keeps: ``mix`` (replay audio), ``transcript``
    (transcript, captions, search), ``words`` (per-track words, levels, clips),
    ``tracks`` (raw speaker audio); empty = the whole space is deleted."""

    retention_interval: int = 3600
    """Seconds between retention sweeps (a job on the pipeline queue's scheduler)."""

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
        return Path(self.sfu_spool_dir) if self.sfu_spool_dir else self.data_dir / "spool"

    @property
    def node_id(self) -> str:
        return self.sfu_node_id or f"{socket.gethostname()}-{self.sfu_port}"

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
        """Read ``SPACES_*`` (and the conventional un-prefixed) variables; ``ConfigError`` names a bad one."""
        env = dict(os.environ if environ is None else environ)
        try:
            settings = cls(**read(_FIELDS, env))
        except ValidationError as e:
            raise ConfigError(describe(e, _FIELDS, env)) from e
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse settings that cannot be run together; every entry point calls this.

        Each field's own type and range are enforced when the settings are
        made; these are the rules across fields and the formats checked
        where they are parsed.
        """
        if self.env == "production":
            for name, secret in (
                ("SPACES_SECRET_KEY", self.secret_key),
                ("SPACES_OPERATOR_TOKEN", self.operator_token),
            ):
                weakness = secret_weakness(secret) if secret or name == "SPACES_SECRET_KEY" else ""
                if weakness:
                    raise ConfigError(
                        f"{name} {weakness}; production needs at least 32 random bytes' worth. "
                        f"Make one with: {MAKE_SECRET}"
                    )
        elif is_dev_secret(self.secret_key):
            exposed = [
                f"{name} {host!r}"
                for name, host in (("SPACES_API_HOST", self.api_host), ("SPACES_SFU_HOST", self.sfu_host))
                if not is_loopback(host)
            ]
            if exposed:
                raise ConfigError(
                    f"the development SPACES_SECRET_KEY is public and {', '.join(exposed)} is not loopback: "
                    f"anyone could sign tokens. Set a secret made with: {MAKE_SECRET}"
                )
        if self.sfu_node_id and not NODE_ID.match(self.sfu_node_id):
            raise ConfigError(
                f"SPACES_SFU_NODE_ID must be 1-64 letters, digits, '.', '_' or '-', got {self.sfu_node_id!r}"
            )
        if self.live_revise < 0:
            raise ConfigError(f"SPACES_LIVE_REVISE must be 0 (off) or seconds of speech, got {self.live_revise}")
        low, high = OPUS_BITRATES
        if self.sfu_opus_bitrate and not low <= self.sfu_opus_bitrate <= high:
            raise ConfigError(
                f"SPACES_SFU_OPUS_BITRATE must be 0 (the browser's) or {low}-{high} bit/s, got {self.sfu_opus_bitrate}"
            )
        if self.sfu_joins_in_setup < 1:
            raise ConfigError(f"SPACES_SFU_JOINS_IN_SETUP must be at least 1, got {self.sfu_joins_in_setup}")
        try:
            parse_port_range(self.sfu_udp_ports)
        except ValueError as e:
            raise ConfigError(f"SPACES_SFU_UDP_PORTS: {e}") from e
        if not (self.catalog_url.startswith(("sqlite:", "postgresql:", "postgres:"))):
            raise ConfigError(f"DATABASE_URL must be sqlite:// or postgresql://, got {self.catalog_url!r}")
        self.retention_period()
        self.retention_kept()

    def live_model_for(self, language: str) -> str:
        """The model the room agent captions a space in ``language`` (a Whisper code or ``auto``) with."""
        if self.live_model:
            return self.live_model
        return LIVE_MODEL_ENGLISH if language in ("en", AUTO) else self.whisper_model

    def live_final_model_for(self, language: str) -> str:
        """The model of the final passes of live captions in ``language`` (the interim ones: :meth:`live_model_for`)."""
        return self.live_final_model or self.live_model_for(language)

    def retention_period(self) -> float | None:
        """``retention_days`` in seconds, None if unset."""
        return None if self.retention_days is None else self.retention_days * 86400

    def retention_kept(self) -> frozenset[str]:
        """``retention_keep`` as a set; ``ConfigError`` for an unknown kind."""
        kept = frozenset(k.strip() for k in self.retention_keep.split(",") if k.strip())
        unknown = kept - RETENTION_KINDS
        if unknown:
            raise ConfigError(
                f"SPACES_RETENTION_KEEP: unknown {', '.join(sorted(unknown))}; "
                f"choose among {', '.join(sorted(RETENTION_KINDS))}"
            )
        return kept


#: The live captions' default model for English: the fast one that installs with the project.
LIVE_MODEL_ENGLISH = "tiny.en"


def _cpus() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    return len(os.sched_getaffinity(0))


#: ``Settings``' fields as pydantic knows them (type and default).
_FIELDS: dict[str, FieldInfo] = Settings.__pydantic_fields__  # type: ignore[attr-defined]
