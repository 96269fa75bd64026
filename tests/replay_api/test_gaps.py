"""The replay page and the transcript show speech kept out of the replay as marked gaps."""

from __future__ import annotations

import json
from dataclasses import replace

from fastapi import FastAPI
from fastapi.testclient import TestClient

from spaces import keys
from spaces.models import Gap
from tests.support.replay import Recording, publish


def test_erased_and_unrecorded_speech_show_as_gaps(
    local_app: FastAPI, local_client: TestClient, recording: Recording
) -> None:
    bob = [t for t in recording.transcript.turns if t.speaker == "bob"]
    kept = tuple(t for t in recording.transcript.turns if t.speaker != "bob")
    gaps = (*(Gap("bob", t.start, t.end, "erased") for t in bob), Gap("carol", 18.5, 19.5, "not_recorded"))
    transcript = replace(recording.transcript, turns=kept, gaps=gaps)
    space = publish(local_app.state.catalog, local_app.state.blobs, recording, transcript=transcript)
    local_app.state.blobs.put(
        keys.transcript(space.space_id), json.dumps(replace(transcript, space_id=space.space_id).to_dict()).encode()
    )
    page = local_client.get(f"/spaces/{space.space_id}/replay").text
    assert page.count('class="gap gap--erased"') == len(bob) == 2
    assert page.count("bob's voice and words were erased") == 2
    assert page.count('class="gap gap--not-recorded"') == 1 and "carol spoke, not recorded" in page
    # In time order among the turns: the first erased gap comes after the first turn, before the second.
    first_gap = page.index("gap--erased")
    assert page.index(f'data-s="{kept[0].start:.3f}"') < first_gap < page.index(f'data-s="{kept[1].start:.3f}"')
    body = local_client.get(f"/spaces/{space.space_id}/transcript").json()
    assert [(g["speaker"], g["reason"]) for g in body["gaps"]] == [
        ("bob", "erased"),
        ("bob", "erased"),
        ("carol", "not_recorded"),
    ]
    assert all(t["speaker"] != "bob" for t in body["turns"])
