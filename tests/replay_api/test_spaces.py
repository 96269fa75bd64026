"""GET /spaces (cursor pages, filters) and GET /spaces/{id}, on both backends."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from spaces import keys
from spaces.models import Space, SpaceState, Turn, Word
from tests.support.replay import Recording, publish


def _seed(app: FastAPI, recording: Recording) -> list[str]:
    """Seven spaces a day apart, alternating hosts, three still processing."""
    catalog, blobs = app.state.catalog, app.state.blobs
    ids = []
    for i in range(7):
        created = 1_700_000_000.0 + i * 86_400
        if i % 3 == 2:
            sid = f"proc-{i}"
            catalog.put_space(
                Space(sid, f"Space {i}", "carol", created, state=SpaceState.PROCESSING, speakers=("carol",))
            )
        else:
            sid = publish(
                catalog, blobs, recording, space_id=f"ready-{i}", title=f"Space {i}", created_at=created
            ).space_id
        ids.append(sid)
    # Same creation time as ready-6: the id breaks the tie, so no row is skipped or repeated.
    tie = publish(catalog, blobs, recording, space_id="ready-6b", title="Tie", created_at=1_700_000_000.0 + 6 * 86_400)
    ids.append(tie.space_id)
    return ids


def test_pages_newest_first_without_gaps(client: TestClient, app: FastAPI, recording: Recording) -> None:
    _seed(app, recording)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = client.get("/spaces", params=params).json()
        seen += [s["id"] for s in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["ready-6b", "ready-6", "proc-5", "ready-4", "ready-3", "proc-2", "ready-1", "ready-0"]


def test_filters(client: TestClient, app: FastAPI, recording: Recording) -> None:
    _seed(app, recording)

    def ids(**params: object) -> list[str]:
        response = client.get("/spaces", params=params)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["items"]]

    assert ids(state="processing") == ["proc-5", "proc-2"]
    assert ids(speaker="carol") == ["proc-5", "proc-2"]
    assert ids(speaker="bob", state="ready")[:2] == ["ready-6b", "ready-6"]
    # Date range: ISO dates or Unix seconds; `until` is exclusive.
    assert ids(since="2023-11-16", until="2023-11-18") == ["ready-3", "proc-2"]
    assert ids(since=1_700_000_000 + 3 * 86_400, until=1_700_000_000 + 4 * 86_400) == ["ready-3"]
    # Text: the title, or words said anywhere in the transcript.
    assert ids(q="tie") == ["ready-6b"]
    assert ids(q="queen of hearts") == ["ready-6b", "ready-6", "ready-4", "ready-3", "ready-1", "ready-0"]
    assert ids(q='"hearts queen"') == []
    assert ids(q="zebra") == []


def test_detail_has_speakers_with_talk_time(client: TestClient, published: Space, recording: Recording) -> None:
    body = client.get(f"/spaces/{published.space_id}").json()
    assert body["id"] == published.space_id
    assert body["title"] == "Card night" and body["host"] == "alice" and body["state"] == "ready"
    assert body["duration"] == pytest.approx(20.0)
    talk = {s["name"]: s["talk_time"] for s in body["speakers"]}
    expected: dict[str, float] = {}
    for turn in recording.transcript.turns:
        expected[turn.speaker] = expected.get(turn.speaker, 0.0) + turn.end - turn.start
    assert list(talk) == ["alice", "bob"]
    assert talk == pytest.approx(expected, abs=0.01)
    assert body["links"]["audio"] == f"/spaces/{published.space_id}/audio"
    assert body["links"]["replay"] == f"/spaces/{published.space_id}/replay"
    for link in ("audio", "captions_vtt", "captions_srt", "transcript", "replay"):
        assert client.get(body["links"][link]).status_code in (200, 307), link


def test_detail_of_a_processing_space(client: TestClient, app: FastAPI) -> None:
    space = Space("busy", "Still cooking", "dana", 1.0, state=SpaceState.PROCESSING, speakers=("dana",))
    app.state.catalog.put_space(space)
    app.state.catalog.set_progress("busy", "mix", 0.5)
    body = client.get("/spaces/busy").json()
    assert body["state"] == "processing" and body["progress"] == {"mix": 0.5}
    assert [(s["name"], s["talk_time"], s["language"]) for s in body["speakers"]] == [("dana", 0.0, None)]
    assert body["speakers"][0]["erasure"] is None and body["erased"] == []
    response = client.get("/spaces/busy/transcript")
    assert response.status_code == 409
    assert "not ready" in response.json()["error"]["message"]


def test_a_space_being_reprocessed_keeps_serving_its_last_outputs(
    client: TestClient, app: FastAPI, published: Space
) -> None:
    space_id = published.space_id
    ready = client.get(f"/spaces/{space_id}/transcript").json()
    for state in (SpaceState.PROCESSING, SpaceState.FAILED):  # a reprocess running, then failed
        app.state.catalog.set_state(space_id, state)
        assert client.get(f"/spaces/{space_id}").json()["state"] == str(state)
        assert client.get(f"/spaces/{space_id}/transcript").json() == ready
        assert client.get(f"/spaces/{space_id}/captions.vtt").text.startswith("WEBVTT")
        page = client.get(f"/spaces/{space_id}/replay")
        assert page.status_code == 200 and "Preparing the replay" not in page.text
    # Without the outputs (a first run), nothing is served yet.
    app.state.blobs.delete(keys.transcript(space_id))
    assert client.get(f"/spaces/{space_id}/transcript").status_code == 409
    assert "Processing failed" in client.get(f"/spaces/{space_id}/replay").text


def test_talk_time_counts_every_turn(app: FastAPI) -> None:
    catalog = app.state.catalog
    catalog.put_space(Space("tt", "Talk", "a", 1.0, speakers=("a", "b")))
    w = [
        Word(0.0, 1.0, "hi", "a"),
        Word(1.0, 2.5, "there", "a"),
        Word(3.0, 4.0, "yo", "b"),
        Word(5.0, 5.5, "ok", "a"),
    ]
    catalog.replace_turns("tt", [Turn("a", tuple(w[:2])), Turn("b", (w[2],)), Turn("a", (w[3],))])
    assert catalog.talk_times("tt") == pytest.approx({"a": 3.0, "b": 1.0})
    assert catalog.talk_times("nobody") == {}


def test_unknown_space_is_a_json_404(client: TestClient) -> None:
    response = client.get("/spaces/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"status": 404, "message": "no space 'nope'"}}


def test_put_space_keeps_speaker_filter_in_sync(app: FastAPI, recording: Recording, client: TestClient) -> None:
    space = publish(app.state.catalog, app.state.blobs, recording, space_id="renamed")
    app.state.catalog.put_space(replace(space, speakers=("erin",)))
    assert [s["id"] for s in client.get("/spaces", params={"speaker": "erin"}).json()["items"]] == ["renamed"]
    assert client.get("/spaces", params={"speaker": "bob"}).json()["items"] == []
