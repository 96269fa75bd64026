"""The catalog seam: space metadata, pipeline state and full-text search.

Two implementations with one contract (one test suite runs over both):
SQLite with FTS5 (the embedded default) and PostgreSQL with tsvector + GIN,
chosen by ``DATABASE_URL``. Both share the SQL in ``sql.py``; they differ in
connections, the search index and the ranking function.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from spaces.models import SearchHit, Space, SpaceState, Turn
from spaces.settings import Settings


class TurnRow(NamedTuple):
    """One searchable turn as stored: what ``bulk_insert`` takes without building words."""

    space_id: str
    seq: int
    speaker: str
    start: float
    end: float
    text: str
    language: str = ""
    """Whisper code of the turn's language ("" = from before languages: English)."""


@dataclass(frozen=True)
class SpaceFilter:
    """What ``list_spaces`` returns; ``visible`` names private spaces the caller may see.

    ``text`` matches the title (substring) or any turn of the transcript
    (the same words-and-phrases query as ``search``). ``empty`` spaces
    (nobody joined) are listed only when asked for by ``state``.
    """

    state: SpaceState | None = None
    speaker: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    visible: Collection[str] = ()
    include_private: bool = False
    """Every private space too, as for an operator (``spaces list``)."""


class Catalog(Protocol):
    def create_schema(self) -> None:
        """Create tables and indexes if missing (idempotent)."""

    def put_space(self, space: Space) -> None:
        """Insert or replace a space's metadata."""

    def get_space(self, space_id: str) -> Space:
        """The space; raise ``NotFound`` if unknown."""

    def list_spaces(self, flt: SpaceFilter, *, limit: int, cursor: tuple[float, str] | None = None) -> list[Space]:
        """Newest first; ``cursor`` is the (created_at, space_id) of the last row seen."""

    def set_state(self, space_id: str, state: SpaceState, *, error: str | None = None, run: int | None = None) -> None:
        """Set the state (READY also marks the outputs complete: ``Space.published``).

        With ``run``, nothing changes if the space has moved on to a newer
        run: a superseded run's late success or failure is not the space's.
        """

    def end_unjoined(self, created_before: float) -> int:
        """Mark ``created`` spaces created before this time ``empty`` (nobody joined); how many.

        One conditional update: safe to run from any number of processes at once.
        """

    def claim_name(self, space_id: str, key: str, token_id: str) -> str:
        """Bind a name (its ``names.name_key``) in a space to a token, unless it is bound.

        Returns the token id that holds the name now: ``token_id`` if the
        claim won, the earlier holder's otherwise. Atomic across processes.
        """

    def ban(self, space_id: str, *, token_id: str, address: str | None) -> None:
        """Remember that the holder of this token (and this client address) was removed."""

    def is_banned(self, space_id: str, *, token_id: str | None = None, address: str | None = None) -> bool:
        """Whether this token or this client address was removed from the space."""

    def start_run(self, space_id: str, run: int) -> bool:
        """Mark the space processing by pipeline run ``run``.

        A newer run than the space's starts with no progress and no error;
        the same run keeps its progress. False (and nothing changes) if the
        space is already on a newer run.
        """

    def set_progress(self, space_id: str, stage: str, fraction: float, *, run: int | None = None) -> None:
        """Record one stage's progress (0..1) for ``spaces status`` and the API.

        With ``run``, ignored if the space has moved on to a newer run.
        """

    def delete_space(self, space_id: str) -> None:
        """Forget a space: its row, turns (and their search index), speakers, names, bans,
        erasures and retention."""

    def mark_deleting(self, space_id: str) -> SpaceState | None:
        """Mark the space ``deleting``; its state before, or None if unknown or already deleting.

        One conditional update: of two concurrent deletions exactly one wins.
        """

    def request_erasure(self, space_id: str, speaker: str, *, now: float) -> bool:
        """Record that a speaker is being erased; False if asked before (then nothing changes)."""

    def finish_erasure(self, space_id: str, speaker: str) -> None:
        """Mark a speaker's erasure done."""

    def erasures(self, space_id: str) -> dict[str, str]:
        """Speakers erased or being erased: name -> ``erasing`` | ``erased``."""

    def set_retention(self, space_id: str, days: float | None, keep: Collection[str] = ()) -> None:
        """The space's own retention (days, kinds of output kept); None = the default."""

    def retention(self, space_id: str) -> tuple[float, tuple[str, ...]] | None:
        """The space's own retention, if its host set one."""

    def space_ages(self) -> list[tuple[str, float, SpaceState]]:
        """Every space's (id, created_at, state), oldest first: what retention sweeps."""

    def replace_turns(self, space_id: str, turns: Sequence[Turn]) -> None:
        """Atomically replace the searchable turns of a space."""

    def add_live_turns(self, space_id: str, turns: Sequence[Turn]) -> int:
        """Append live turns (final captions of the room agent) to a space's searchable turns.

        Search finds them at once, with the space in any state; ``replace_turns``
        (the pipeline's transcript) removes them. Returns how many were added:
        0 once the pipeline's transcript is in, so a late caption never shows
        a moment twice.
        """

    def replace_live_turn(self, space_id: str, old: Turn | None, new: Turn) -> int:
        """Replace the live turn ``old`` (a final caption's) with ``new`` (its settled text), in its place.

        One turn per utterance, so search never shows a moment twice; ``new``
        is added if ``old`` is None or not there (its write failed). Returns 1,
        or 0 once the pipeline's transcript is in, as :meth:`add_live_turns`.
        """

    def bulk_insert(self, spaces: Sequence[Space], turns: Iterable[TurnRow]) -> None:
        """Load many spaces and their turns in one transaction (imports, benchmarks).

        Much faster than ``put_space`` + ``replace_turns`` per space; the
        turns must be new (a space's existing turns are not replaced).
        """

    def talk_times(self, space_id: str) -> dict[str, float]:
        """Seconds each speaker talked: the sum of their turns' lengths."""

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
        """Ranked turns of spaces whose replay is served; private ones only if in ``visible``.

        Served: ready, or being reprocessed (or failed to be) with an earlier
        run's complete outputs (``Space.published``). ``space_id`` restricts
        the search to one space (the replay page's box); ``speaker`` matches
        names whatever their case, and the query's last word matches as a
        prefix (``spaces.catalog.query``).
        """

    def close(self) -> None: ...


def open_catalog(settings: Settings) -> Catalog:
    url = settings.catalog_url
    if url.startswith("sqlite:"):
        from spaces.catalog.sqlite import SqliteCatalog

        return SqliteCatalog.from_url(url)
    from spaces.catalog.postgres import PostgresCatalog

    return PostgresCatalog.from_url(url)
