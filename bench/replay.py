"""Replay and search under load, through the HTTP API, on SQLite and on PostgreSQL.

Generates a catalog (default: 10,000 spaces, 1,000,000 turns of Zipf-distributed
words), loads it with ``Catalog.bulk_insert``, starts the API in uvicorn on a
loopback port per backend, and measures:

* search latency (p50/p99) of two-word queries through ``GET /search``,
* the same queries as a plain ``LIKE '%word%'`` scan of the same table (baseline),
* replay audio Range requests from 50 concurrent keep-alive clients.

Usage::

    .venv/bin/python -m bench.replay                      # the full run (a few minutes)
    .venv/bin/python -m bench.replay --turns 100000       # scaled down
    .venv/bin/python -m bench.replay --backends sqlite
    .venv/bin/python -m bench.replay --languages en,fr,de,es   # a space in four, classes per language

PostgreSQL: ``--pg-url`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
the bench works in a schema of its own and drops it at the end.

``--keep DIR`` keeps both catalogs instead (SQLite in ``DIR/catalog.db``,
PostgreSQL in the schema ``bench_kept``) and reuses them on the next run with
the same corpus size: loading a million turns takes minutes, a search
change is measured again in seconds (``create_schema`` still runs, so a new
index is built on the kept tables).

``--exact-hits FILE`` compares each query's first ten hits with those of the
exact ranking (every matching turn ranked, not only the newest
``MAX_CANDIDATES``), computed in this process and kept in ``FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg

from bench.common import cpu_times, ffmpeg, percentile, table
from bench.serving import ROLES, Serving, unpin
from spaces import keys
from spaces.blobstore.local import LocalBlobStore
from spaces.catalog import Catalog, TurnRow, sql_search
from spaces.catalog import postgres as postgres_catalog
from spaces.catalog import sqlite as sqlite_catalog
from spaces.catalog.postgres import PostgresCatalog
from spaces.catalog.query import STOP_WORDS
from spaces.catalog.sqlite import SqliteCatalog
from spaces.models import Space, SpaceState, Visibility

ROOT = Path(__file__).resolve().parents[1]
AUDIO_SPACE = "bench-audio"
RANGE_BYTES = 64 * 1024

# --- the corpus ---------------------------------------------------------------


@dataclass
class Corpus:
    spaces: list[Space]
    turns: list[TurnRow]
    content: dict[str, list[str]]
    """Per language, its content words, most frequent first (Zipf rank order)."""

    @property
    def tag(self) -> str:
        """What names its kept catalogs apart from other corpora's ("" for English alone, as before)."""
        return "" if list(self.content) == ["en"] else "_" + "_".join(self.content)


def _pseudo_words(n: int, rng: random.Random) -> list[str]:
    """Pronounceable, distinct, non-stop words (consonant-vowel syllables)."""
    onsets = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
              "br", "cl", "dr", "gr", "pl", "st", "tr", "sh", "ch", "th"]  # fmt: skip
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ee"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st"]
    words: set[str] = set()
    while len(words) < n:
        syllables = rng.choice((1, 2, 2, 3, 3, 4))
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables)) + rng.choice(codas)
        if word not in STOP_WORDS:
            words.add(word)
    return sorted(words)


#: The function words of each language a corpus can be held in besides English
#: (the most frequent of PostgreSQL's stop words for it): four tokens in ten.
FUNCTION_WORDS = {
    "fr": "le la les de des du un une et est en que qui dans pour pas sur ce il elle je vous nous on au avec "
    "mais ou son sa ses ne se plus par tout".split(),
    "de": "der die das und ist nicht ich du er sie es wir ihr ein eine zu den dem mit auf für von sich auch "
    "aber als wie noch nur so an".split(),
    "es": "el la los las de del un una y es que en por para con no se lo le su al como pero mas sus ya o este "
    "si porque esta entre".split(),
}


