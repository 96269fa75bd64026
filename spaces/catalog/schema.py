"""The catalog's tables as both backends define them, and the columns added since their first versions."""

from __future__ import annotations

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
