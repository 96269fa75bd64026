"""GET /spaces/{id}/clip: a moment to share, as audio cut by ffmpeg plus its captions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from replay_api import clips
from spaces.captions import build_cues, shifted, to_webvtt
from spaces.exceptions import InvalidInput
from spaces.models import Space
from tests.support.replay import Recording, ffprobe_duration, publish

from .server import LiveServer


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


def test_a_full_clip_queue_refuses_at_once_and_the_api_stays_free(
    local_app: FastAPI, local_published: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every cutting slot busy, more clip requests get 429 + Retry-After at once.

    The renderers are held on an event, so "at once" is a condition: every
    extra request is answered while no slot has been freed, and a plain GET
    of the space is served meanwhile. Before, each extra request held one of
    the server's worker threads for up to 10 s waiting for a slot (then 503),
    and enough of them starved every other route.
    """
    entered = threading.Semaphore(0)
    release = threading.Event()
    render = clips._ffmpeg

    def held(*args: Any, **kwargs: Any) -> bytes:
        entered.release()
        assert release.wait(60), "the test never released the renderers"
        return render(*args, **kwargs)

    monkeypatch.setattr(clips, "_ffmpeg", held)
    space_id = local_published.space_id
    clip = f"/spaces/{space_id}/clip/audio"
    with LiveServer(local_app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        with ThreadPoolExecutor(clips.MAX_CONCURRENT_CUTS) as pool:
            cutting = [
                pool.submit(http.get, clip, params={"start": 1 + i, "end": 3 + i})
                for i in range(clips.MAX_CONCURRENT_CUTS)
            ]
            try:
                for _ in cutting:
                    assert entered.acquire(timeout=60), "a clip never reached the renderer"
                # Every slot is held now: more requests than the server has
                # worker threads (40), from many clients at once.
                with ThreadPoolExecutor(16) as extra:
                    refused = list(
                        extra.map(lambda i: http.get(clip, params={"start": i % 10, "end": i % 10 + 2}), range(60))
                    )
                plain = http.get(f"/spaces/{space_id}")
                assert not release.is_set()  # all of that was answered while the renderers were held
            finally:
                release.set()
            done = [f.result() for f in cutting]
        assert {r.status_code for r in refused} == {429}
        assert all(r.headers["retry-after"] == str(clips.RETRY_AFTER_SECONDS) for r in refused)
        assert "try again" in refused[0].json()["error"]["message"]
        assert plain.status_code == 200 and plain.json()["title"] == local_published.title
        assert [r.status_code for r in done] == [200] * clips.MAX_CONCURRENT_CUTS
        assert ffprobe_duration(done[0].content, tmp_path, ".ogg") == pytest.approx(2.0, abs=0.1)
        # The slots are free again.
        assert http.get(clip, params={"start": 4, "end": 5}).status_code == 200


def test_a_clips_captions_are_the_replays_cues(
    local_client: TestClient, local_published: Space, recording: Recording
) -> None:
    """One caption writer: a clip's cues are the replay's (as the pipeline writes them), shifted to its start."""
    sid = local_published.space_id
    replay = build_cues(recording.transcript.turns)
    assert any(len(cue.lines) == 2 for cue in replay)  # the two-line layout is exercised
    # A clip from a cue's start to a later cue's end, with no cue across either edge.
    first, last = replay[1], replay[-2]
    inside = [c for c in replay if c.start >= first.start and c.end <= last.end]
    assert all(c.end <= first.start or c.start >= first.start for c in replay)
    vtt = local_client.get(f"/spaces/{sid}/clip/captions.vtt", params={"start": first.start, "end": last.end})
    assert vtt.status_code == 200
    assert vtt.text == to_webvtt(shifted(inside, first.start))
    assert local_client.get(f"/spaces/{sid}/clip/captions.vtt", params={"start": 0, "end": 300}).text == to_webvtt(
        replay
    )