def generate(n_spaces: int, n_turns: int, *, seed: int = 7, languages: tuple[str, ...] = ("en",)) -> Corpus:
    """Spaces over two years; turns of 4-28 words drawn from a Zipf vocabulary.

    About four tokens in ten are stop words, as in speech; the rest come from
    30,000 content words whose frequencies follow Zipf's law. Spaces take
    ``languages`` in turn, each language with its own stop and content words
    (English only: the corpus of earlier runs, word for word).
    """
    rng = random.Random(seed)
    content = _pseudo_words(30_000, rng)
    rng.shuffle(content)
    stops = sorted(STOP_WORDS)
    words = {lang: _language_words(lang, stops, content, rng) for lang in languages}
    weights = np.concatenate(
        [
            np.full(len(stops), 0.4 / len(stops)),
            0.6 * (1 / np.arange(1, len(content) + 1)) / sum(1 / np.arange(1, len(content) + 1)),
        ]
    )
    nprng = np.random.default_rng(seed)
    lengths = nprng.integers(4, 29, size=n_turns)
    tokens = nprng.choice(len(stops) + len(content), size=int(lengths.sum()), p=weights / weights.sum())
    people = [f"user{i:04d}" for i in range(2000)]
    spaces: list[Space] = []
    per_space = max(1, n_turns // n_spaces)
    turns: list[TurnRow] = []
    cursor = 0
    start_epoch = 1_650_000_000.0
    for s in range(n_spaces):
        speakers = tuple(rng.sample(people, rng.randint(2, 5)))
        space_id = f"s{s:06d}"
        language = languages[s % len(languages)]
        first, last = s * per_space, (n_turns if s == n_spaces - 1 else (s + 1) * per_space)
        clock = rng.uniform(0, 5)
        for seq, t in enumerate(range(first, last)):
            n = int(lengths[t])
            text = " ".join(words[language][i] for i in tokens[cursor : cursor + n])
            cursor += n
            length = n * 0.35
            speaker = speakers[seq % len(speakers)]
            turns.append(
                TurnRow(space_id, seq, speaker, clock, clock + length, text, "" if language == "en" else language)
            )
            clock += length + rng.uniform(0.2, 2.0)
        spaces.append(
            Space(
                space_id=space_id,
                title=f"Space {s} about {words[language][len(stops) + rng.randrange(2000)]}",
                host=speakers[0],
                created_at=start_epoch + s * (63_000_000 / n_spaces),
                state=SpaceState.READY if rng.random() < 0.98 else SpaceState.PROCESSING,
                visibility=Visibility.PRIVATE if rng.random() < 0.05 else Visibility.PUBLIC,
                duration=clock,
                speakers=speakers,
                language=language,
            )
        )
    return Corpus(spaces, turns, {lang: w[len(stops) :] for lang, w in words.items()})


def _language_words(language: str, stops: list[str], content: list[str], rng: random.Random) -> list[str]:
    """A language's vocabulary, indexed as English's: its stop words where English has its own, then content."""
    if language == "en":
        return stops + content
    own = FUNCTION_WORDS[language]
    other = _pseudo_words(len(content), rng)
    rng.shuffle(other)
    return [own[i % len(own)] for i in range(len(stops))] + other


#: Content words this frequent (by rank) are the "frequent" query class: each of
#: the top ten is in 15-55 % of all turns, like "yeah" or "know" in speech.
FREQUENT_RANKS = 100


@dataclass(frozen=True)
class Query:
    q: str
    speaker: str | None = None
    space: str | None = None

    def params(self) -> dict[str, str]:
        extra = {"speaker": self.speaker, "space": self.space}
        return {"q": self.q, **{k: v for k, v in extra.items() if v}}


def two_word_queries(corpus: Corpus, n: int, *, seed: int = 11) -> dict[str, list[Query]]:
    """Query classes of two words each, per language (named ``frequent fr``; English alone: ``frequent``).

    ``typical``: two words said together in a random turn, leaving out the
    100 most frequent content words (people search for what is particular
    to a moment, not for "yeah know"). ``frequent``: two of those 100.
    ``frequent+speaker`` and ``frequent+space``: the same, only one
    speaker's turns (a name as typed, capitalised) or one space's.
    """
    rng = random.Random(seed)
    classes: dict[str, list[Query]] = {}
    for language, content in corpus.content.items():
        if len(corpus.content) == 1:
            classes.update(_language_queries(corpus.turns, corpus.spaces, content, n, rng))
            continue
        turns = [t for t in corpus.turns if (t.language or "en") == language]
        spaces = [s for s in corpus.spaces if s.language == language]
        for kind, batch in _language_queries(turns, spaces, content, n, rng).items():
            classes[f"{kind} {language}"] = batch
    return classes


def _language_queries(
    turns: list[TurnRow], spaces: list[Space], content: list[str], n: int, rng: random.Random
) -> dict[str, list[Query]]:
    frequent = set(content[:FREQUENT_RANKS])
    stops = STOP_WORDS.union(*FUNCTION_WORDS.values())
    typical: list[str] = []
    while len(typical) < n:
        words = sorted({w for w in rng.choice(turns).text.split() if w not in stops and w not in frequent})
        if len(words) >= 2:
            typical.append(" ".join(rng.sample(words, 2)))
    common = [" ".join(rng.sample(content[:FREQUENT_RANKS], 2)) for _ in range(max(20, n // 5))]
    speakers = sorted({t.speaker for t in turns})
    return {
        "typical": [Query(q) for q in typical],
        "frequent": [Query(q) for q in common],
        "frequent+speaker": [Query(q, speaker=rng.choice(speakers).capitalize()) for q in common],
        "frequent+space": [Query(q, space=rng.choice(spaces).space_id) for q in common],
    }


# --- backends -------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    url: str
    catalog: Catalog
    cleanup: list[Any] = field(default_factory=list)


#: The PostgreSQL schema ``--keep`` keeps between runs.
KEPT_SCHEMA = "bench_kept"


@contextmanager
def backends(
    names: list[str], work: Path, pg_url: str, *, kept: bool = False, tag: str = ""
) -> Iterator[list[Backend]]:
    """The catalogs, in ``work``; dropped at the end unless ``kept`` (under names ending in ``tag``)."""
    made: list[Backend] = []
    schema = KEPT_SCHEMA + tag if kept else f"bench_{uuid.uuid4().hex[:10]}"
    try:
        for name in names:
            if name == "sqlite":
                path = work / f"catalog{tag}.db"
                made.append(Backend("sqlite", f"sqlite:///{path}", SqliteCatalog(path)))
            else:
                with psycopg.connect(pg_url, autocommit=True) as conn:
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                url = f"{pg_url}?options=-csearch_path%3D{schema}"
                made.append(Backend("postgres", url, PostgresCatalog(url)))
        yield made
    finally:
        for b in made:
            b.catalog.close()
        if "postgres" in names and not kept:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def load(backend: Backend, corpus: Corpus, work: Path) -> float | None:
    """Seconds to load the corpus; None if ``work`` holds it from an earlier run (kept)."""
    started = time.perf_counter()
    backend.catalog.create_schema()
    marker = work / f"{backend.name}{corpus.tag}.loaded"
    size = f"{len(corpus.spaces)} {len(corpus.turns)}"
    if marker.exists() and marker.read_text() == size:
        return None
    backend.catalog.bulk_insert(corpus.spaces, corpus.turns)
    marker.write_text(size)
    audio_space = Space(AUDIO_SPACE, "Range bench", "bench", 2_000_000_000.0, state=SpaceState.READY, duration=600)
    backend.catalog.put_space(audio_space)
    return time.perf_counter() - started


def make_audio(blobs: LocalBlobStore, work: Path, seconds: int) -> int:
    """A replay of ``seconds`` of tone, Opus 48 kb/s like the mixer writes."""
    path = work / "replay.ogg"
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}",
        "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "48k", str(path),
    )  # fmt: skip
    blobs.put_file(keys.replay(AUDIO_SPACE, "ogg"), path)
    return path.stat().st_size


@contextmanager
def api_server(backend: Backend, data_dir: Path, workers: int = 1) -> Iterator[tuple[str, int]]:
    """uvicorn with the app factory in a child process, on a free loopback port: its URL and process id."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The bench is one client address on purpose: lift the per-client search limit.
    env = dict(
        os.environ,
        SPACES_DATA_DIR=str(data_dir),
        DATABASE_URL=backend.url,
        SPACES_ENV="development",
        SPACES_SEARCH_RATE_LIMIT="0",
    )
    env.pop("S3_BUCKET", None)
    env.pop("SPACES_S3_BUCKET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "replay_api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)],
        cwd=ROOT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/spaces?limit=1", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# --- measurements ----------------------------------------------------------------


@dataclass
class Latency:
    samples_ms: list[float]
    errors: int = 0
    hits: float = 0.0
    top: list[list[str]] = field(default_factory=list)
    """Per query, its first ``OVERLAP_AT`` hits (space and start), for ranking comparisons."""
    waits: dict[str, str] = field(default_factory=dict)
    """Per process a query goes through (``serving.ROLES``), what it ran / waited for a CPU, ms per query."""

    def ran(self, roles: tuple[str, ...] = ROLES) -> list[str]:
        """The ``waits`` columns ("-" for a process the run has not: PostgreSQL on SQLite)."""
        return [self.waits.get(role, "-") for role in roles]

    def row(self) -> list[str]:
        s = self.samples_ms
        return [
            str(len(s)),
            f"{percentile(s, 50):.1f}",
            f"{percentile(s, 99):.1f}",
            f"{max(s):.1f}",
            f"{self.hits:.1f}",
            str(self.errors),
        ]


#: The processes a search in process goes through.
ALONE = ("client", "PostgreSQL")


def _ran(roles: tuple[str, ...]) -> list[str]:
    return [f"{role} ran/waited ms/q" for role in roles]


#: Ranking is compared on each query's first this many hits.
OVERLAP_AT = 10


def _top(hits: list[dict[str, Any]]) -> list[str]:
    return [f"{h['space_id']}@{float(h['start']):.2f}" for h in hits[:OVERLAP_AT]]


def bench_search(url: str, queries: list[Query], serving: Serving, *, pinned: bool = False) -> Latency:
    """The queries through ``GET /search``, one after the other; with their processes' running and waiting."""
    samples: list[float] = []
    errors = 0
    hits = 0
    top: list[list[str]] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for q in queries[:20]:  # warm the caches and the connection pool
            client.get("/search", params=q.params())
        if pinned:
            serving.pin()
        waits = serving.waits()
        for q in queries:
            started = time.perf_counter()
            response = client.get("/search", params={**q.params(), "limit": 20})
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                errors += 1
                top.append([])
            else:
                found = response.json()["hits"]
                hits += len(found)
                top.append(_top(found))
    return Latency(samples, errors, hits / len(queries), top, waits.columns(len(queries)))


def bench_in_process(backend: Backend, queries: list[Query], *, pinned: bool = False) -> tuple[Latency, float]:
    """The same queries through ``Catalog.search`` in this process: the search alone, without HTTP.

    Also the CPU each query costs, in milliseconds: this process's and, for
    PostgreSQL on this machine, its server process's (one connection). Unlike
    latency, it hardly grows when other work shares the cores.
    """
    catalog: Catalog = backend.catalog
    server: int | None = None
    if backend.name == "postgres":
        catalog = PostgresCatalog(backend.url, max_size=1)
        with catalog.pool.connection() as conn:
            server = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
    try:
        for q in queries[:20]:
            catalog.search(q.q, limit=20, speaker=q.speaker, space_id=q.space)
        serving = Serving(None, None, server)
        if pinned:
            serving.pin()
        waits = serving.waits()
        samples: list[float] = []
        cpu = time.process_time() + _server_cpu(server)
        for q in queries:
            started = time.perf_counter()
            catalog.search(q.q, limit=20, speaker=q.speaker, space_id=q.space)
            samples.append((time.perf_counter() - started) * 1000)
        cpu = time.process_time() + _server_cpu(server) - cpu
        alone = Latency(samples, waits=waits.columns(len(queries)))
    finally:
        if catalog is not backend.catalog:
            catalog.close()
    return alone, cpu * 1000 / len(queries)


def _server_cpu(pid: int | None) -> float:
    """CPU seconds of a local PostgreSQL server process (0 for none, or one not on this machine)."""
    if pid is None:
        return 0.0
    try:
        return sum(cpu_times(pid))
    except OSError:
        return 0.0


def overlap(saved: list[list[str]], now: list[list[str]]) -> float:
    """Mean share of each query's saved first hits found again among its first hits now (1.0: the same set)."""
    shares = [len(set(a) & set(b)) / len(a) for a, b in zip(saved, now, strict=True) if a]
    return sum(shares) / len(shares) if shares else 1.0


def bench_like(backend: Backend, queries: list[Query]) -> Latency:
    """The baseline: every turn's text scanned for both words, newest spaces first."""
    like = "LIKE" if backend.name == "sqlite" else "ILIKE"
    sql = (
        "SELECT t.space_id, t.start_s FROM turns t JOIN spaces s ON s.space_id = t.space_id "
        f"WHERE s.state = 'ready' AND s.visibility = 'public' AND t.text {like} ? AND t.text {like} ? "
        "ORDER BY s.created_at DESC, t.start_s LIMIT 20"
    )
    catalog: Any = backend.catalog
    samples: list[float] = []
    hits = 0
    for q in queries:
        a, b = q.q.split()
        started = time.perf_counter()
        rows = catalog._execute(sql, (f"%{a}%", f"%{b}%"))
        samples.append((time.perf_counter() - started) * 1000)
        hits += len(rows)
    return Latency(samples, 0, hits / len(queries))


async def _range_client(
    host: str, port: int, path: str, size: int, until: float, out: list[float], errors: list[str]
) -> None:
    """One keep-alive HTTP/1.1 connection asking for random 64 KiB ranges (a minimal client, cheap on CPU)."""
    rng = random.Random()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            start = rng.randrange(0, max(1, size - RANGE_BYTES))
            end = min(size - 1, start + RANGE_BYTES - 1)
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nRange: bytes={start}-{end}\r\n\r\n"
            began = time.perf_counter()
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            out.append((time.perf_counter() - began) * 1000)
            if status != 206 or len(body) != end - start + 1:
                errors.append(f"{status} {len(body)}")
    except (OSError, asyncio.IncompleteReadError) as e:
        errors.append(repr(e))
    finally:
        writer.close()


async def _range_load(url: str, size: int, clients: int, seconds: float) -> tuple[list[float], list[str], float]:
    parsed = httpx.URL(url)
    out: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    until = started + seconds
    path = f"/spaces/{AUDIO_SPACE}/audio"
    await asyncio.gather(
        *(_range_client(parsed.host, parsed.port or 80, path, size, until, out, errors) for _ in range(clients))
    )
    return out, errors, time.perf_counter() - started


def bench_ranges(url: str, size: int, clients: int, seconds: float) -> tuple[Latency, float]:
    samples, errors, elapsed = asyncio.run(_range_load(url, size, clients, seconds))
    return Latency(samples, len(errors)), len(samples) / elapsed


@contextmanager
def unbounded_candidates() -> Iterator[None]:
    """Search ranks every turn a query matches, not only the newest ``MAX_CANDIDATES``: the exact ranking."""
    modules = (sql_search, sqlite_catalog, postgres_catalog)
    bounds = [m.MAX_CANDIDATES for m in modules]
    for m in modules:
        m.MAX_CANDIDATES = 10**9
    try:
        yield
    finally:
        for m, bound in zip(modules, bounds, strict=True):
            m.MAX_CANDIDATES = bound


def exact_tops(backend: Backend, queries: dict[str, list[Query]]) -> dict[str, list[list[str]]]:
    """Each query's first hits as ``bench_search`` records them, ranked exactly, in this process."""
    tops: dict[str, list[list[str]]] = {}
    with unbounded_candidates():
        for kind, batch in queries.items():
            found = [backend.catalog.search(q.q, limit=20, speaker=q.speaker, space_id=q.space) for q in batch]
            # As the API rounds them (``SearchHitOut``).
            tops[f"{backend.name} {kind}"] = [
                _top([{"space_id": h.space_id, "start": round(h.start, 3)} for h in hits]) for hits in found
            ]
    return tops


def ranking(path: Path, tops: dict[str, list[list[str]]]) -> str:
    """Saves the hits to ``path`` if it does not exist; else a table of how they compare with the saved ones."""
    if not path.exists():
        path.write_text(json.dumps(tops))
        return f"hits saved in {path}: the next run with --hits {path} compares its ranking with them"
    saved: dict[str, list[list[str]]] = json.loads(path.read_text())
    rows = []
    for key, now in tops.items():
        if key in saved:
            same = sum(a == b for a, b in zip(saved[key], now, strict=True)) / len(now)
            rows.append([*key.split(" ", 1), f"{overlap(saved[key], now):.3f}", f"{same:.3f}"])
    columns = ["backend", "queries", f"overlap@{OVERLAP_AT}", "same order"]
    return table(f"Ranking: each query's first {OVERLAP_AT} hits against those saved in {path}", columns, rows)


# --- the run ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500, help="typical search queries per backend")
    parser.add_argument("--like-queries", type=int, default=10, help="baseline LIKE scans per backend")
    parser.add_argument("--clients", type=int, default=50, help="concurrent Range clients")
    parser.add_argument("--range-seconds", type=float, default=10.0)
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--languages",
        default="en",
        help="the languages spaces are held in, in turn (e.g. en,fr,de,es); query classes per language",
    )
    parser.add_argument("--keep", type=Path, help="keep the catalogs in this directory and reuse them")
    parser.add_argument(
        "--hits",
        type=Path,
        help="JSON of each query's first 10 hits: written if absent, else the ranking now is compared with it",
    )
    parser.add_argument(
        "--exact-hits",
        type=Path,
        help="JSON of each query's first 10 hits ranked with no bound on candidates (computed in process and "
        "written if absent, minutes at a million turns), then used as --hits",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="PostgreSQL's backends on the first CPU, the bench's client and the API on the last; off by default: "
        "measured slower than the scheduler's own placement (README)",
    )
    parser.add_argument(
        "--pg-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    if args.exact_hits:
        args.hits = args.exact_hits
    exact: dict[str, list[list[str]]] = {}
    names = [n.strip() for n in args.backends.split(",") if n.strip()]

    t0 = time.perf_counter()
    languages = tuple(args.languages.split(","))
    if unknown := sorted(set(languages) - {"en", *FUNCTION_WORDS}):
        parser.error(f"--languages: no corpus words for {', '.join(unknown)} (known: en, {', '.join(FUNCTION_WORDS)})")
    corpus = generate(args.spaces, args.turns, languages=languages)
    n_tokens = sum(len(t.text.split()) for t in corpus.turns[:10_000]) / min(10_000, len(corpus.turns))
    print(f"generated {len(corpus.spaces):,} spaces, {len(corpus.turns):,} turns "
          f"(~{n_tokens:.0f} words each) in {time.perf_counter() - t0:.1f}s", flush=True)  # fmt: skip
    queries = two_word_queries(corpus, args.queries)

    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    loads: list[list[str]] = []
    search: list[list[str]] = []
    likes: list[list[str]] = []
    ranges: list[list[str]] = []
    inproc: list[list[str]] = []
    tops: dict[str, list[list[str]]] = {}
    try:
        blobs = LocalBlobStore(work / "blobs")
        size = make_audio(blobs, work, 600)
        with backends(names, args.keep or work, args.pg_url, kept=bool(args.keep), tag=corpus.tag) as made:
            for backend in made:
                seconds = load(backend, corpus, args.keep or work)
                took = "kept" if seconds is None else f"{seconds:.1f}"
                loads.append([backend.name, f"{len(corpus.spaces):,}", f"{len(corpus.turns):,}", took])
                print(f"{backend.name}: load {took}" + ("" if seconds is None else " s"), flush=True)
                typical = [q for kind, batch in queries.items() if kind.startswith("typical") for q in batch]
                like = bench_like(backend, typical[: args.like_queries])
                likes.append([backend.name, *like.row()])
                print(f"{backend.name}: LIKE baseline p50 {percentile(like.samples_ms, 50):.0f} ms", flush=True)
                if args.exact_hits and not args.exact_hits.exists():
                    exact.update(exact_tops(backend, queries))
                with api_server(backend, work, args.api_workers) as (url, api):
                    serving = Serving(api, backend.url if backend.name == "postgres" else None)
                    for kind, batch in queries.items():
                        result = bench_search(url, batch, serving, pinned=args.pin)
                        search.append([backend.name, kind, *result.row(), *result.ran()])
                        tops[f"{backend.name} {kind}"] = result.top
                        alone, cpu = bench_in_process(backend, batch, pinned=args.pin)
                        inproc.append([backend.name, kind, *alone.row()[:4], f"{cpu:.1f}", *alone.ran(ALONE)])
                        unpin()
                        p99 = percentile(result.samples_ms, 99)
                        print(f"{backend.name}: {kind} search p99 {p99:.1f} ms", flush=True)
                    latency, rate = bench_ranges(url, size, args.clients, args.range_seconds)
                    ranges.append(
                        [
                            backend.name,
                            str(args.clients),
                            f"{rate:.0f}",
                            *latency.row()[1:4],
                            str(latency.errors),
                        ]
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if exact:
        args.exact_hits.write_text(json.dumps(exact))

    print()
    print(table("Catalog (bulk_insert)", ["backend", "spaces", "turns", "load s"], loads))
    columns = ["backend", "queries", "n", "p50 ms", "p99 ms", "max ms", "hits/q", "errors", *_ran(ROLES)]
    pinned = ", --pin" if args.pin else ""
    print(table(f"Search through GET /search, two-word queries (sequential, limit 20{pinned})", columns, search))
    columns = ["backend", "queries", "n", "p50 ms", "p99 ms", "max ms", "CPU ms/query", *_ran(ALONE)]
    print(table(f"The same queries through Catalog.search in the bench process (no HTTP{pinned})", columns, inproc))
    if args.hits:
        print(ranking(args.hits, tops))
    print(table("Baseline: LIKE '%w1%' AND LIKE '%w2%' scan of the same turns (SQL, no HTTP)",
                ["backend", "queries", "p50 ms", "p99 ms", "max ms", "hits/q", "errors"], likes))  # fmt: skip
    print(table(f"Replay audio: random 64 KiB Range requests, {args.range_seconds:.0f} s, keep-alive clients",
                ["backend", "clients", "req/s", "p50 ms", "p99 ms", "max ms", "errors"], ranges))  # fmt: skip
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"API: uvicorn, {args.api_workers} worker process(es); total {time.perf_counter() - t0:.0f}s; "
          f"machine load average {load_avg} on {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
