"""Catalog on SQLite with FTS5: the embedded default.

WAL mode lets the API read while a worker writes from another process.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spaces.catalog.query import to_fts5
from spaces.catalog.sql import MARK_END, MARK_START, SqlCatalog, turn_rows
from spaces.exceptions import ConfigError
from spaces.models import Turn

SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
    space_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    host TEXT NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,
    visibility TEXT NOT NULL,
    duration REAL NOT NULL DEFAULT 0,
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
    id INTEGER PRIMARY KEY,
    space_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    speaker TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (space_id, seq)
);
CREATE VIRTUAL TABLE IF NOT EXISTS turns_fts USING fts5(
    text, content='turns', content_rowid='id', tokenize='porter unicode61'
);
"""


class SqliteCatalog(SqlCatalog):
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # One connection per thread: sqlite3 connections are not thread-safe
        # and FastAPI runs sync endpoints in a thread pool.
        self._local = threading.local()

    @classmethod
    def from_url(cls, url: str) -> SqliteCatalog:
        prefix = "sqlite:///"
        if not url.startswith(prefix):
            raise ConfigError(f"expected sqlite:///path, got {url!r}")
        return cls(url[len(prefix) :])

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        conn = self._connection()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _sql(self, statement: str) -> str:
        return statement

    def create_schema(self) -> None:
        self._connection().executescript(SCHEMA)

    def _insert_turns(self, cur: Any, space_id: str, turns: Sequence[Turn]) -> None:
        for row in turn_rows(space_id, turns):
            cur.execute(
                "INSERT INTO turns (space_id, seq, speaker, start_s, end_s, text) VALUES (?,?,?,?,?,?)",
                row,
            )
            cur.execute("INSERT INTO turns_fts (rowid, text) VALUES (?, ?)", (cur.lastrowid, row[5]))

    def _delete_turns(self, cur: Any, space_id: str) -> None:
        # External-content FTS5 needs the old text to delete its index entries.
        cur.execute(
            "INSERT INTO turns_fts (turns_fts, rowid, text) "
            "SELECT 'delete', id, text FROM turns WHERE space_id = ?",
            (space_id,),
        )
        cur.execute("DELETE FROM turns WHERE space_id = ?", (space_id,))

    def _search_rows(
        self, cur: Any, terms: list[list[str]], where: str, params: list[Any], limit: int, offset: int
    ) -> list[tuple[Any, ...]]:
        cur.execute(
            "SELECT t.space_id, s.title, t.speaker, t.start_s, t.end_s, "
            f"snippet(turns_fts, 0, '{MARK_START}', '{MARK_END}', '…', 16), "
            "-bm25(turns_fts) AS rank "
            "FROM turns_fts JOIN turns t ON t.id = turns_fts.rowid "
            "JOIN spaces s ON s.space_id = t.space_id "
            f"WHERE turns_fts MATCH ? AND {where} "
            "ORDER BY rank DESC, t.space_id, t.start_s LIMIT ? OFFSET ?",
            [to_fts5(terms), *params, limit, offset],
        )
        return list(cur.fetchall())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
