"""Retention: the dry run lists, the real run deletes what is not kept, bad values are refused at start."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from spaces import cli, keys, queue
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.exceptions import ConfigError, NotFound
from spaces.models import Space, SpaceState, Turn, Word
from spaces.settings import Settings
from tests.speech import Space as SpeechSpace
from tests.support.workers import Workers, import_files, stores, use_env

DAY = 86400.0


def aged(
    settings: Settings,
    files: dict[str, Path],
    catalog: Catalog,
    blobs: BlobStore,
    *,
    days: float,
    state: SpaceState = SpaceState.READY,
) -> Space:
    """An imported space with every kind of output, created ``days`` ago."""
    space = import_files(settings, files)
    sid = space.space_id
    for key in (
        keys.replay(sid, "ogg"),
        keys.replay(sid, "m4a"),
        keys.transcript(sid),
        keys.captions(sid, "vtt"),
        keys.words(sid, "00-alice"),
        keys.levels(sid, "00-alice"),
    ):
        blobs.put(key, b"x")
    catalog.replace_turns(sid, [Turn("alice", (Word(1.0, 1.5, "quokka", "alice"),))])
    space = replace(catalog.get_space(sid), created_at=time.time() - days * DAY, state=state)
    catalog.put_space(space)
    return space


def kinds_left(blobs: BlobStore, space_id: str) -> set[str]:
    rest = [k[len(keys.space_prefix(space_id)) :] for k in blobs.list(keys.space_prefix(space_id))]
    return {k.split("/")[0] if "/" in k else k for k in rest}


def test_retention_dry_run_then_real_run(
    backend_settings: Settings,
    backend_workers: Workers,
    two_speakers: SpeechSpace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = backend_settings
    blobs, catalog = stores(settings)
    files = dict(two_speakers)
    old = aged(settings, files, catalog, blobs, days=40)
    young = aged(settings, files, catalog, blobs, days=10)
    kept_longer = aged(settings, files, catalog, blobs, days=40)
    catalog.set_retention(kept_longer.space_id, 100)
    short = aged(settings, files, catalog, blobs, days=5)
    catalog.set_retention(short.space_id, 1)  # keeps nothing: the whole space goes
    live = aged(settings, files, catalog, blobs, days=40, state=SpaceState.LIVE)
    use_env(settings, monkeypatch)
    monkeypatch.setenv("SPACES_RETENTION_DAYS", "30")
    monkeypatch.setenv("SPACES_RETENTION_KEEP", "mix,transcript")
    everything = {s.space_id: kinds_left(blobs, s.space_id) for s in (old, young, kept_longer, short, live)}
    assert everything[old.space_id] == {
        "manifest.json",
        "tracks",
        "words",
        "replay.ogg",
        "replay.m4a",
        "transcript.json",
        "captions.vtt",
    }

    assert cli.main(["retention", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if not line.startswith(" ")}
    assert listed == {old.space_id, short.space_id}, out
    assert "would delete tracks, words" in out and "would delete the whole space" in out
    assert f"    {keys.track_prefix(old.space_id, '00-alice')}" in out
    assert {s: kinds_left(blobs, s) for s in everything} == everything  # a dry run deletes nothing

    assert cli.main(["retention"]) == 0
    assert kinds_left(blobs, old.space_id) == {
        "manifest.json",
        "replay.ogg",
        "replay.m4a",
        "transcript.json",
        "captions.vtt",
    }
    assert [h.space_id for h in catalog.search("quokka", limit=10) if h.space_id == old.space_id] == [old.space_id]
    for untouched in (young, kept_longer, live):
        assert kinds_left(blobs, untouched.space_id) == everything[untouched.space_id]
    backend_workers.start()
    deadline = time.monotonic() + 120
    while True:
        try:
            catalog.get_space(short.space_id)
        except NotFound:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert list(blobs.list(keys.space_prefix(short.space_id))) == []

    assert cli.main(["retention", "--dry-run"]) == 0
    assert "nothing to delete" in capsys.readouterr().out


def test_the_sweep_is_scheduled_once_per_slot(settings: Settings, workers: Workers) -> None:
    first = queue.schedule_retention(settings, now=1_000_000.0)
    second = queue.schedule_retention(settings, now=1_000_010.0)
    assert first.id == second.id == f"retention--{1_000_000 // 3600 + 1}"
    assert first.id in queue.pipeline_queue(settings).scheduled_job_registry.get_job_ids()


@pytest.mark.parametrize("value", ["0", "-3", "abc", "nan", "inf", " "])
def test_retention_that_is_not_a_positive_number_is_refused_at_start(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if value.strip():
        with pytest.raises(ConfigError, match="SPACES_RETENTION_DAYS must be a positive number of days"):
            Settings.from_env({"SPACES_RETENTION_DAYS": value})
        monkeypatch.setenv("SPACES_RETENTION_DAYS", value)
        assert cli.main(["retention", "--dry-run"]) == 2
        assert "SPACES_RETENTION_DAYS must be a positive number of days" in capsys.readouterr().err
    else:
        assert Settings.from_env({"SPACES_RETENTION_DAYS": value}).retention_period() is None
    with pytest.raises(ConfigError, match="unknown"):
        Settings.from_env({"SPACES_RETENTION_KEEP": "mix,everything"})
