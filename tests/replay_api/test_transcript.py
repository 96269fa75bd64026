"""Captions (WebVTT, SRT) and the word-level transcript with ?from=&to= windows."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from spaces.models import Space
from tests.support.replay import Recording


def test_webvtt(client: TestClient, published: Space) -> None:
    response = client.get(f"/spaces/{published.space_id}/captions.vtt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/vtt; charset=utf-8"
    text = response.text
    assert text.startswith("WEBVTT")
    assert "<v bob>Thanks Alice, I brought the ten of clubs.</v>" in text or "<v bob>Thanks Alice," in text
    etag = response.headers["etag"]
    again = client.get(f"/spaces/{published.space_id}/captions.vtt", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_srt(client: TestClient, published: Space) -> None:
    response = client.get(f"/spaces/{published.space_id}/captions.srt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-subrip; charset=utf-8"
    assert response.text.startswith("1\n00:00:00,500 --> ")


def test_whole_transcript(client: TestClient, published: Space, recording: Recording) -> None:
    body = client.get(f"/spaces/{published.space_id}/transcript").json()
    assert body["space_id"] == published.space_id
    assert body["speakers"] == ["alice", "bob"]
    words = [w for t in body["turns"] for w in t["words"]]
    assert [w["text"] for w in words] == [w.text for w in recording.words]
    assert words[0]["start"] == pytest.approx(recording.words[0].start, abs=0.001)
    assert {w["speaker"] for w in body["turns"][1]["words"]} == {"bob"}
    assert body["window_start"] is None


def test_window(client: TestClient, published: Space, recording: Recording) -> None:
    ten = recording.word("ten")
    body = client.get(f"/spaces/{published.space_id}/transcript", params={"from": ten.start, "to": ten.end}).json()
    assert [(t["speaker"], [w["text"] for w in t["words"]]) for t in body["turns"]] == [("bob", ["ten"])]
    assert body["window_start"] == pytest.approx(ten.start)
    only_from = client.get(f"/spaces/{published.space_id}/transcript", params={"from": 15.5}).json()
    assert [t["speaker"] for t in only_from["turns"]] == ["alice"]
    past_the_end = client.get(f"/spaces/{published.space_id}/transcript", params={"from": 5000, "to": 6000})
    assert past_the_end.status_code == 200 and past_the_end.json()["turns"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"from": -1},
        {"to": -0.5},
        {"from": "nan"},
        {"to": "inf"},
        {"from": "1e308"},
        {"from": "ten"},
        {"from": 10, "to": 5},
        {"from": 5, "to": 5},
    ],
)
def test_bad_windows(client: TestClient, published: Space, params: dict[str, object]) -> None:
    response = client.get(f"/spaces/{published.space_id}/transcript", params=params)
    assert response.status_code in (400, 422)
    assert response.json()["error"]["message"]
