"""Catalog on SQLite with FTS5: the embedded default.

WAL mode lets the API read while a worker writes from another process.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spaces.catalog import TurnRow
from spaces.catalog.highlight import snippet
from spaces.catalog.query import Term
from spaces.catalog.sql import MARK_END, MARK_START, MAX_CANDIDATES, SHARED_TABLES, SqlCatalog, turn_rows
from spaces.exceptions import ConfigError, StorageError
from spaces.languages import fold, stems
from spaces.models import Turn

SCHEMA = (
    """
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
    partial INTEGER NOT NULL DEFAULT 0,
    run INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0,
    node TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'auto',
    languages TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS spaces_created ON spaces (created_at DESC, space_id DESC);
"""
    + SHARED_TABLES
    + """CREATE TABLE IF NOT EXISTS space_erasures (
    space_id TEXT NOT NULL,
    speaker TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_at REAL NOT NULL,
    PRIMARY KEY (space_id, speaker)
);
CREATE TABLE IF NOT EXISTS space_retention (
    space_id TEXT PRIMARY KEY,
    days REAL NOT NULL,
    keep TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    space_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    speaker TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    text TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 0,
    language TEXT NOT NULL DEFAULT '',
    stems TEXT NOT NULL DEFAULT '',
    UNIQUE (space_id, seq)
);
CREATE TABLE IF NOT EXISTS turn_languages (language TEXT PRIMARY KEY);
CREATE VIRTUAL TABLE IF NOT EXISTS turns_stems USING fts5(
    stems, content='turns', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
"""
)

#: FTS5 stems English only (``porter``), so each turn's words are stemmed in
#: its own language by Snowball in Python and indexed as ``stems`` (folded:
#: ``écoute`` and ``ecoute`` are one term); queries are stemmed the same way,
#: once per language turns are in. What SQLite cannot do that PostgreSQL
#: does: drop each language's stop words, and compute stems in the database
#: (a catalog's stems are what the Python that wrote them made: reindex with
#: ``spaces reprocess`` after a stemmer upgrade).


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
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except BaseException:
                conn.close()  # not a database, or cannot be opened: no half-made connection kept
                raise
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            # SQLite's own LOWER() folds ASCII only; PostgreSQL's folds every
            # letter. Python's makes "Élise" match "élise" in both.
            conn.create_function("lower", 1, _lower, deterministic=True)
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with _storage_errors():
            conn = self._connection()
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Cursor]:
        # A deferred transaction: readers never take the write lock, so API
        # reads neither queue behind each other nor behind a worker's write.
        with _storage_errors():
            conn = self._connection()
            cur = conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                cur.execute("COMMIT")

    def _sql(self, statement: str) -> str:
        return statement

    #: The stemmed words FTS5 indexes (see above).
    _turn_columns = {"stems": "TEXT NOT NULL DEFAULT ''"}

    def create_schema(self) -> None:
        with _storage_errors():
            self._connection().executescript(SCHEMA)
        with self._transaction() as cur:
            had_stems = "stems" in self._column_names(cur, "turns")
            self._add_columns(cur)
            if not had_stems:
                self._stem_older_turns(cur)

    def _stem_older_turns(self, cur: Any) -> None:
        """A catalog from before per-language stems: stem and index its turns once, so search still finds them."""
        cur.execute("SELECT id, text, language FROM turns")
        for turn_id, text, language in cur.fetchall():
            stemmed = stems(text, language or "en")
            cur.execute("UPDATE turns SET stems = ? WHERE id = ?", (stemmed, turn_id))
            cur.execute("INSERT INTO turns_stems (rowid, stems) VALUES (?, ?)", (turn_id, stemmed))

    def _column_names(self, cur: Any, table: str = "spaces") -> set[str]:
        cur.execute(f"PRAGMA table_info({table})")
        return {str(row[1]) for row in cur.fetchall()}

    def _insert_turns(
        self, cur: Any, space_id: str, turns: Sequence[Turn], *, live: bool = False, first_seq: int = 0
    ) -> None:
        for row in turn_rows(space_id, turns, first_seq):
            stemmed = stems(row.text, row.language)
            cur.execute(
                "INSERT INTO turns (space_id, seq, speaker, start_s, end_s, text, language, stems, live) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (*row, stemmed, int(live)),
            )
            cur.execute("INSERT INTO turns_stems (rowid, stems) VALUES (?, ?)", (cur.lastrowid, stemmed))

    def _bulk_turns(self, cur: Any, turns: Iterable[TurnRow]) -> None:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM turns")
        (last,) = cur.fetchone()
        cur.executemany(
            "INSERT INTO turns (space_id, seq, speaker, start_s, end_s, text, language, stems) "
            "VALUES (?,?,?,?,?,?,?,?)",
            ((*row, stems(row.text, row.language)) for row in turns),
        )
        # New rowids are above the old maximum; indexing them in one statement
        # is several times faster than one FTS insert per row.
        cur.execute("INSERT INTO turns_stems (rowid, stems) SELECT id, stems FROM turns WHERE id > ?", (last,))

    def _groups(self, terms: list[Term], languages: Sequence[str]) -> list[tuple[str, list[str]]]:
        """(MATCH expression, languages it is for): the query stemmed in each language turns are in."""
        groups: dict[str, list[str]] = {}
        for lang in languages or [""]:
            match = _match(terms, lang)
            if match:
                groups.setdefault(match, []).append(lang)
        return list(groups.items())

    def _match_clause(self, terms: list[Term], languages: Sequence[str]) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        for match, langs in self._groups(terms, languages):
            parts.append(
                f"(t.language IN ({','.join('?' * len(langs))})"
                " AND t.id IN (SELECT rowid FROM turns_stems WHERE turns_stems MATCH ?))"
            )
            params.extend([*langs, match])
        return "(" + (" OR ".join(parts) or "0") + ")", params

    def _delete_turns(self, cur: Any, space_id: str) -> None:
        # External-content FTS5 needs the old text to delete its index entries.
        cur.execute(
            "INSERT INTO turns_stems (turns_stems, rowid, stems) "
            "SELECT 'delete', id, stems FROM turns WHERE space_id = ?",
            (space_id,),
        )
        cur.execute("DELETE FROM turns WHERE space_id = ?", (space_id,))

    def _search_rows(
        self, cur: Any, terms: list[Term], where: str, params: list[Any], limit: int, offset: int
    ) -> list[tuple[Any, ...]]:
        groups = self._groups(terms, self._turn_languages(cur))
        if not groups:
            return []
        # Per language the query is stemmed for: the newest matching turns
        # (FTS5 walks its index backwards and stops), then the BM25 ranking
        # of them all, then snippets for the page only.
        selects: list[str] = []
        args: list[Any] = []
        for match, langs in groups:
            selects.append(
                "SELECT * FROM (SELECT turns_stems.rowid AS id, bm25(turns_stems) AS score"
                " FROM turns_stems JOIN turns t ON t.id = turns_stems.rowid"
                " JOIN spaces s ON s.space_id = t.space_id"
                f" WHERE turns_stems MATCH ? AND t.language IN ({','.join('?' * len(langs))}) AND {where}"
                f" ORDER BY turns_stems.rowid DESC LIMIT {MAX_CANDIDATES})"
            )
            args.extend([match, *langs, *params])
        cur.execute(
            f"WITH candidates AS ({' UNION ALL '.join(selects)}), "
            "top AS ("
            " SELECT c.id, c.score, t.space_id, t.start_s FROM candidates c JOIN turns t ON t.id = c.id"
            " ORDER BY c.score, t.space_id, t.start_s LIMIT ? OFFSET ?) "
            "SELECT t.space_id, s.title, t.speaker, t.start_s, t.end_s, t.text, -top.score, s.state, t.language "
            "FROM top JOIN turns t ON t.id = top.id JOIN spaces s ON s.space_id = t.space_id "
            "ORDER BY top.score, top.space_id, top.start_s",
            [*args, limit, offset],
        )
        return [(*r[:5], snippet(r[5], r[8], terms, start=MARK_START, end=MARK_END), *r[6:]) for r in cur.fetchall()]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


@contextmanager
def _storage_errors() -> Iterator[None]:
    """SQLite's failures as the catalog's ``StorageError``, as PostgreSQL's are.

    Operational errors (locked past the busy timeout, cannot open, disk
    full or failing) may pass; a file that is not a database or is corrupt
    will not. Other ``sqlite3`` errors are our bugs and stay as they are.
    """
    try:
        yield
    except sqlite3.OperationalError as e:
        raise StorageError(f"catalog unavailable: {e}") from e
    except sqlite3.DatabaseError as e:
        if type(e) is not sqlite3.DatabaseError:
            raise
        raise StorageError(f"catalog unreadable: {e}", retryable=False) from e


def _match(terms: list[Term], language: str) -> str:
    """An FTS5 expression over ``stems``: every term, analysed in ``language``; "" if one is empty.

    A prefix term (the word still being typed) matches its stem as a word,
    or its folded letters as the start of one: ``ecout`` and ``clu*``.
    """
    parts: list[str] = []
    for t in terms:
        stemmed = stems(" ".join(t.words), language).replace('"', "")
        if not stemmed:
            return ""
        if t.prefix:
            start = fold(t.words[0]).replace('"', "")
            parts.append(f'("{stemmed}" OR "{start}"*)')
        else:
            parts.append(f'"{stemmed}"')
    return " AND ".join(parts)


def _lower(text: str | None) -> str | None:
    return text.lower() if isinstance(text, str) else text
