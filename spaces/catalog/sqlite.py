"""Catalog on SQLite with FTS5: the embedded default.

WAL mode lets the API read while a worker writes from another process.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

from spaces.catalog import TurnRow, bm25
from spaces.catalog.highlight import snippet
from spaces.catalog.query import Term
from spaces.catalog.schema import shared_schema, turn_rows
from spaces.catalog.sql import SqlCatalog
from spaces.catalog.sql_search import MARK_END, MARK_START, MAX_CANDIDATES, Scope
from spaces.catalog.stem_counts import Analysed, Tally, analyse, split_stems
from spaces.exceptions import ConfigError, StorageError
from spaces.languages import stems
from spaces.models import Turn

SCHEMA = (
    shared_schema(real="REAL")
    + """CREATE TABLE IF NOT EXISTS turns (
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
    speaker_key TEXT NOT NULL DEFAULT '',
    UNIQUE (space_id, seq)
);
CREATE TABLE IF NOT EXISTS turn_languages (language TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS stem_docs (term TEXT PRIMARY KEY, docs INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stem_totals (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    turns INTEGER NOT NULL,
    tokens INTEGER NOT NULL
);
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
#:
#: ``stem_docs`` counts the turns each stem is in (``stem_totals``: turns and
#: tokens in all), kept as turns come and go. FTS5 would count them again at
#: every query, walking each word's whole doclist (``bm25()``, and a prefix
#: ``"word"*``, which merges the doclists of every word it starts); with the
#: counts, ranking is :mod:`spaces.catalog.bm25` over the candidates only,
#: and a prefix is the words it starts that are said most.

#: Search by speaker starts from the speaker's turns when the query's rarest
#: word is in this many times more turns than they have: a lookup in the word
#: index per turn of theirs costs about that many steps of a walk along it.
SPEAKER_FIRST_RATIO = 10


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

    #: The stemmed words FTS5 indexes (see above); the speaker's name lower-cased
    #: by Python, indexed for search by speaker (an index on ``lower(speaker)``
    #: would call our ``lower``, which a connection without it cannot evaluate).
    _turn_columns = {"stems": "TEXT NOT NULL DEFAULT ''", "speaker_key": "TEXT NOT NULL DEFAULT ''"}

    def create_schema(self) -> None:
        with _storage_errors():
            conn = self._connection()
            had_counts = bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'stem_totals'").fetchone())
            conn.executescript(SCHEMA)
        with self._transaction() as cur:
            had = self._column_names(cur, "turns")
            self._add_columns(cur)
            if "stems" not in had:
                self._stem_older_turns(cur)
            if "speaker_key" not in had:
                cur.execute("UPDATE turns SET speaker_key = lower(speaker)")
            cur.execute("CREATE INDEX IF NOT EXISTS turns_speaker ON turns (speaker_key)")
            if not had_counts:
                cur.execute("INSERT OR IGNORE INTO stem_totals (id, turns, tokens) VALUES (0, 0, 0)")
                tally = Tally()
                for (stemmed,) in cur.execute("SELECT stems FROM turns").fetchall():
                    tally.add(stemmed)
                tally.save(cur)

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
        tally = Tally()
        for row in turn_rows(space_id, turns, first_seq):
            stemmed = tally.add(stems(row.text, row.language))
            cur.execute(
                "INSERT INTO turns (space_id, seq, speaker, start_s, end_s, text, language, stems, speaker_key, live) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*row, stemmed, row.speaker.lower(), int(live)),
            )
            cur.execute("INSERT INTO turns_stems (rowid, stems) VALUES (?, ?)", (cur.lastrowid, stemmed))
        tally.save(cur)

    def _bulk_turns(self, cur: Any, turns: Iterable[TurnRow]) -> None:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM turns")
        (last,) = cur.fetchone()
        tally = Tally()
        cur.executemany(
            "INSERT INTO turns (space_id, seq, speaker, start_s, end_s, text, language, stems, speaker_key) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            ((*row, tally.add(stems(row.text, row.language)), row.speaker.lower()) for row in turns),
        )
        tally.save(cur)
        # New rowids are above the old maximum; indexing them in one statement
        # is several times faster than one FTS insert per row.
        cur.execute("INSERT INTO turns_stems (rowid, stems) SELECT id, stems FROM turns WHERE id > ?", (last,))

    def _groups(self, cur: Any, terms: list[Term], languages: Sequence[str]) -> list[Analysed]:
        """The query analysed in each language turns are in (languages it reads the same in share one)."""
        groups: dict[str, Analysed] = {}
        for lang in languages or [""]:
            analysed = analyse(cur, terms, lang)
            if analysed is not None:
                same = Analysed(analysed.match, analysed.terms, [], analysed.tokens_decide)
                groups.setdefault(analysed.match, same).languages.append(lang)
        return list(groups.values())

    def _match_clause(self, terms: list[Term], languages: Sequence[str]) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        with self._reading() as cur:
            groups = self._groups(cur, terms, languages)
        for group in groups:
            parts.append(
                f"(t.language IN ({','.join('?' * len(group.languages))})"
                " AND t.id IN (SELECT rowid FROM turns_stems WHERE turns_stems MATCH ?))"
            )
            params.extend([*group.languages, group.match])
        return "(" + (" OR ".join(parts) or "0") + ")", params

    def _delete_turns(self, cur: Any, space_id: str, *, seq: int | None = None) -> None:
        where, params = ("space_id = ?", (space_id,)) if seq is None else ("space_id = ? AND seq = ?", (space_id, seq))
        tally = Tally()
        for (stemmed,) in cur.execute(f"SELECT stems FROM turns WHERE {where}", params).fetchall():
            tally.add(stemmed)
        tally.save(cur, -1)
        # External-content FTS5 needs the old text to delete its index entries.
        cur.execute(
            f"INSERT INTO turns_stems (turns_stems, rowid, stems) SELECT 'delete', id, stems FROM turns WHERE {where}",
            params,
        )
        cur.execute(f"DELETE FROM turns WHERE {where}", params)

    def _space_clause(self, space_id: str) -> tuple[str, list[Any]]:
        # Its turns' ids, as a range FTS5 seeks to: otherwise a frequent word
        # searched in one space walks every turn the word is in, everywhere.
        return (
            "t.space_id = ? AND turns_stems.rowid BETWEEN (SELECT MIN(id) FROM turns WHERE space_id = ?)"
            " AND (SELECT MAX(id) FROM turns WHERE space_id = ?)",
            [space_id] * 3,
        )

    def _speaker_clause(self, speaker: str) -> tuple[str, list[Any]]:
        return "t.speaker_key = ?", [speaker.lower()]

    def _few_turns(self, cur: Any, scope: Scope, group: Analysed) -> bool:
        """Whether the speaker searched has fewer turns than the query's words are in, by far.

        Then their turns are the cheaper side to start from, matched on their
        tokens (unless a term is one FTS5 alone matches). Their count is read
        from the index, up to that bound only.
        """
        if not scope.speaker or scope.space_id or not group.tokens_decide:
            return False  # one space's turns are a range of the word index already
        bound = min(t.docs for t in group.terms) // SPEAKER_FIRST_RATIO
        cur.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM turns WHERE speaker_key = ? LIMIT ?)", (scope.speaker.lower(), bound)
        )
        return bool(cur.fetchone()[0] < bound)

    def _search_rows(
        self, cur: Any, terms: list[Term], where: str, params: list[Any], limit: int, offset: int, scope: Scope
    ) -> list[tuple[Any, ...]]:
        # The last word as typed first, as PostgreSQL does, when it starts
        # other words: a prefix is an OR of up to MAX_EXPANSIONS words, each
        # walked along its own doclist. Only if the word as typed does not
        # fill the page asked for is it read as the start of longer words.
        languages = self._turn_languages(cur)
        groups = self._groups(cur, terms, languages)
        if any(len(term.alternatives) > 1 for group in groups for term in group.terms):
            exact = self._groups(cur, [Term(t.words) for t in terms], languages)
            rows = self._ranked(cur, exact, terms, where, params, limit, offset, scope)
            if len(rows) == limit:
                return rows
        return self._ranked(cur, groups, terms, where, params, limit, offset, scope)

    def _ranked(
        self,
        cur: Any,
        groups: list[Analysed],
        terms: list[Term],
        where: str,
        params: list[Any],
        limit: int,
        offset: int,
        scope: Scope,
    ) -> list[tuple[Any, ...]]:
        """The page of the newest MAX_CANDIDATES turns matching ``groups`` and ``where``, ranked.

        Snippets mark ``terms`` (the prefix too, when the word as typed matched).
        """
        if not groups:
            return []
        cur.execute("SELECT turns, tokens FROM stem_totals")
        total, tokens = cur.fetchone() or (0, 0)
        average = tokens / total if total else 1.0
        # Per language the query is analysed in: the newest matching turns
        # (FTS5 walks its index backwards and stops), ranked here, then
        # snippets for the page only.
        ranked: list[tuple[float, str, float, int]] = []
        for group in groups:
            in_languages = f"t.language IN ({','.join('?' * len(group.languages))})"
            if self._few_turns(cur, scope, group):
                # The speaker's turns, newest first, matched here on the tokens
                # FTS5 indexes: the same candidates as below, without walking
                # every turn the words are in to find the few that are theirs.
                cur.execute(
                    "SELECT t.id, t.space_id, t.start_s, t.stems FROM turns t JOIN spaces s ON s.space_id = t.space_id"
                    f" WHERE {in_languages} AND {where} ORDER BY t.id DESC",
                    [*group.languages, *params],
                )
                matches = bm25.matcher(group.terms)
                found = list(islice((r for r in cur if matches(split_stems(r[3]))), MAX_CANDIDATES))
            else:
                cur.execute(
                    "SELECT t.id, t.space_id, t.start_s, t.stems FROM turns_stems"
                    " JOIN turns t ON t.id = turns_stems.rowid JOIN spaces s ON s.space_id = t.space_id"
                    f" WHERE turns_stems MATCH ? AND {in_languages} AND {where}"
                    f" ORDER BY turns_stems.rowid DESC LIMIT {MAX_CANDIDATES}",
                    [group.match, *group.languages, *params],
                )
                found = cur.fetchall()
            ranks = bm25.stem_scores(group.terms, [r[3] for r in found], total=total, avg_length=average)
            ranked.extend(
                (-rank, space_id, start, turn_id)
                for rank, (turn_id, space_id, start, _) in zip(ranks, found, strict=True)
            )
        ranked.sort()
        page = ranked[offset : offset + limit]
        if not page:
            return []
        cur.execute(
            "SELECT t.id, t.space_id, s.title, t.speaker, t.start_s, t.end_s, t.text, s.state, t.language "
            f"FROM turns t JOIN spaces s ON s.space_id = t.space_id WHERE t.id IN ({','.join('?' * len(page))})",
            [turn_id for *_, turn_id in page],
        )
        rows = {r[0]: r[1:] for r in cur.fetchall()}
        out: list[tuple[Any, ...]] = []
        for negative, *_, turn_id in page:
            space_id, title, speaker, start, end, text, state, language = rows[turn_id]
            marked = snippet(text, language, terms, start=MARK_START, end=MARK_END)
            out.append((space_id, title, speaker, start, end, marked, -negative, state, language))
        return out

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


def _lower(text: str | None) -> str | None:
    return text.lower() if isinstance(text, str) else text
