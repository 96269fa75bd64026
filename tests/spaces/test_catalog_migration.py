"""A catalog made before spaces had a node gets the column, and keeps its rows."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import psycopg

from spaces.catalog.postgres import PostgresCatalog
from spaces.catalog.sqlite import SqliteCatalog

OLD_SPACES = """
CREATE TABLE spaces (
    space_id TEXT PRIMARY KEY, title TEXT NOT NULL, host TEXT NOT NULL, created_at REAL NOT NULL,
    state TEXT NOT NULL, visibility TEXT NOT NULL, duration REAL NOT NULL DEFAULT 0,
    speakers TEXT NOT NULL DEFAULT '[]', error TEXT, progress TEXT NOT NULL DEFAULT '{}',
    partial INTEGER NOT NULL DEFAULT 0
);
INSERT INTO spaces (space_id, title, host, created_at, state, visibility)
VALUES ('old1', 'Before nodes', 'ann', 1.0, 'ready', 'public');
"""


def test_sqlite_catalog_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SPACES)
    catalog = SqliteCatalog(path)
    catalog.create_schema()
    catalog.create_schema()  # again: idempotent
    old = catalog.get_space("old1")
    assert old.title == "Before nodes" and old.node == ""
    catalog.put_space(replace(old, node="n2"))
    assert catalog.get_space("old1").node == "n2"


def test_postgres_catalog_is_migrated(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(OLD_SPACES.replace("REAL", "DOUBLE PRECISION"))
    catalog = PostgresCatalog(pg_url)
    try:
        catalog.create_schema()
        catalog.create_schema()
        old = catalog.get_space("old1")
        assert old.title == "Before nodes" and old.node == ""
        catalog.put_space(replace(old, node="n2"))
        assert catalog.get_space("old1").node == "n2"
    finally:
        catalog.close()
