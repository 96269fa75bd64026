"""SQL shared by both catalog backends.

Statements use ``?`` placeholders; the PostgreSQL backend rewrites them to
``%s``. Backends supply connections, their search index and ranking.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from spaces.catalog import SpaceFilter, TurnRow
from spaces.catalog.query import Term, parse
from spaces.catalog.schema import ADDED_COLUMNS, ADDED_TURN_COLUMNS, SPACE_COLUMNS, space_from_row, space_row
from spaces.catalog.sql_search import SqlSearch, visible_clause
from spaces.exceptions import NotFound
from spaces.models import Space, SpaceState, Turn

#: States of a speaker's erasure (``space_erasures.state``).
ERASING, ERASED = "erasing", "erased"


class SqlCatalog(SqlSearch):
    """Everything but connections and full-text search."""

    #: Refreshes the planner's statistics of our tables.
    _analyze_sql = "ANALYZE"

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A DB-API cursor inside a transaction, committed on success."""

    def _reading(self) -> AbstractContextManager[Any]:
        """A cursor for reads only; backends may make it cheaper than ``_transaction``."""
        return self._transaction()

    @abstractmethod
    def _sql(self, statement: str) -> str:
        """Adapt placeholders to the driver."""

    @abstractmethod
    def _insert_turns(
        self, cur: Any, space_id: str, turns: Sequence[Turn], *, live: bool = False, first_seq: int = 0
    ) -> None: ...

    def _lock_space(self, cur: Any, space_id: str) -> None:
        """Serialize writers of one space's turns (SQLite: its write lock already does)."""
        return None

    @abstractmethod
    def _delete_turns(self, cur: Any, space_id: str, *, seq: int | None = None) -> None:
        """Delete a space's turns (``seq``: that one only) and their index entries."""

    @abstractmethod
    def _match_clause(self, terms: list[Term], languages: Sequence[str]) -> tuple[str, list[Any]]:
        """A condition (``?`` placeholders) true for turns ``t`` matching every term.

        ``languages`` are those turns are in: the terms are analysed in each.
        """

    @abstractmethod
    def _bulk_turns(self, cur: Any, turns: Iterable[TurnRow]) -> None:
        """Insert many new turns and index them."""

    @abstractmethod
    def _column_names(self, cur: Any, table: str = "spaces") -> set[str]:
        """The columns ``table`` has now."""

    #: Columns this backend adds to ``turns`` besides ``ADDED_TURN_COLUMNS``.
    _turn_columns: dict[str, str] = {}

    def _add_columns(self, cur: Any) -> None:
        """Bring an older catalog's tables up to ``ADDED_COLUMNS`` and ``ADDED_TURN_COLUMNS``."""
        turns = {**ADDED_TURN_COLUMNS, **self._turn_columns}
        for name, kind in turns.items():
            if name not in self._column_names(cur, "turns"):
                cur.execute(f"ALTER TABLE turns ADD COLUMN {name} {kind}")
        missing = {name: kind for name, kind in ADDED_COLUMNS.items() if name not in self._column_names(cur)}
        for name, kind in missing.items():
            cur.execute(f"ALTER TABLE spaces ADD COLUMN {name} {kind}")
        if "published" in missing:
            # Every space ready so far had complete outputs.
            cur.execute(self._sql("UPDATE spaces SET published = 1 WHERE state = ?"), (str(SpaceState.READY),))

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only statement and return its rows."""
        with self._reading() as cur:
            cur.execute(self._sql(statement), tuple(params))
            return list(cur.fetchall()) if cur.description else []

    def put_space(self, space: Space) -> None:
        with self._transaction() as cur:
            self._put_spaces(cur, [space])

    def _put_spaces(self, cur: Any, spaces: Sequence[Space]) -> None:
        cur.executemany(
            self._sql(
                f"INSERT INTO spaces ({SPACE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (space_id) DO UPDATE SET title=excluded.title, host=excluded.host, "
                "created_at=excluded.created_at, state=excluded.state, "
                "visibility=excluded.visibility, duration=excluded.duration, "
                "speakers=excluded.speakers, error=excluded.error, "
                "progress=CASE WHEN excluded.run >= spaces.run THEN excluded.progress ELSE spaces.progress END, "
                "partial=excluded.partial, "
                # Neither goes back: a newer run stays the space's run, and
                # outputs once complete are served until replaced whole.
                "run=CASE WHEN excluded.run > spaces.run THEN excluded.run ELSE spaces.run END, "
                "published=CASE WHEN excluded.published > spaces.published "
                "THEN excluded.published ELSE spaces.published END, "
                "node=excluded.node, language=excluded.language, languages=excluded.languages"
            ),
            [space_row(s) for s in spaces],
        )
        for space in spaces:
            cur.execute(self._sql("DELETE FROM space_speakers WHERE space_id = ?"), (space.space_id,))
        # A speaker named twice in one space is one row (the primary key).
        speakers = {(s.space_id, name) for s in spaces for name in s.speakers}
        cur.executemany(self._sql("INSERT INTO space_speakers (space_id, speaker) VALUES (?, ?)"), sorted(speakers))

    def _note_languages(self, cur: Any, languages: Iterable[str]) -> None:
        """Remember which languages turns are in: search analyses a query once per language."""
        cur.executemany(
            self._sql("INSERT INTO turn_languages (language) VALUES (?) ON CONFLICT (language) DO NOTHING"),
            [(lang,) for lang in sorted(set(languages))],
        )

    def _turn_languages(self, cur: Any) -> list[str]:
        cur.execute(self._sql("SELECT language FROM turn_languages ORDER BY language"))
        return [str(r[0]) for r in cur.fetchall()]

    def bulk_insert(self, spaces: Sequence[Space], turns: Iterable[TurnRow]) -> None:
        seen: set[str] = set()

        def noting(rows: Iterable[TurnRow]) -> Iterator[TurnRow]:
            for row in rows:
                seen.add(row.language)
                yield row

        with self._transaction() as cur:
            self._put_spaces(cur, spaces)
            self._bulk_turns(cur, noting(turns))
            self._note_languages(cur, seen)
            # Fresh statistics, so the planner knows the tables grew by a lot.
            cur.execute(self._analyze_sql)

    def talk_times(self, space_id: str) -> dict[str, float]:
        rows = self._execute(
            "SELECT speaker, SUM(end_s - start_s) FROM turns WHERE space_id = ? GROUP BY speaker ORDER BY speaker",
            (space_id,),
        )
        return {str(r[0]): round(float(r[1]), 3) for r in rows}

    def get_space(self, space_id: str) -> Space:
        rows = self._execute(f"SELECT {SPACE_COLUMNS} FROM spaces WHERE space_id = ?", (space_id,))
        if not rows:
            raise NotFound(f"no space {space_id!r}")
        return space_from_row(rows[0])

    def list_spaces(self, flt: SpaceFilter, *, limit: int, cursor: tuple[float, str] | None = None) -> list[Space]:
        where, params = ("1 = 1", []) if flt.include_private else visible_clause("s", flt.visible)
        if flt.state is not None:
            where += " AND s.state = ?"
            params.append(str(flt.state))
        else:
            # Nobody ever joined an empty space: nothing to list, live or past.
            # A space being deleted is gone already as far as anyone can see.
            where += " AND s.state NOT IN (?, ?)"
            params.extend([str(SpaceState.EMPTY), str(SpaceState.DELETING)])
        if flt.speaker:
            where += (
                " AND EXISTS (SELECT 1 FROM space_speakers p"
                " WHERE p.space_id = s.space_id AND LOWER(p.speaker) = LOWER(?))"
            )
            params.append(flt.speaker)
        if flt.since is not None:
            where += " AND s.created_at >= ?"
            params.append(flt.since)
        if flt.until is not None:
            where += " AND s.created_at < ?"
            params.append(flt.until)
        if flt.text:
            where += " AND (LOWER(s.title) LIKE ? ESCAPE '\\'"
            params.append("%" + _escape_like(flt.text.lower()) + "%")
            terms = parse(flt.text)
            if terms:
                with self._reading() as cur:
                    languages = self._turn_languages(cur)
                match, match_params = self._match_clause(terms, languages)
                where += f" OR s.space_id IN (SELECT t.space_id FROM turns t WHERE {match})"
                params.extend(match_params)
            where += ")"
        if cursor is not None:
            where += " AND (s.created_at < ? OR (s.created_at = ? AND s.space_id < ?))"
            params.extend([cursor[0], cursor[0], cursor[1]])
        cols = ", ".join(f"s.{c.strip()}" for c in SPACE_COLUMNS.split(","))
        rows = self._execute(
            f"SELECT {cols} FROM spaces s WHERE {where} ORDER BY s.created_at DESC, s.space_id DESC LIMIT ?",
            [*params, limit],
        )
        return [space_from_row(r) for r in rows]

    def _run_of(self, cur: Any, space_id: str) -> int:
        """The space's run, read inside the transaction; ``NotFound`` if there is no space."""
        cur.execute(self._sql("SELECT run FROM spaces WHERE space_id = ?"), (space_id,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no space {space_id!r}")
        return int(row[0])

    def set_state(self, space_id: str, state: SpaceState, *, error: str | None = None, run: int | None = None) -> None:
        published = 1 if state is SpaceState.READY else 0
        with self._transaction() as cur:
            if run is not None and run < self._run_of(cur, space_id):
                return  # a superseded run no longer decides the state
            # A space being deleted stays so: a late stage or a room ending
            # must not bring it back (to them it is not found).
            cur.execute(
                self._sql(
                    "UPDATE spaces SET state = ?, error = ?, "
                    "published = CASE WHEN ? = 1 THEN 1 ELSE published END WHERE space_id = ? AND state <> ?"
                ),
                (str(state), error, published, space_id, str(SpaceState.DELETING)),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no space {space_id!r}")

    def mark_deleting(self, space_id: str) -> SpaceState | None:
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT state FROM spaces WHERE space_id = ?"), (space_id,))
            row = cur.fetchone()
            if row is None or row[0] == str(SpaceState.DELETING):
                return None
            cur.execute(
                self._sql("UPDATE spaces SET state = ? WHERE space_id = ? AND state = ?"),
                (str(SpaceState.DELETING), space_id, row[0]),
            )
            return SpaceState(row[0]) if cur.rowcount == 1 else None

    def request_erasure(self, space_id: str, speaker: str, *, now: float) -> bool:
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO space_erasures (space_id, speaker, state, requested_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (space_id, speaker) DO NOTHING"
                ),
                (space_id, speaker, ERASING, now),
            )
            return bool(cur.rowcount == 1)

    def finish_erasure(self, space_id: str, speaker: str) -> None:
        with self._transaction() as cur:
            cur.execute(
                self._sql("UPDATE space_erasures SET state = ? WHERE space_id = ? AND speaker = ?"),
                (ERASED, space_id, speaker),
            )

    def erasures(self, space_id: str) -> dict[str, str]:
        rows = self._execute(
            "SELECT speaker, state FROM space_erasures WHERE space_id = ? ORDER BY requested_at, speaker",
            (space_id,),
        )
        return {str(r[0]): str(r[1]) for r in rows}

    def set_retention(self, space_id: str, days: float | None, keep: Collection[str] = ()) -> None:
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM space_retention WHERE space_id = ?"), (space_id,))
            if days is not None:
                cur.execute(
                    self._sql("INSERT INTO space_retention (space_id, days, keep) VALUES (?, ?, ?)"),
                    (space_id, days, ",".join(sorted(keep))),
                )

    def retention(self, space_id: str) -> tuple[float, tuple[str, ...]] | None:
        rows = self._execute("SELECT days, keep FROM space_retention WHERE space_id = ?", (space_id,))
        if not rows:
            return None
        return float(rows[0][0]), tuple(k for k in str(rows[0][1]).split(",") if k)

    def space_ages(self) -> list[tuple[str, float, SpaceState]]:
        rows = self._execute("SELECT space_id, created_at, state FROM spaces ORDER BY created_at, space_id")
        return [(str(r[0]), float(r[1]), SpaceState(r[2])) for r in rows]

    def end_unjoined(self, created_before: float) -> int:
        with self._transaction() as cur:
            cur.execute(
                self._sql("UPDATE spaces SET state = ? WHERE state = ? AND created_at < ?"),
                (str(SpaceState.EMPTY), str(SpaceState.CREATED), created_before),
            )
            return int(cur.rowcount)

    def claim_name(self, space_id: str, key: str, token_id: str) -> str:
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO space_names (space_id, name, token_id) VALUES (?, ?, ?) "
                    "ON CONFLICT (space_id, name) DO NOTHING"
                ),
                (space_id, key, token_id),
            )
            cur.execute(self._sql("SELECT token_id FROM space_names WHERE space_id = ? AND name = ?"), (space_id, key))
            return str(cur.fetchone()[0])

    def ban(self, space_id: str, *, token_id: str, address: str | None) -> None:
        rows = [(space_id, "token", token_id)] + ([(space_id, "address", address)] if address else [])
        with self._transaction() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO space_bans (space_id, kind, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (space_id, kind, value) DO NOTHING"
                ),
                rows,
            )

    def is_banned(self, space_id: str, *, token_id: str | None = None, address: str | None = None) -> bool:
        wanted = [("token", token_id), ("address", address)]
        pairs = [(k, v) for k, v in wanted if v]
        if not pairs:
            return False
        clause = " OR ".join(["(kind = ? AND value = ?)"] * len(pairs))
        rows = self._execute(
            f"SELECT 1 FROM space_bans WHERE space_id = ? AND ({clause}) LIMIT 1",
            [space_id, *(x for pair in pairs for x in pair)],
        )
        return bool(rows)

    def start_run(self, space_id: str, run: int) -> bool:
        with self._transaction() as cur:
            current = self._run_of(cur, space_id)
            if run < current:
                return False
            if run > current:
                # A new run: the previous run's progress and error are not its own.
                cur.execute(
                    self._sql(
                        "UPDATE spaces SET state = ?, error = NULL, progress = ?, run = ? "
                        "WHERE space_id = ? AND state <> ?"
                    ),
                    (str(SpaceState.PROCESSING), "{}", run, space_id, str(SpaceState.DELETING)),
                )
            else:
                # The same run (its finalize, or a retry of it): keep its progress.
                cur.execute(
                    self._sql("UPDATE spaces SET state = ?, error = NULL WHERE space_id = ? AND state <> ?"),
                    (str(SpaceState.PROCESSING), space_id, str(SpaceState.DELETING)),
                )
            # A space being deleted is not processed (nor brought back).
            return bool(cur.rowcount == 1)

    def set_progress(self, space_id: str, stage: str, fraction: float, *, run: int | None = None) -> None:
        # Read-modify-write in one transaction; progress is advisory, last wins.
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT progress, run FROM spaces WHERE space_id = ?"), (space_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"no space {space_id!r}")
            if run is not None and run < int(row[1]):
                return  # a superseded run's stage: not this run's progress
            progress = json.loads(row[0] or "{}")
            progress[stage] = round(min(max(fraction, 0.0), 1.0), 4)
            cur.execute(
                self._sql("UPDATE spaces SET progress = ? WHERE space_id = ?"),
                (json.dumps(progress, sort_keys=True), space_id),
            )

    def delete_space(self, space_id: str) -> None:
        with self._transaction() as cur:
            self._delete_turns(cur, space_id)
            cur.execute(self._sql("DELETE FROM space_speakers WHERE space_id = ?"), (space_id,))
            cur.execute(self._sql("DELETE FROM space_names WHERE space_id = ?"), (space_id,))
            cur.execute(self._sql("DELETE FROM space_bans WHERE space_id = ?"), (space_id,))
            cur.execute(self._sql("DELETE FROM space_erasures WHERE space_id = ?"), (space_id,))
            cur.execute(self._sql("DELETE FROM space_retention WHERE space_id = ?"), (space_id,))
            cur.execute(self._sql("DELETE FROM spaces WHERE space_id = ?"), (space_id,))

    def replace_turns(self, space_id: str, turns: Sequence[Turn]) -> None:
        with self._transaction() as cur:
            self._lock_space(cur, space_id)
            self._delete_turns(cur, space_id)  # live turns too: search never shows a moment twice
            self._insert_turns(cur, space_id, turns)
            self._note_languages(cur, (t.language for t in turns))

    def add_live_turns(self, space_id: str, turns: Sequence[Turn]) -> int:
        with self._transaction() as cur:
            self._lock_space(cur, space_id)
            next_seq = self._next_live_seq(cur, space_id)
            if next_seq is None:
                return 0
            self._insert_turns(cur, space_id, turns, live=True, first_seq=next_seq)
            self._note_languages(cur, (t.language for t in turns))
        return len(turns)

    def replace_live_turn(self, space_id: str, old: Turn | None, new: Turn) -> int:
        with self._transaction() as cur:
            self._lock_space(cur, space_id)
            seq = self._next_live_seq(cur, space_id)
            if seq is None:
                return 0
            if old is not None:
                # Its speaker's live turn starting where it did (stored as a double: a
                # millisecond apart is another moment).
                cur.execute(
                    self._sql(
                        "SELECT seq FROM turns WHERE space_id = ? AND live = 1 AND speaker = ? "
                        "AND start_s BETWEEN ? AND ?"
                    ),
                    (space_id, old.speaker, old.start - 0.001, old.start + 0.001),
                )
                row = cur.fetchone()
                if row is not None:
                    seq = int(row[0])
                    self._delete_turns(cur, space_id, seq=seq)
            self._insert_turns(cur, space_id, [new], live=True, first_seq=seq)
            self._note_languages(cur, [new.language])
        return 1

    def _next_live_seq(self, cur: Any, space_id: str) -> int | None:
        """The seq of a new live turn; None once live turns are too late.

        Too late once the pipeline's transcript is in (its turns, or a published
        space whose transcript had none): a late caption would show a moment twice.
        """
        cur.execute(
            self._sql(
                "SELECT (SELECT COUNT(*) FROM turns WHERE space_id = ? AND live = 0), "
                "(SELECT COALESCE(MAX(seq), -1) FROM turns WHERE space_id = ?), "
                "(SELECT published FROM spaces WHERE space_id = ?)"
            ),
            (space_id, space_id, space_id),
        )
        offline, last_seq, published = cur.fetchone()
        if offline or published is None or published:
            return None
        return int(last_seq) + 1


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
