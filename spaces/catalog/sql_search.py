"""Search over turns, shared by both catalog backends: scope, visibility and hits.

Backends find and rank the matching turns (``_search_rows``: FTS5 with BM25
from stored counts on SQLite, ``tsvector`` on PostgreSQL); this module
builds what every search is narrowed to and turns rows into ``SearchHit``s.
"""

from __future__ import annotations

import html
from abc import ABC, abstractmethod
from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from spaces.catalog.query import Term, parse
from spaces.models import SearchHit, SpaceState, Visibility

#: Spaces whose transcript search shows: the ones whose replay is served
#: (``replay_api.deps.servable``): ready, or being reprocessed (or failed to
#: be) with a complete earlier run's outputs, which stay right until the new
#: run replaces them whole.
#: Live turns are searchable from the moment they are written (search while
#: live), until the pipeline's transcript replaces them.
_SEARCHABLE = "(t.live = 1 OR s.state = ? OR (s.published = 1 AND s.state IN (?, ?)))"
_SEARCHABLE_STATES = [str(SpaceState.READY), str(SpaceState.PROCESSING), str(SpaceState.FAILED)]

#: Search ranks at most this many matching turns, the newest ones (by when
#: they were indexed). A query of common words can match a third of every
#: turn ever said; ranking all of them costs time in proportion, so both
#: backends stop at the same bound and rank what they found. 2,000 before:
#: at a million turns, frequent-word queries kept 89-90 % of their first ten
#: hits (``bench.replay --hits``) for 30 % less CPU per query in SQLite;
#: 500 would keep 76 %.
MAX_CANDIDATES = 1000

#: Sentinels the backends put around matched words in snippets; turned into
#: ``<mark>`` after the rest of the text is HTML-escaped.
MARK_START, MARK_END = "\x02", "\x03"


@dataclass(frozen=True)
class Scope:
    """What a search is narrowed to besides visibility."""

    speaker: str | None = None
    space_id: str | None = None


class SqlSearch(ABC):
    """``search`` for a catalog whose backend supplies ``_reading`` and ``_search_rows``."""

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Any]:
        """A cursor for reads only."""

    @abstractmethod
    def _search_rows(
        self, cur: Any, terms: list[Term], where: str, params: list[Any], limit: int, offset: int, scope: Scope
    ) -> list[tuple[Any, ...]]:
        """Rows of (space_id, title, speaker, start, end, snippet, rank, space state, language).

        ``where`` already holds ``scope``; a backend may use it to choose its plan.
        """

    def _space_clause(self, space_id: str) -> tuple[str, list[Any]]:
        """Search's condition for turns ``t`` of one space."""
        return "t.space_id = ?", [space_id]

    def _speaker_clause(self, speaker: str) -> tuple[str, list[Any]]:
        """Search's condition for turns ``t`` of one speaker, named as people type it ("Bob" finds bob's)."""
        return "LOWER(t.speaker) = LOWER(?)", [speaker]

    def search(
        self,
        query: str,
        *,
        limit: int,
        offset: int = 0,
        speaker: str | None = None,
        space_id: str | None = None,
        visible: Collection[str] = (),
    ) -> list[SearchHit]:
        terms = parse(query)
        if not terms:
            return []
        where, params = visible_clause("s", visible)
        where += f" AND {_SEARCHABLE}"
        params.extend(_SEARCHABLE_STATES)
        if speaker:
            clause, args = self._speaker_clause(speaker)
            where += f" AND {clause}"
            params.extend(args)
        if space_id:
            clause, args = self._space_clause(space_id)
            where += f" AND {clause}"
            params.extend(args)
        with self._reading() as cur:
            rows = self._search_rows(cur, terms, where, params, limit, offset, Scope(speaker, space_id))
        return [
            SearchHit(
                space_id=r[0],
                space_title=r[1],
                speaker=r[2],
                start=float(r[3]),
                end=float(r[4]),
                snippet=_marked(r[5]),
                rank=float(r[6]),
                live=r[7] == str(SpaceState.LIVE),
                language=str(r[8]),
            )
            for r in rows
        ]


def visible_clause(alias: str, visible: Collection[str]) -> tuple[str, list[Any]]:
    ids = sorted(visible)
    clause = f"({alias}.visibility = ?"
    params: list[Any] = [str(Visibility.PUBLIC)]
    if ids:
        clause += f" OR {alias}.space_id IN ({','.join('?' * len(ids))})"
        params.extend(ids)
    return clause + ")", params


def _marked(snippet: str) -> str:
    escaped = html.escape(snippet, quote=False)
    return escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
