"""Catalog on PostgreSQL: tsvector + GIN for search, ts_rank for ranking."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from spaces.catalog.query import to_tsquery_args
from spaces.catalog.sql import MARK_END, MARK_START, SqlCatalog, turn_rows
from spaces.exceptions import StorageError
from spaces.models import Turn

SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
    space_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    host TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    visibility TEXT NOT NULL,
    duration DOUBLE PRECISION NOT NULL DEFAULT 0,
    speakers TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    progress TEXT NOT NULL DEFAULT '{}',
    partial INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS spaces_created ON spaces (created_at DESC, space_id DESC);
CREATE TABLE IF NOT EXISTS space_speakers (
    space_id TEXT NOT NULL,
    speaker TEXT NOT NULL,
    PRIMARY KEY (space_id, speaker)
);
CREATE TABLE IF NOT EXISTS turns (
    id BIGSERIAL PRIMARY KEY,
    space_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    speaker TEXT NOT NULL,
    start_s DOUBLE PRECISION NOT NULL,
    end_s DOUBLE PRECISION NOT NULL,
    text TEXT NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    UNIQUE (space_id, seq)
);
CREATE INDEX IF NOT EXISTS turns_tsv ON turns USING GIN (tsv);
"""

_HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=20, MinWords=8, MaxFragments=1"


class PostgresCatalog(SqlCatalog):
    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        self.pool = ConnectionPool(url, min_size=1, max_size=max_size, open=True)

    @classmethod
    def from_url(cls, url: str) -> PostgresCatalog:
        return cls(url)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        try:
            with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.OperationalError as e:
            raise StorageError(f"catalog unreachable: {e}") from e

    def _sql(self, statement: str) -> str:
        return statement.replace("%", "%%").replace("?", "%s")

    def create_schema(self) -> None:
        with self._transaction() as cur:
            # Serialize concurrent start-ups (API, SFU, workers) creating tables.
            cur.execute("SELECT pg_advisory_xact_lock(727274)")
            cur.execute(SCHEMA)

    def _insert_turns(self, cur: Any, space_id: str, turns: Sequence[Turn]) -> None:
        cur.executemany(
            "INSERT INTO turns (space_id, seq, speaker, start_s, end_s, text) VALUES (%s,%s,%s,%s,%s,%s)",
            list(turn_rows(space_id, turns)),
        )

    def _delete_turns(self, cur: Any, space_id: str) -> None:
        cur.execute("DELETE FROM turns WHERE space_id = %s", (space_id,))

    def _search_rows(
        self, cur: Any, terms: list[list[str]], where: str, params: list[Any], limit: int, offset: int
    ) -> list[tuple[Any, ...]]:
        phrases = to_tsquery_args(terms)
        query = " && ".join(["phraseto_tsquery('english', %s)"] * len(phrases))
        cur.execute(
            f"WITH q AS (SELECT {query} AS q) "
            "SELECT t.space_id, s.title, t.speaker, t.start_s, t.end_s, "
            "ts_headline('english', t.text, q.q, %s), ts_rank(t.tsv, q.q) AS rank "
            "FROM q, turns t JOIN spaces s ON s.space_id = t.space_id "
            f"WHERE t.tsv @@ q.q AND {self._sql(where)} "
            "ORDER BY rank DESC, t.space_id, t.start_s LIMIT %s OFFSET %s",
            [*phrases, _HEADLINE, *params, limit, offset],
        )
        return list(cur.fetchall())

    def close(self) -> None:
        self.pool.close()
