"""``spaces import`` and ``spaces reprocess`` with real workers: progress a user can follow."""

from __future__ import annotations

import re

import pytest
from rq.job import Job, JobStatus

from spaces import cli, queue
from spaces.catalog import open_catalog
from spaces.models import SpaceState
from spaces.settings import Settings
from tests.speech import Space as SpeechSpace
from tests.support.workers import Workers, use_env

pytestmark = pytest.mark.slow

_LINE = re.compile(r"^\[ *(\d+\.\d)s\] (.*)$")


def _lines(err: str) -> list[tuple[float, str]]:
    """The progress lines (``[  1.2s] text``) of the CLI's stderr, in order."""
    return [(float(m[1]), m[2]) for m in map(_LINE.match, err.splitlines()) if m]


def test_import_then_reprocess_show_their_own_progress_in_words(
    settings: Settings,
    workers: Workers,
    two_speakers: SpeechSpace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = use_env(settings, monkeypatch)
    workers.start()
    code = cli.main(["import", "--title", "Walks", f"alice={two_speakers['alice']}", f"bob={two_speakers['bob']}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    space_id = out.splitlines()[-1]
    assert "importing 2 tracks: alice, bob" in err
    said = [text for _, text in _lines(err)]
    # Every track's steps and the space's, in words; no internal stage names.
    for step in (
        "reading alice's audio",
        "reading bob's audio",
        "measuring alice's loudness",
        "transcribing alice",
        "transcribing bob",
        "mixing the replay",
        "writing the transcript",
    ):
        assert any(text.startswith(f"{step}: done") for text in said), (step, err)
    assert not re.search(r"\b(transcribe|levels|encode):", err), err
    assert said[-1] == "ready", said[-6:]

    connection = queue.connect(env)
    try:
        code = cli.main(["reprocess", space_id])
        out, err = capsys.readouterr()
        assert code == 0, err
        # It returned once the new run was done, not at once on the last run's "ready".
        complete = Job.fetch(queue.job_id(space_id, "complete", 1), connection=connection)
        assert complete.get_status() == JobStatus.FINISHED
        lines = _lines(err)
        assert lines[0][1] == "processing" and lines[-1][1] == "ready"
        assert [text for _, text in lines].count("ready") == 1
        # Its steps are its own: none of them done before the run began.
        done = [(t, text) for t, text in lines if ": done" in text]
        assert any(text.startswith("transcribing alice: done") for _, text in done), err
        assert all(t > 0.0 for t, _ in done), err
        space = open_catalog(env).get_space(space_id)
        assert (space.state, space.run) == (SpaceState.READY, 1)
        assert space.progress["transcribe:alice"] == 1.0
    finally:
        connection.delete(f"spaces:runs:{space_id}")
