"""Progress in words a user knows, with the time left (an injected clock: no waiting)."""

from __future__ import annotations

import io

from spaces.models import SpaceState
from spaces.progress import Lines, duration_text, eta_text, plural, stage_label


def test_stage_names_are_words() -> None:
    assert stage_label("transcribe:alice") == "transcribing alice"
    assert stage_label("levels:bob") == "measuring bob's loudness"
    assert stage_label("encode:carol") == "reading carol's audio"
    assert stage_label("mix") == "mixing the replay"
    assert stage_label("assemble") == "writing the transcript"
    assert stage_label("shiny:new") == "shiny new"


def test_plurals_lengths_and_time_left() -> None:
    assert [plural(n, "track") for n in (0, 1, 2)] == ["0 tracks", "1 track", "2 tracks"]
    assert [duration_text(s) for s in (0, 75.3, 3725)] == ["0:00", "1:15", "1:02:05"]
    assert [eta_text(s) for s in (0.2, 12.4, 150, 7200)] == [
        "about 1 s left",
        "about 12 s left",
        "about 2 min left",
        "about 2.0 h left",
    ]


def test_lines_show_each_step_start_quarters_with_time_left_and_done() -> None:
    out = io.StringIO()
    lines = Lines(out, started=100.0)
    lines.state(SpaceState.PROCESSING, 100.0)
    lines.step("transcribe:alice", 0.0, 101.0)
    lines.step("transcribe:alice", 0.1, 102.0)  # no new quarter: nothing to say
    lines.step("transcribe:alice", 0.5, 105.0)  # half in 4 s: 4 s left
    lines.step("transcribe:alice", 0.55, 105.5)
    lines.step("transcribe:alice", 1.0, 109.0)
    lines.step("transcribe:alice", 1.0, 110.0)  # said once
    lines.step("mix", 1.0, 110.0)  # begun and done between two looks
    lines.state(SpaceState.READY, 111.0)
    assert out.getvalue().splitlines() == [
        "[   0.0s] processing",
        "[   1.0s] transcribing alice...",
        "[   5.0s] transcribing alice: 50 %, about 4 s left",
        "[   9.0s] transcribing alice: done in 8.0 s",
        "[  10.0s] mixing the replay: done",
        "[  11.0s] ready",
    ]
