"""Catalog on PostgreSQL: tsvector + GIN for search, ts_rank for ranking."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from spaces.catalog import TurnRow, pg_search
from spaces.catalog.query import Term, to_tsquery
from spaces.catalog.schema import shared_schema, turn_rows
from spaces.catalog.sql import SqlCatalog
from spaces.catalog.sql_search import MARK_END, MARK_START, MAX_CANDIDATES, Scope
from spaces.exceptions import StorageError
from spaces.languages import postgres_config, postgres_configs
from spaces.models import Space, Turn

SCHEMA = (
    shared_schema(real="DOUBLE PRECISION")
    + """CREATE TABLE IF NOT EXISTS turns (
    id BIGSERIAL PRIMARY KEY,
    space_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    speaker TEXT NOT NULL,
    start_s DOUBLE PRECISION NOT NULL,
    end_s DOUBLE PRECISION NOT NULL,
    text TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 0,
    language TEXT NOT NULL DEFAULT '',
    ts_config regconfig NOT NULL DEFAULT 'spaces_english',
    tsv tsvector GENERATED ALWAYS AS (to_tsvector(ts_config, text)) STORED,
    UNIQUE (space_id, seq)
);
CREATE INDEX IF NOT EXISTS turns_tsv ON turns USING GIN (tsv);
CREATE INDEX IF NOT EXISTS turns_speaker ON turns (LOWER(speaker));
CREATE TABLE IF NOT EXISTS turn_languages (language TEXT PRIMARY KEY);
"""
)

#: Each turn is indexed with its language's configuration: ``spaces_<name>``
#: is PostgreSQL's own (stemmer and stop words) with accents removed first
#: (``unaccent``), so "ecoute" finds "écoute". ``simple`` where PostgreSQL
#: has no stemmer for the language (Japanese, Polish, ...): words are only
#: lower-cased and unaccented.

#: A speaker with fewer turns than this is searched from their turns
#: (``_source``): checking this many tsvectors costs milliseconds.
SCOPE_FIRST = 5000


@dataclass(frozen=True)
class _Asked:
    """One search, as ``_search_rows`` hands it to the ranking: the terms to match, those to rank by, and the rest."""

    matching: list[Term]
    terms: list[Term]
    languages: Sequence[str]
    where: str
    params: list[Any]
    limit: int
    offset: int
    whole_page: bool = False
    """Only a full page is of use: short of one, the caller searches again, the last word as a prefix."""


#: How a partition's statement is planned: its few hundred matches find
#: their spaces by key (hashing or merging every space cost more than the
#: partition's scan, at each look), and rows are read from memory (at the
#: default random_page_cost it walked 42,000 turns for 347 matches rather
#: than read 1,000). Set for the whole search of all turns, reads of all
#: turns at once (words too rare for the partitions) included: they planned
#: alike under these and the defaults (424 of 424 statements of the
#: four-language bench's typical queries), and switching back and forth
#: cost a round trip each time, three a typical search.
_PARTITION_SETTINGS = {"enable_hashjoin": "off", "enable_mergejoin": "off", "random_page_cost": "1.1"}


def _opening(*, partitions: bool, count: str | None) -> str:
    """What every search asks first, in one statement: the languages turns are in, the newest id, its settings.

    The newest id is read from ``turns`` (the same ids as ``turn_search``:
    one index to read, not one per partition), once a search.

    Parallel workers start in tens of milliseconds on a busy machine,
    longer than the walk they would share (measured: a search's walk of
    the newest turns took 35 ms to its first row in parallel).
    ``partitions``: a search of all turns, planned with
    ``_PARTITION_SETTINGS`` from here on. ``count``: a condition on turns
    ``t`` (one speaker's) whose turns are counted up to ``SCOPE_FIRST``.
    Read at each search, not kept, so a language another process's turns
    bring is searched at once: prepared, it costs one round trip and no
    planning.
    """
    settings = {"max_parallel_workers_per_gather": "0", **(_PARTITION_SETTINGS if partitions else {})}
    counted = (
        f"(SELECT COUNT(*) FROM (SELECT 1 FROM turns t WHERE {count} LIMIT {SCOPE_FIRST}) c)"
        if count
        else "NULL::bigint"
    )
    return (
        "SELECT ARRAY(SELECT language FROM turn_languages ORDER BY language), (SELECT MAX(id) FROM turns), "
        + f"{counted}, "
        + ", ".join(f"set_config('{name}', '{value}', true)" for name, value in settings.items())
    )


_HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=20, MinWords=8, MaxFragments=1"


class PostgresCatalog(SqlCatalog):
    # Only our tables: a bare ANALYZE would visit every schema of the database.
    _analyze_sql = "ANALYZE spaces, space_speakers, turns, turn_search"

    def __init__(self, url: str, *, max_size: int = 8, timeout: float = 30.0) -> None:
        """``timeout``: seconds to wait for a connection before the catalog is unreachable."""
        self.url = url
        self.pool = ConnectionPool(url, min_size=1, max_size=max_size, open=True, timeout=timeout)

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
            cur.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
            for name in postgres_configs():
                cur.execute(
                    "SELECT 1 FROM pg_ts_config WHERE cfgname = %s AND cfgnamespace = "
                    "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
                    (f"spaces_{name}",),
                )
                if cur.fetchone() is None:
                    stem = "simple" if name == "simple" else f"{name}_stem"
                    cur.execute(f"CREATE TEXT SEARCH CONFIGURATION spaces_{name} (COPY = pg_catalog.{name})")
                    cur.execute(
                        f"ALTER TEXT SEARCH CONFIGURATION spaces_{name} "
                        f"ALTER MAPPING FOR hword, hword_part, word WITH public.unaccent, {stem}"
                    )
            cur.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'turns'"
            )
            columns = {r[0] for r in cur.fetchall()}
            if columns and "ts_config" not in columns:
                # A catalog from before languages: its index was English only.
                cur.execute("ALTER TABLE turns DROP COLUMN tsv")
                cur.execute("ALTER TABLE turns ADD COLUMN ts_config regconfig NOT NULL DEFAULT 'spaces_english'")
                cur.execute(
                    "ALTER TABLE turns ADD COLUMN tsv tsvector "
                    "GENERATED ALWAYS AS (to_tsvector(ts_config, text)) STORED"
                )
            cur.execute(SCHEMA)
            self._add_columns(cur)
            cur.execute(SCHEMA)  # the index of a re-made tsv column
            pg_search.create(cur)

    def _column_names(self, cur: Any, table: str = "spaces") -> set[str]:
        # The table the search path finds (each test schema has its own).
        cur.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
        return {str(row[0]) for row in cur.fetchall()}

    def _insert_turns(
        self, cur: Any, space_id: str, turns: Sequence[Turn], *, live: bool = False, first_seq: int = 0
    ) -> None:
        cur.executemany(
            "INSERT INTO turns (space_id, seq, speaker, start_s, end_s, text, language, ts_config, live) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [(*row, _config(row.language), int(live)) for row in turn_rows(space_id, turns, first_seq)],
        )

    def _lock_space(self, cur: Any, space_id: str) -> None:
        # Read committed lets two writers of one space's turns interleave: the live
        # agent could slip a turn in beside the pipeline's replacement.
        cur.execute("SELECT 1 FROM spaces WHERE space_id = %s FOR UPDATE", (space_id,))

    def bulk_insert(self, spaces: Sequence[Space], turns: Iterable[TurnRow]) -> None:
        super().bulk_insert(spaces, turns)
        # A table freshly filled by COPY has no visibility map and unset hint
        # bits: its first readers would pay for both (and race autovacuum).
        # VACUUM cannot run inside a transaction, hence its own connection.
        try:
            with self.pool.connection() as conn:
                conn.autocommit = True
                conn.execute("VACUUM (ANALYZE) spaces, space_speakers, turns, turn_search")
        except psycopg.OperationalError as e:
            raise StorageError(f"catalog unreachable: {e}") from e

    def _bulk_turns(self, cur: Any, turns: Iterable[TurnRow]) -> None:
        # COPY streams the rows in one round trip; the tsvector column is
        # computed by the server as they land.
        with cur.copy(
            "COPY turns (space_id, seq, speaker, start_s, end_s, text, language, ts_config) FROM STDIN"
        ) as copy:
            for row in turns:
                copy.write_row((*row, _config(row.language)))

    def _match_clause(self, terms: list[Term], languages: Sequence[str]) -> tuple[str, list[Any]]:
        conditions, params = _conditions(terms, languages)
        return "(" + " OR ".join(conditions) + ")", params

    def _delete_turns(self, cur: Any, space_id: str, *, seq: int | None = None) -> None:
        if seq is None:
            cur.execute("DELETE FROM turns WHERE space_id = %s", (space_id,))
        else:
            cur.execute("DELETE FROM turns WHERE space_id = %s AND seq = %s", (space_id, seq))

    def _search_rows(
        self, cur: Any, terms: list[Term], where: str, params: list[Any], limit: int, offset: int, scope: Scope
    ) -> list[tuple[Any, ...]]:
        scoped = bool(scope.speaker or scope.space_id)
        counted = self._speaker_clause(scope.speaker) if scope.speaker and not scope.space_id else None
        cur.execute(
            _opening(partitions=not scoped, count=self._sql(counted[0]) if counted else None),
            counted[1] if counted else [],
            prepare=True,
        )
        languages, newest, speaker_turns = cur.fetchone()[:3]
        # A prefix makes GIN merge the posting lists of every word it starts
        # before it can intersect anything: tens of milliseconds for a word
        # said everywhere. The word as typed is tried first; only if it does
        # not fill the page asked for is it read as a prefix too (the word
        # still being typed), so a word typed in full and said that much is
        # taken as the word meant.
        exact = [Term(t.words) for t in terms]
        source = self._source(scope, speaker_turns)

        def ranked(matching: list[Term], *, whole_page: bool = False) -> list[tuple[Any, ...]]:
            asked = _Asked(matching, terms, languages, where, params, limit, offset, whole_page)
            if scoped:
                return self._ranked(cur, source, asked)
            # Every turn: the search table, newest partitions first.
            return self._newest_ranked(cur, asked, int(newest or 0))

        if exact != terms:
            rows = ranked(exact, whole_page=True)
            if len(rows) == limit:
                return rows
        return ranked(terms)

    def _source(self, scope: Scope, speaker_turns: int | None) -> tuple[str, list[Any]]:
        """Where candidates are read from: all turns, or only the space's or the speaker's (when few).

        ``speaker_turns``: the speaker's, counted up to ``SCOPE_FIRST``
        (``_opening``). The planner would intersect the scope's index with
        GIN's posting lists, which for frequent words (a prefix above all)
        costs more than checking the scope's few turns one by one: a fence
        (OFFSET 0) makes it read them first.
        """
        if scope.space_id:
            clause, args = self._space_clause(scope.space_id)
        elif scope.speaker and (speaker_turns or 0) < SCOPE_FIRST:
            clause, args = self._speaker_clause(scope.speaker)
        else:
            return "turns t", []
        return f"(SELECT * FROM turns t WHERE {self._sql(clause)} OFFSET 0) t", args

    def _ranked(self, cur: Any, source: tuple[str, list[Any]], a: _Asked) -> list[tuple[Any, ...]]:
        """The page of the newest MAX_CANDIDATES turns ``matching`` and ``where``, ranked by ``terms``.

        One statement: the candidates' tsvectors are ranked as they are read
        (ts_rank), and only the page gets a headline (ts_headline).
        The query is written out so the planner sees a constant and its
        selectivity: for frequent words it walks the primary key backwards
        and stops, for rare ones it asks the GIN index, for one speaker's
        turns their index. Never prepared, for the same reason: a generic
        plan knows no selectivity.
        """
        conditions, match = _conditions(a.matching, a.languages, placeholder="%s")
        per_row, per_row_args = _per_row(a.terms, a.languages, "c")
        # The candidates carry only what ranking needs (sorting and ranking
        # a thousand rows with their text and titles cost more than ranking);
        # the page's turns and spaces are read again for their text.
        cur.execute(
            "WITH c AS ("
            " SELECT t.id, t.tsv, t.ts_config, t.space_id, t.start_s"
            f" FROM {source[0]} JOIN spaces s ON s.space_id = t.space_id"
            f" WHERE ({' OR '.join(conditions)}) AND {self._sql(a.where)}"
            f" ORDER BY t.id DESC LIMIT {MAX_CANDIDATES}), "
            f"top AS (SELECT c.id, c.ts_config, c.space_id, c.start_s, ts_rank(c.tsv, {per_row}) AS rank FROM c"
            " ORDER BY rank DESC, c.space_id, c.start_s LIMIT %s OFFSET %s) "
            "SELECT c.space_id, p.title, r.speaker, c.start_s, r.end_s, "
            f"ts_headline(c.ts_config, r.text, {per_row}, %s), c.rank, p.state, r.language"
            " FROM top c JOIN turns r ON r.id = c.id JOIN spaces p ON p.space_id = c.space_id"
            " ORDER BY c.rank DESC, c.space_id, c.start_s",
            [*source[1], *match, *a.params, *per_row_args, a.limit, a.offset, *per_row_args, _HEADLINE],
            prepare=False,
        )
        return list(cur.fetchall())

    def _fills_page(self, cur: Any, source: tuple[str, list[Any]], a: _Asked) -> bool:
        """Whether the turns of ``source`` within ``a.where`` reach the end of the page asked for.

        Counted up to that end only. Rare words as typed that cannot fill the
        page were read, ranked and headlined only for the caller to drop them
        and search by prefix: counting them costs their GIN scan alone.
        """
        end = a.offset + a.limit
        cur.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {source[0]} JOIN spaces s ON s.space_id = t.space_id"
            f" WHERE {self._sql(a.where)} LIMIT {end}) c",
            [*source[1], *a.params],
            prepare=False,
        )
        return bool(cur.fetchone()[0] >= end)

    def _newest_ranked(self, cur: Any, a: _Asked, newest: int) -> list[tuple[Any, ...]]:
        """``_ranked`` for all turns: the same candidates, ranks and page, from ``turn_search`` (``pg_search``).

        Each look asks a range of partitions for its newest matches still
        needed, ranked as they are kept; the candidates are sorted here and
        only the page's turns are read for their text and headline.
        """
        conditions, match = _conditions(a.matching, a.languages, placeholder="%s")
        per_row, per_row_args = _per_row(a.terms, a.languages, "t")
        ranked_by, rank_args = _per_row(a.terms, a.languages, "b")
        found: list[tuple[float, str, float, int]] = []
        high = newest + 1
        while high > 0 and len(found) < MAX_CANDIDATES:
            seen = newest + 1 - high
            if pg_search.rare(len(found), seen):
                # Every match read (the fence keeps the planner from walking the
                # turns backwards for the newest: too few match to stop it
                # early), ranked and paged in one statement, from turns: one
                # GIN index plans faster than a partition each.
                source = (f"(SELECT * FROM turns t WHERE {' OR '.join(conditions)} OFFSET 0) t", match)
                if a.whole_page and not self._fills_page(cur, source, a):
                    return []  # the caller's search by prefix finds these matches and more
                return self._ranked(cur, source, a)
            need = MAX_CANDIDATES - len(found)
            ranges = pg_search.look(len(found), seen, high, need)
            # A branch per partition, newest first, each written out (never
            # prepared) and planned on its own with the words' selectivity in
            # it: walked backwards or asked of GIN. Append runs its branches
            # in order (never in parallel here) and the LIMIT stops it once
            # they hold the matches needed: the partitions beyond are never
            # read, and only the matches kept are ranked.
            branches = [
                "(SELECT t.id, t.space_id, t.start_s, t.ts_config, t.tsv"
                " FROM turn_search t JOIN spaces s ON s.space_id = t.space_id"
                f" WHERE ({' OR '.join(conditions)}) AND {self._sql(a.where)}"
                f" AND t.id >= {start} AND t.id < {end} ORDER BY t.id DESC LIMIT {need})"
                for start, end in ranges
            ]
            cur.execute(
                f"SELECT b.id, b.space_id, b.start_s, ts_rank(b.tsv, {ranked_by})"
                f" FROM ({' UNION ALL '.join(branches)}) b LIMIT {need}",
                [*rank_args, *[*match, *a.params] * len(branches)],
                prepare=False,
            )
            found.extend((-rank, space_id, start, turn_id) for turn_id, space_id, start, rank in cur.fetchall())
            high = ranges[-1][0]
        found.sort()
        page = found[a.offset : a.offset + a.limit]
        if not page:
            return []
        cur.execute(
            f"SELECT t.id, p.title, t.speaker, t.end_s, ts_headline(t.ts_config, t.text, {per_row}, %s),"
            " p.state, t.language FROM turns t JOIN spaces p ON p.space_id = t.space_id WHERE t.id = ANY(%s)",
            [*per_row_args, _HEADLINE, [turn_id for *_, turn_id in page]],
            prepare=True,  # rows by key, whatever the words: one plan serves every page
        )
        rows = {r[0]: r[1:] for r in cur.fetchall()}
        out: list[tuple[Any, ...]] = []
        for negative, space_id, start, turn_id in page:
            if turn_id not in rows:  # deleted since its partition was read (its space erased)
                continue
            title, speaker, end, snippet, state, language = rows[turn_id]
            out.append((space_id, title, speaker, start, end, snippet, -negative, state, language))
        return out

    def close(self) -> None:
        self.pool.close()


def _config(language: str) -> str:
    return f"spaces_{postgres_config(language)}"


def _configs(languages: Sequence[str]) -> list[str]:
    """The text search configurations of the languages turns are in (English for turns from before languages)."""
    return sorted({_config(lang) for lang in languages} or {_config("")})


def _per_row(terms: list[Term], languages: Sequence[str], alias: str) -> tuple[str, list[str]]:
    """The query in the configuration of each row ``alias`` (for its rank and headline), and its arguments."""
    configs = _configs(languages)
    per_row = (
        f"CASE {alias}.ts_config "
        + " ".join(f"WHEN '{c}'::regconfig THEN {to_tsquery(terms, '%s', c)[0]}" for c in configs)
        + " END"
    )
    return per_row, [a for c in configs for a in to_tsquery(terms, "%s", c)[1]]


def _conditions(terms: list[Term], languages: Sequence[str], *, placeholder: str = "?") -> tuple[list[str], list[Any]]:
    """Per configuration turns are in: rows of it whose tsvector matches the query analysed by it."""
    conditions: list[str] = []
    params: list[Any] = []
    for config in _configs(languages):
        query, args = to_tsquery(terms, placeholder, config)
        conditions.append(f"(t.ts_config = '{config}'::regconfig AND t.tsv @@ {query})")
        params.extend(args)
    return conditions, params
