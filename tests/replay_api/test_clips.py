"""GET /spaces/{id}/clip: a moment to share, as audio cut by ffmpeg plus its captions."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from replay_api import clips
from spaces.exceptions import InvalidInput
from spaces.models import Space

from .conftest import Recording, ffprobe_duration, publish


def test_clip_json_links_audio_and_captions(
    local_client: TestClient, local_published: Space, recording: Recording, tmp_path: Path
) -> None:
    sid = local_published.space_id
    body = local_client.get(f"/spaces/{sid}/clip", params={"start": 4.0, "end": 7.0}).json()
    assert body["text"] == "Thanks Alice, I brought the ten of clubs."
    assert [t["speaker"] for t in body["turns"]] == ["bob"]
    assert body["links"]["replay"] == f"/spaces/{sid}/replay?t=4.00"

    audio = local_client.get(body["links"]["audio"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/ogg"
    assert "attachment" in audio.headers["content-disposition"]
    assert ffprobe_duration(audio.content, tmp_path, ".ogg") == pytest.approx(3.0, abs=0.1)

    m4a = local_client.get(body["links"]["audio_m4a"])
    assert m4a.status_code == 200 and m4a.headers["content-type"] == "audio/mp4"
    assert ffprobe_duration(m4a.content, tmp_path, ".m4a") == pytest.approx(3.0, abs=0.15)

    vtt = local_client.get(body["links"]["captions"]).text
    assert vtt.startswith("WEBVTT")
    # Times start at the clip's start, like its audio.
    assert "00:00:00.000 --> " in vtt and "<v bob>Thanks Alice," in vtt


def test_clip_end_is_clamped_to_the_space(local_client: TestClient, local_published: Space, tmp_path: Path) -> None:
    response = local_client.get(f"/spaces/{local_published.space_id}/clip/audio", params={"start": 18.0, "end": 60.0})
    assert response.status_code == 200
    assert ffprobe_duration(response.content, tmp_path, ".ogg") == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"start": 5, "end": 4}, 400),
        ({"start": 5, "end": 5}, 400),
        ({"start": 25, "end": 30}, 400),
        ({"start": -1, "end": 3}, 422),
        ({"start": "nan", "end": 3}, 422),
        ({"start": 1}, 422),
        ({"start": 1, "end": 2, "format": "wav"}, 422),
    ],
)
def test_bad_clips(local_client: TestClient, local_published: Space, params: dict[str, object], status: int) -> None:
    for path in ("clip", "clip/audio", "clip/captions.vtt"):
        response = local_client.get(f"/spaces/{local_published.space_id}/{path}", params=params)
        if "format" in params and path != "clip/audio":
            continue
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["message"]


def test_clip_length_is_capped() -> None:
    assert clips.check_window(10, 310, 1000) == (10, 310)
    with pytest.raises(InvalidInput, match="at most 300"):
        clips.check_window(10, 310.5, 1000)
    # An unknown duration (0) does not clamp.
    assert clips.check_window(10, 20, 0) == (10, 20)


def test_clip_from_s3_reads_the_replay_through_a_presigned_url(
    s3_app: FastAPI, s3_client: TestClient, recording: Recording, tmp_path: Path
) -> None:
    space = publish(s3_app.state.catalog, s3_app.state.blobs, recording)
    response = s3_client.get(f"/spaces/{space.space_id}/clip/audio", params={"start": 11.5, "end": 14.5})
    assert response.status_code == 200
    assert ffprobe_duration(response.content, tmp_path, ".ogg") == pytest.approx(3.0, abs=0.1)


def test_clip_text_is_the_words_heard_not_the_neighbours_it_touches(
    local_client: TestClient, local_published: Space, recording: Recording
) -> None:
    """A window that touches a neighbouring word (times rounded to ms) does not take it in."""
    queen, of, hearts = (w for w in recording.words if 9.4 < w.start < 10.0 and w.text != "the")
    sid = local_published.space_id
    clip = local_client.get(f"/spaces/{sid}/clip", params={"start": queen.start, "end": hearts.start + 0.0004})
    assert clip.json()["text"] == "queen of"
    clip = local_client.get(f"/spaces/{sid}/clip", params={"start": of.start - 0.0004, "end": hearts.end})
    assert clip.json()["text"] == "of hearts."
    vtt = local_client.get(f"/spaces/{sid}/clip/captions.vtt", params={"start": queen.start, "end": of.end + 0.0004})
    assert "<v alice>queen of\n" in vtt.text
