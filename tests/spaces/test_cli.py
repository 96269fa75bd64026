"""The ``spaces`` command as a user meets it: help, list, status, reprocess (no workers needed)."""

from __future__ import annotations

import uuid

import pytest

from spaces import cli, queue
from spaces.catalog import Catalog, open_catalog
from spaces.models import Space, SpaceState, Visibility
from spaces.settings import Settings
from tests.support.workers import use_env


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's environment: the test's data directory and queue."""
    return use_env(settings, monkeypatch)


@pytest.fixture
def catalog(env: Settings) -> Catalog:
    cat = open_catalog(env)
    cat.create_schema()
    return cat


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_shows_what_to_do_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "Record, transcribe and replay live audio spaces" in out
    assert "The core never imports" not in out and "``" not in out  # no internal docstring
    assert "examples:" in out
    for command in ("spaces up", "spaces import --title", "spaces list", "spaces status", "spaces reprocess"):
        assert command in out, command
    with pytest.raises(SystemExit):
        cli.main(["import", "--help"])
    assert 'spaces import --title "Cards night" alice=alice.wav bob=bob.ogg' in capsys.readouterr().out


def test_list_shows_the_newest_spaces(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    catalog.put_space(
        Space(
            "a1",
            "Cards night",
            "alice",
            1_764_600_000.0,
            state=SpaceState.READY,
            duration=75.3,
            speakers=("alice", "bob"),
        )
    )
    catalog.put_space(
        Space(
            "b2",
            "Secret plans",
            "carol",
            1_764_600_100.0,
            state=SpaceState.PROCESSING,
            visibility=Visibility.PRIVATE,
            duration=3725.0,
            speakers=("carol",),
        )
    )
    code, out, _ = _run(capsys, "list")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split() == ["ID", "CREATED", "STATE", "LENGTH", "TITLE", "SPEAKERS"]
    # Newest first; private ones too (this is the operator's view), marked.
    assert first.split()[0] == "b2" and "processing" in first and "1:02:05" in first
    assert "Secret plans (private)" in first and first.endswith("carol")
    assert second.split()[0] == "a1" and "ready" in second and "1:15" in second
    assert "Cards night" in second and second.endswith("alice, bob")
    code, out, _ = _run(capsys, "list", "--state", "ready", "--limit", "5")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["a1"]


def test_status_tells_length_speakers_and_replay(
    env: Settings, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog.put_space(
        Space(
            "c3",
            "Cards night",
            "alice",
            1_764_600_000.0,
            state=SpaceState.READY,
            duration=75.3,
            speakers=("alice", "bob"),
            progress={"transcribe:alice": 1.0},
        )
    )
    code, out, _ = _run(capsys, "status", "c3")
    assert code == 0
    assert "state       ready" in out
    assert "length      1:15" in out
    assert "speakers    alice, bob" in out
    assert f"replay      {env.api_url}/spaces/c3/replay" in out
    assert "transcribing alice" in out and "transcribe:alice" not in out


def test_an_id_that_begins_with_a_dash_is_reached_after_double_dash(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spaces stored before ids stopped beginning with "-" stay reachable, and the help says how."""
    catalog.put_space(Space("-d4", "Cards night", "alice", 1_764_600_000.0, state=SpaceState.READY))
    code, out, _ = _run(capsys, "status", "--", "-d4")
    assert code == 0 and out.startswith("-d4  'Cards night'")
    with pytest.raises(SystemExit):
        cli.main(["erase", "--help"])
    assert "begins with '-' goes after '--'" in capsys.readouterr().out


def test_reprocess_starts_a_run_of_its_own(env: Settings, catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    """Not "ready" before it starts, and none of the last run's progress as its own."""
    space_id = uuid.uuid4().hex[:16]  # its run counter lives in the shared Redis
    catalog.put_space(
        Space(
            space_id,
            "Cards night",
            "alice",
            1.0,
            state=SpaceState.READY,
            duration=15.0,
            speakers=("alice",),
            progress={"transcribe:alice": 1.0, "mix": 1.0},
        )
    )
    connection = queue.connect(env)
    try:
        code, out, err = _run(capsys, "reprocess", space_id, "--no-wait")
        assert code == 0 and out.strip() == space_id
        assert f"reprocessing {space_id} (run 1)" in err
        code, out, _ = _run(capsys, "status", space_id)
        assert "state       processing, run 1" in out
        assert "100.0" not in out and "mixing" not in out  # the last run's progress is gone
        # The last run's replay is served meanwhile, and said to be.
        assert f"{env.api_url}/spaces/{space_id}/replay  (the last complete run's)" in out
        assert queue.pipeline_queue(env, connection).count == 1  # its finalize, waiting for a worker
    finally:
        connection.delete(f"spaces:runs:{space_id}")
        queue.pipeline_queue(env, connection).delete(delete_jobs=True)
