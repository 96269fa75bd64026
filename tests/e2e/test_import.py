"""Done means: ``spaces up``, then ``spaces import`` of two speakers' files
yields a transcript whose words and speakers are right, served by the API
and found by search."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import duration
from tests.scoring import normalized_wer
from tests.speech import VOICES, Utterance, build_space
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

#: tiny.en itself mishears these espeak voices a little: plain faster-whisper on
#: the same files scores about 0.17 on the worst track.
MAX_WER = 0.3

UTTERANCES = [
    Utterance("alice", 0.8, "The weather was lovely this morning, so we walked down to the river."),
    Utterance("bob", 6.5, "Our team finished the project two weeks ahead of schedule."),
    Utterance("alice", 11.0, "Please remember to bring your notebook to the meeting tomorrow."),
    Utterance("bob", 16.0, "The train to the city leaves every hour from platform four."),
]
BOB_JOINS = 2.5


def test_import_transcribe_serve_and_search(stack: Stack, tmp_path: Path) -> None:
    space = build_space(
        UTTERANCES,
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=21.0,
        out_dir=tmp_path,
        starts={"bob": BOB_JOINS},
    )
    done = stack.spaces(
        "import",
        "--title",
        "Walks and trains",
        f"alice={space['alice']}",
        f"bob={space['bob']}",
        "--offset",
        f"bob={BOB_JOINS}",
    )
    assert done.returncode == 0, done.stderr
    space_id = done.stdout.strip().splitlines()[-1]
    assert f"/spaces/{space_id}/replay" in done.stdout

    meta = stack.get(f"/spaces/{space_id}").json()
    assert (meta["state"], meta["title"]) == ("ready", "Walks and trains")
    assert [s["name"] for s in meta["speakers"]] == ["alice", "bob"]
    assert all(s["talk_time"] > 3 for s in meta["speakers"])
    assert meta["duration"] == pytest.approx(21.0, abs=0.1)

    transcript = stack.get(f"/spaces/{space_id}/transcript").json()
    words = [w for turn in transcript["turns"] for w in turn["words"]]
    for speaker, truth in space.truth.items():
        said = " ".join(w["text"] for w in words if w["speaker"] == speaker)
        assert normalized_wer(" ".join(w.text for w in truth), said) < MAX_WER, (speaker, said)
    # Every utterance starts where it was placed on the room clock.
    for u in UTTERANCES:
        first = min(
            (w for w in words if w["speaker"] == u.speaker and w["start"] >= u.start - 0.5), key=lambda w: w["start"]
        )
        assert first["start"] == pytest.approx(u.start, abs=0.5), u

    vtt = stack.get(f"/spaces/{space_id}/captions.vtt").text
    assert vtt.startswith("WEBVTT") and "<v alice>" in vtt and "<v bob>" in vtt

    hits = stack.get("/search", q="platform").json()["hits"]
    assert [(h["space_id"], h["speaker"]) for h in hits] == [(space_id, "bob")]
    assert hits[0]["start"] == pytest.approx(16.0, abs=0.5)
    assert "<mark>platform</mark>" in hits[0]["snippet"]

    replay = stack.data_dir / "blobs" / "spaces" / space_id / "replay.ogg"
    assert duration(replay) == pytest.approx(meta["duration"], abs=0.05)
    assert duration(replay.with_suffix(".m4a")) == pytest.approx(meta["duration"], abs=0.05)


def test_unknown_space_is_a_json_404_and_the_api_is_documented(stack: Stack) -> None:
    response = stack.get("/spaces/doesnotexist")
    assert response.status_code == 404
    assert "doesnotexist" in response.json()["error"]["message"]
    assert "swagger" in stack.get("/docs").text.lower()
    paths = stack.get("/openapi.json").json()["paths"]
    assert {"/spaces", "/spaces/{space_id}", "/spaces/{space_id}/transcript", "/search"} <= set(paths)


def test_import_of_a_non_audio_file_names_it(stack: Stack, tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    done = stack.spaces("import", "--title", "x", f"alice={bad}")
    assert done.returncode == 2
    assert "notes.wav" in done.stderr and "not an audio file" in done.stderr
    assert stack.get("/spaces", q="x").json()["items"] == []
