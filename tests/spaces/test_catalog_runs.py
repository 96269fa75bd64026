"""Progress and state belong to a pipeline run; both catalogs, and catalogs from before runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from spaces.catalog import Catalog
from spaces.catalog.postgres import PostgresCatalog
from spaces.catalog.sqlite import SqliteCatalog
from spaces.models import Space, SpaceState


def test_a_new_run_starts_with_no_progress_and_older_runs_are_ignored(catalog: Catalog) -> None:
    catalog.put_space(Space("s", "Cards", "ann", 1.0, state=SpaceState.READY, progress={"mix": 1.0}))
    assert catalog.start_run("s", 1)
    space = catalog.get_space("s")
    assert (space.state, space.run, space.progress, space.published) == (SpaceState.PROCESSING, 1, {}, True)
    catalog.set_progress("s", "mix", 0.5, run=1)
    # The first run's late jobs: neither their progress nor their end is the space's.
    catalog.set_progress("s", "assemble", 1.0, run=0)
    catalog.set_state("s", SpaceState.READY, run=0)
    catalog.set_state("s", SpaceState.FAILED, error="old", run=0)
    assert not catalog.start_run("s", 0)
    space = catalog.get_space("s")
    assert (space.state, space.progress, space.error) == (SpaceState.PROCESSING, {"mix": 0.5}, None)
    # The same run again (its finalize retried) keeps its progress.
    assert catalog.start_run("s", 1)
    assert catalog.get_space("s").progress == {"mix": 0.5}
    catalog.set_state("s", SpaceState.READY, run=1)
    assert catalog.get_space("s").state is SpaceState.READY
    # A put_space of an older copy does not take the run back.
    catalog.put_space(Space("s", "Cards", "ann", 1.0, state=SpaceState.READY))
    assert catalog.get_space("s").run == 1


def test_a_failed_first_run_is_not_published(catalog: Catalog) -> None:
    catalog.put_space(Space("f", "Cards", "ann", 1.0, state=SpaceState.RECORDED))
    assert catalog.start_run("f", 0)
    catalog.set_state("f", SpaceState.FAILED, error="mix failed", run=0)
    assert not catalog.get_space("f").published
    assert catalog.start_run("f", 1)
    catalog.set_state("f", SpaceState.READY, run=1)
    assert catalog.get_space("f").published


_OLD_SPACES = (
    "CREATE TABLE spaces (space_id TEXT PRIMARY KEY, title TEXT NOT NULL, host TEXT NOT NULL, "
    "created_at REAL NOT NULL, state TEXT NOT NULL, visibility TEXT NOT NULL, duration REAL NOT NULL DEFAULT 0, "
    "speakers TEXT NOT NULL DEFAULT '[]', error TEXT, progress TEXT NOT NULL DEFAULT '{}', "
    "partial INTEGER NOT NULL DEFAULT 0)"
)
_OLD_ROWS = (
    "INSERT INTO spaces (space_id, title, host, created_at, state, visibility) VALUES "
    "('done', 'Done', 'ann', 1, 'ready', 'public'), ('busy', 'Busy', 'ann', 2, 'processing', 'public')"
)


def _upgraded(catalog: Catalog) -> None:
    catalog.create_schema()
    catalog.create_schema()  # idempotent
    done, busy = catalog.get_space("done"), catalog.get_space("busy")
    assert (done.run, done.published) == (0, True)
    assert (busy.run, busy.published) == (0, False)


def test_a_catalog_from_before_runs_is_upgraded_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(_OLD_SPACES)
        conn.execute(_OLD_ROWS)
    catalog = SqliteCatalog(path)
    try:
        _upgraded(catalog)
    finally:
        catalog.close()


def test_a_catalog_from_before_runs_is_upgraded_postgres(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_OLD_SPACES.replace("REAL", "DOUBLE PRECISION"))
        conn.execute(_OLD_ROWS)
    catalog = PostgresCatalog(pg_url)
    try:
        _upgraded(catalog)
    finally:
        catalog.close()
