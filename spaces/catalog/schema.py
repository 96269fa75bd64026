"""The catalog's tables as both backends define them, the columns added since, and how spaces and turns are rows."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from spaces.catalog import TurnRow
from spaces.models import Space, SpaceState, Turn, Visibility, languages_from_dict, languages_to_dict

SPACE_COLUMNS = (
    "space_id, title, host, created_at, state, visibility, duration, speakers, error, progress, partial, "
    "run, published, node, language, languages"
)


def shared_schema(*, real: str) -> str:
    """The tables both backends define alike, floats as the backend's ``real`` type; each adds its ``turns``."""
    return f"""
CREATE TABLE IF NOT EXISTS spaces (
    space_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    host TEXT NOT NULL,
    created_at {real} NOT NULL,
    state TEXT NOT NULL,
    visibility TEXT NOT NULL,
    duration {real} NOT NULL DEFAULT 0,
    speakers TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    progress TEXT NOT NULL DEFAULT '{{}}',
    partial INTEGER NOT NULL DEFAULT 0,
    run INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0,
    node TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'auto',
    languages TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS spaces_created ON spaces (created_at DESC, space_id DESC);
CREATE TABLE IF NOT EXISTS space_speakers (
    space_id TEXT NOT NULL,
    speaker TEXT NOT NULL,
    PRIMARY KEY (space_id, speaker)
);
CREATE TABLE IF NOT EXISTS space_names (
    space_id TEXT NOT NULL,
    name TEXT NOT NULL,
    token_id TEXT NOT NULL,
    PRIMARY KEY (space_id, name)
);
CREATE TABLE IF NOT EXISTS space_bans (
    space_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (space_id, kind, value)
);
CREATE TABLE IF NOT EXISTS space_erasures (
    space_id TEXT NOT NULL,
    speaker TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_at {real} NOT NULL,
    PRIMARY KEY (space_id, speaker)
);
CREATE TABLE IF NOT EXISTS space_retention (
    space_id TEXT PRIMARY KEY,
    days {real} NOT NULL,
    keep TEXT NOT NULL DEFAULT ''
);
"""


#: Columns added to ``spaces`` since its first version: ``create_schema``
#: adds them to an older catalog (name -> SQL type and default).
ADDED_COLUMNS = {
    "run": "INTEGER NOT NULL DEFAULT 0",
    "published": "INTEGER NOT NULL DEFAULT 0",
    "node": "TEXT NOT NULL DEFAULT ''",
    "language": "TEXT NOT NULL DEFAULT 'auto'",
    "languages": "TEXT NOT NULL DEFAULT '{}'",
}

#: The same for ``turns`` (backends may add their own index columns).
#: ``live`` marks a turn made of a live final caption (the room agent's),
#: replaced whole when the pipeline's transcript lands.
ADDED_TURN_COLUMNS = {
    "language": "TEXT NOT NULL DEFAULT ''",
    "live": "INTEGER NOT NULL DEFAULT 0",
}


def space_row(space: Space) -> tuple[Any, ...]:
    """A space as the values of ``SPACE_COLUMNS``."""
    return (
        space.space_id,
        space.title,
        space.host,
        space.created_at,
        str(space.state),
        str(space.visibility),
        space.duration,
        json.dumps(list(space.speakers)),
        space.error,
        json.dumps(space.progress, sort_keys=True),
        int(space.partial),
        space.run,
        int(space.published or space.state is SpaceState.READY),
        space.node,
        space.language,
        json.dumps(languages_to_dict(space.languages), sort_keys=True),
    )


def space_from_row(row: Sequence[Any]) -> Space:
    """The space a row of ``SPACE_COLUMNS`` holds."""
    return Space(
        space_id=row[0],
        title=row[1],
        host=row[2],
        created_at=float(row[3]),
        state=SpaceState(row[4]),
        visibility=Visibility(row[5]),
        duration=float(row[6]),
        speakers=tuple(json.loads(row[7] or "[]")),
        error=row[8],
        progress=json.loads(row[9] or "{}"),
        partial=bool(row[10]),
        run=int(row[11]),
        published=bool(row[12]),
        node=row[13] or "",
        language=str(row[14] or "auto"),
        languages=languages_from_dict(json.loads(row[15] or "{}")),
    )


def turn_rows(space_id: str, turns: Sequence[Turn], first_seq: int = 0) -> Iterator[TurnRow]:
    """A transcript's turns as rows of ``turns``, numbered from ``first_seq``."""
    for seq, turn in enumerate(turns, start=first_seq):
        yield TurnRow(space_id, seq, turn.speaker, turn.start, turn.end, turn.text, turn.language)
