"""Deleting a space and erasing a speaker, through the API, with real workers, on both backends."""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import boto3
import numpy as np
import pytest
from fastapi.testclient import TestClient

from replay_api.app import create_app
from spaces import keys, queue, tokens
from spaces.blobstore import BlobStore
from spaces.blobstore.s3 import S3BlobStore
from spaces.catalog import Catalog
from spaces.consent import issue_erasure
from spaces.exceptions import NotFound, TokenError
from spaces.models import Manifest, Space, SpaceState, Transcript, Turn, Word
from spaces.settings import Settings
from tests.speech import Space as SpeechSpace
from tests.support.services import MotoServer
from tests.support.workers import Workers, finished, import_files, stores, wait_for

pytestmark = pytest.mark.slow

#: Every table with a ``space_id`` column; deletion must leave no row in any.
TABLES = ("spaces", "space_speakers", "space_names", "space_bans", "space_erasures", "space_retention", "turns")


@pytest.fixture
def api(backend_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(backend_settings), follow_redirects=False) as client:
        yield client


def host_token(settings: Settings, space: Space) -> str:
    return tokens.issue(
        settings.secret_key, space_id=space.space_id, role=tokens.Role.HOST, identity=space.host, ttl=600
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rows_of(catalog: Catalog, space_id: str) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        rows = catalog._execute(f"SELECT COUNT(*) FROM {table} WHERE space_id = ?", (space_id,))  # type: ignore[attr-defined]
        counts[table] = int(rows[0][0])
    return counts


def filled_space(settings: Settings, files: dict[str, Path], catalog: Catalog) -> Space:
    """An imported space with a row in every table: turns, names, bans, an erasure, a retention."""
    space = import_files(settings, files)
    word = Word(0.5, 0.9, "zeppelin", "alice")
    catalog.replace_turns(space.space_id, [Turn("alice", (word,))])
    catalog.claim_name(space.space_id, "alice", "tok-1")
    catalog.ban(space.space_id, token_id="tok-2", address="10.0.0.9")
    catalog.request_erasure(space.space_id, "carol", now=time.time())
    catalog.set_retention(space.space_id, 30, ["mix"])
    catalog.set_state(space.space_id, SpaceState.READY)
    return space


def wait_gone(catalog: Catalog, space_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            catalog.get_space(space_id)
        except NotFound:
            return
        time.sleep(0.2)
    raise TimeoutError(f"space {space_id} still there after {timeout}s")


def test_delete_leaves_no_object_and_no_row(
    backend_settings: Settings, backend_workers: Workers, api: TestClient, two_speakers: SpeechSpace
) -> None:
    settings = backend_settings
    blobs, catalog = stores(settings)
    doomed = filled_space(settings, dict(two_speakers), catalog)
    other = filled_space(settings, dict(two_speakers), catalog)
    other_blobs = list(blobs.list(keys.space_prefix(other.space_id)))
    assert all(rows_of(catalog, doomed.space_id).values())
    assert [h.space_id for h in catalog.search("zeppelin", limit=10)] != []

    # Only the host deletes: a listener's token and no token are refused, nothing changes.
    listener = tokens.issue(
        settings.secret_key, space_id=doomed.space_id, role=tokens.Role.LISTENER, identity="lee", ttl=600
    )
    assert api.delete(f"/spaces/{doomed.space_id}", headers=bearer(listener)).status_code == 403
    assert api.delete(f"/spaces/{doomed.space_id}").status_code == 401
    assert api.delete(f"/spaces/{doomed.space_id}", headers=bearer(host_token(settings, other))).status_code == 403
    assert catalog.get_space(doomed.space_id).state is SpaceState.READY

    r = api.delete(f"/spaces/{doomed.space_id}", headers=bearer(host_token(settings, doomed)))
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "deleting"
    # From the answer on, the space is gone as far as anyone can see.
    assert api.get(f"/spaces/{doomed.space_id}").status_code == 404
    assert doomed.space_id not in [s["id"] for s in api.get("/spaces").json()["items"]]
    again = api.delete(f"/spaces/{doomed.space_id}", headers=bearer(host_token(settings, doomed)))
    assert again.status_code == 404

    backend_workers.start()
    wait_gone(catalog, doomed.space_id)
    assert list(blobs.list(keys.space_prefix(doomed.space_id))) == []
    assert rows_of(catalog, doomed.space_id) == dict.fromkeys(TABLES, 0)
    assert [h.space_id for h in catalog.search("zeppelin", limit=10)] == [other.space_id]
    assert api.get(f"/spaces/{doomed.space_id}").status_code == 404
    assert api.delete(f"/spaces/{doomed.space_id}", headers=bearer(host_token(settings, doomed))).status_code == 404
    # The other space: untouched.
    assert list(blobs.list(keys.space_prefix(other.space_id))) == other_blobs
    assert all(rows_of(catalog, other.space_id).values())


def test_delete_removes_every_version_on_a_versioned_bucket(
    settings: Settings, moto_server: MotoServer, s3_bucket: str, workers: Workers, two_speakers: SpeechSpace
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1")
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    settings = replace(settings, s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint)
    blobs, catalog = stores(settings)
    assert isinstance(blobs, S3BlobStore)
    space = filled_space(settings, dict(two_speakers), catalog)
    prefix = keys.space_prefix(space.space_id)
    # Old versions and a delete marker: what a plain delete would leave restorable.
    manifest = blobs.get(keys.manifest(space.space_id))
    blobs.put(keys.manifest(space.space_id), manifest)
    blobs.put(keys.transcript(space.space_id), b"{}")
    s3.delete_object(Bucket=s3_bucket, Key=keys.transcript(space.space_id))
    versions = blobs.versions(prefix)
    assert len(versions) > len(list(blobs.list(prefix)))

    with TestClient(create_app(settings)) as api:
        r = api.delete(f"/spaces/{space.space_id}", headers=bearer(host_token(settings, space)))
        assert r.status_code == 202, r.text
    s3_workers = Workers(settings)  # ``workers`` (same queue) cleans the queue up
    try:
        s3_workers.start()
        wait_gone(catalog, space.space_id)
    finally:
        s3_workers.stop_all()
    assert blobs.versions(prefix) == []
    assert s3.list_object_versions(Bucket=s3_bucket, Prefix=prefix).get("Versions", []) == []
    assert rows_of(catalog, space.space_id) == dict.fromkeys(TABLES, 0)


# --- erasure -----------------------------------------------------------------------------


def processed(settings: Settings, workers: Workers, files: dict[str, Path]) -> Space:
    blobs, catalog = stores(settings)
    space = import_files(settings, files)
    workers.start()
    queue.enqueue_finalize(settings, space.space_id)
    done = wait_for(catalog, space.space_id, finished)
    assert done.state is SpaceState.READY, done.error
    return done


def transcript_of(blobs: BlobStore, space_id: str) -> Transcript:
    return Transcript.from_dict(json.loads(blobs.get(keys.transcript(space_id))))


def wait_erased(catalog: Catalog, space_id: str, speaker: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if catalog.erasures(space_id).get(speaker) == "erased":
            return
        time.sleep(0.2)
    raise TimeoutError(f"{speaker} not erased from {space_id}: {catalog.get_space(space_id)}")


def level_dbfs(path: Path, start: float, end: float) -> float:
    """RMS level of a stretch of an audio file, dB relative to full scale."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(stream)])
    part = samples[int(start * rate) : int(end * rate)].astype(np.float64)
    rms = math.sqrt(float(np.mean(part**2))) if part.size else 0.0
    return 20 * math.log10(max(rms, 1e-10))


def assert_erased(settings: Settings, space: Space, before: Transcript, tmp_path: Path, speaker: str = "bob") -> None:
    """Every target of the issue, checked on what is stored."""
    blobs, catalog = stores(settings)
    sid = space.space_id
    manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(sid))))
    (track_id,) = [t for t, s in manifest.erased if s == speaker]
    after = transcript_of(blobs, sid)
    # Zero of their words in the transcript, captions and search; the others' unchanged to the millisecond.
    assert [w for w in after.words if w.speaker == speaker] == []
    kept = [w.to_dict() for w in before.words if w.speaker != speaker]
    assert [w.to_dict() for w in after.words] == kept
    theirs = [t for t in before.turns if t.speaker == speaker]
    assert [(g.speaker, g.start, g.end, g.reason) for g in after.gaps] == [
        (speaker, t.start, t.end, "erased") for t in theirs
    ]
    said = {w.text.strip(".,").lower() for t in theirs for w in t.words}
    vtt = blobs.get(keys.captions(sid, "vtt")).decode()
    srt = blobs.get(keys.captions(sid, "srt")).decode()
    assert f"<v {speaker}>" not in vtt and f"{speaker}:" not in srt
    assert "schedule" not in vtt.lower() and "schedule" not in srt.lower()
    assert catalog.search("project schedule", limit=10) == []
    assert [h.speaker for h in catalog.search("wonderful book", limit=10)] == ["alice"]
    assert catalog.talk_times(sid).get(speaker) is None
    assert "schedule" in said
    # Their objects gone: segments, track.json, words, levels, clips.
    assert list(blobs.list(keys.track_prefix(sid, track_id))) == []
    for key in (keys.words(sid, track_id), keys.levels(sid, track_id), keys.context_clips(sid, track_id)):
        assert not blobs.exists(key), key
    others = [t for t, s in manifest.tracks]
    assert others and all(blobs.exists(keys.context_clips(sid, t)) for t in others)
    # The remix: silence where they spoke alone (every turn of theirs here is alone).
    replay = tmp_path / "replay.ogg"
    blobs.download(keys.replay(sid, "ogg"), replay)
    for turn in theirs:
        assert level_dbfs(replay, turn.start + 0.1, turn.end - 0.1) < -60, turn
    assert level_dbfs(replay, before.turns[0].start, before.turns[0].end) > -40


def test_erasure_by_the_speakers_own_link(
    backend_settings: Settings,
    backend_workers: Workers,
    api: TestClient,
    two_speakers: SpeechSpace,
    tmp_path: Path,
) -> None:
    settings = backend_settings
    blobs, catalog = stores(settings)
    space = processed(settings, backend_workers, dict(two_speakers))
    before = transcript_of(blobs, space.space_id)
    replay = tmp_path / "before.ogg"
    blobs.download(keys.replay(space.space_id, "ogg"), replay)
    bob_turn = next(t for t in before.turns if t.speaker == "bob")
    assert level_dbfs(replay, bob_turn.start + 0.1, bob_turn.end - 0.1) > -40

    # Bob's own join token gets him his erasure link; the link erases him.
    bob = tokens.issue(settings.secret_key, space_id=space.space_id, role=tokens.Role.SPEAKER, identity="bob", ttl=600)
    r = api.post(f"/spaces/{space.space_id}/erasure-link", headers=bearer(bob))
    assert r.status_code == 200, r.text
    link = r.json()
    assert link["speaker"] == "bob" and link["expires_in"] == settings.erasure_ttl
    r = api.delete(link["url"].removeprefix(settings.api_url))
    assert r.status_code == 202, r.text
    assert r.json()["speaker"] == "bob"
    detail = api.get(f"/spaces/{space.space_id}").json()
    assert {s["name"]: s["erasure"] for s in detail["speakers"]}["bob"] in ("erasing", "erased")
    assert "erase:bob" in detail["progress"]

    wait_erased(catalog, space.space_id, "bob")
    detail = api.get(f"/spaces/{space.space_id}").json()
    assert detail["erased"] == ["bob"]
    assert detail["progress"]["erase:bob"] == 1.0
    assert {s["name"]: s["erasure"] for s in detail["speakers"]} == {"alice": None, "bob": "erased"}
    assert_erased(settings, space, before, tmp_path)
    transcript = api.get(f"/spaces/{space.space_id}/transcript").json()
    assert [g["reason"] for g in transcript["gaps"]] == ["erased"]
    assert all(t["speaker"] == "alice" for t in transcript["turns"])

    # Asking again is the same erasure: one job, nothing rewritten.
    snapshot = blobs.get(keys.transcript(space.space_id))
    r = api.delete(f"/spaces/{space.space_id}/speakers/bob", headers=bearer(host_token(settings, space)))
    assert r.status_code == 202
    q = queue.pipeline_queue(settings)
    assert q.count == 0
    assert blobs.get(keys.transcript(space.space_id)) == snapshot
    slug = queue.speaker_slug("bob")
    done_jobs = [j for j in q.finished_job_registry.get_job_ids() if f"erase-{slug}" in j]
    assert sorted(j.rsplit("-", 1)[-1] for j in done_jobs) == sorted([slug, "words", "mix", "audio", "done"])


def test_erasure_links_erase_no_one_else(settings: Settings, workers: Workers, two_speakers: SpeechSpace) -> None:
    """Refused links change nothing: no erasure recorded, no job, every object in place."""
    blobs, catalog = stores(settings)
    space = import_files(settings, dict(two_speakers))
    other = import_files(settings, dict(two_speakers))
    for s in (space, other):
        catalog.set_state(s.space_id, SpaceState.READY)
    objects = list(blobs.list(keys.space_prefix(space.space_id)))
    secret = settings.secret_key
    sid = space.space_id
    alice_link = issue_erasure(secret, space_id=sid, speaker="alice", ttl=600)
    other_link = issue_erasure(secret, space_id=other.space_id, speaker="bob", ttl=600)
    expired = issue_erasure(secret, space_id=sid, speaker="bob", ttl=60, now=time.time() - 3600)
    forged = issue_erasure("another-secret", space_id=sid, speaker="bob", ttl=600)
    listener = tokens.issue(secret, space_id=sid, role=tokens.Role.LISTENER, identity="bob", ttl=600)
    bob_speaker = tokens.issue(secret, space_id=sid, role=tokens.Role.SPEAKER, identity="bob", ttl=600)
    with TestClient(create_app(settings)) as api:
        url = f"/spaces/{sid}/speakers/bob"
        assert api.delete(url, headers=bearer(alice_link)).status_code == 403  # someone else
        assert api.delete(url, headers=bearer(other_link)).status_code == 404  # another space
        assert api.delete(url, headers=bearer(expired)).status_code == 401
        assert api.delete(url, headers=bearer(forged)).status_code == 401
        assert api.delete(url, headers=bearer(listener)).status_code == 403
        assert api.delete(url).status_code == 401
        # A join token is not an erasure link, nor an erasure link a join token or host token.
        assert api.delete(url, headers=bearer(bob_speaker)).status_code == 403
        assert api.delete(f"/spaces/{sid}", headers=bearer(alice_link)).status_code == 403
        assert (
            api.post(f"/spaces/{sid}/tokens", json={"role": "listener"}, headers=bearer(alice_link)).status_code == 401
        )
        # A link cannot be minted for someone else by a speaker.
        r = api.post(f"/spaces/{sid}/erasure-link", params={"speaker": "alice"}, headers=bearer(bob_speaker))
        assert r.status_code == 403
    with pytest.raises(TokenError):
        tokens.verify(secret, alice_link)
    assert catalog.erasures(sid) == {} and catalog.erasures(other.space_id) == {}
    assert queue.pipeline_queue(settings).count == 0
    assert list(blobs.list(keys.space_prefix(space.space_id))) == objects


def test_export_gives_a_speaker_their_words_and_audio(settings: Settings, two_speakers: SpeechSpace) -> None:
    blobs, catalog = stores(settings)
    space = import_files(settings, dict(two_speakers))
    sid = space.space_id
    words = [Word(1.0, 1.4, "hello", "alice"), Word(6.0, 6.5, "schedule", "bob"), Word(6.6, 7.0, "ahead", "bob")]
    transcript = Transcript(sid, 15.0, ("alice", "bob"), (Turn("alice", words[:1]), Turn("bob", tuple(words[1:]))))
    blobs.put(keys.transcript(sid), json.dumps(transcript.to_dict()).encode())
    catalog.set_state(sid, SpaceState.READY)
    manifest = Manifest.from_dict(json.loads(blobs.get(keys.manifest(sid))))
    (bob_track,) = [t for t, s in manifest.tracks if s == "bob"]
    segments = {k: blobs.get(k) for k in blobs.list(keys.track_prefix(sid, bob_track)) if k.endswith(".ogg")}
    secret = settings.secret_key
    bob_link = issue_erasure(secret, space_id=sid, speaker="bob", ttl=600)
    bob_join = tokens.issue(secret, space_id=sid, role=tokens.Role.SPEAKER, identity="bob", ttl=600)
    alice_link = issue_erasure(secret, space_id=sid, speaker="alice", ttl=600)
    with TestClient(create_app(settings)) as api:
        for credential in (host_token(settings, space), bob_link, bob_join):
            r = api.get(f"/spaces/{sid}/export", params={"speaker": "bob"}, headers=bearer(credential))
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/zip"
            with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
                body = json.loads(archive.read("words.json"))
                assert [w["text"] for w in body["words"]] == ["schedule", "ahead"]
                assert {w["speaker"] for w in body["words"]} == {"bob"}
                audio = {a["file"]: archive.read(a["file"]) for a in body["audio"]}
            assert sorted(audio.values()) == sorted(segments.values()) and segments
        assert (
            api.get(f"/spaces/{sid}/export", params={"speaker": "bob"}, headers=bearer(alice_link)).status_code == 403
        )
        assert api.get(f"/spaces/{sid}/export", params={"speaker": "bob"}).status_code == 401
        assert (
            api.get(
                f"/spaces/{sid}/export", params={"speaker": "zoe"}, headers=bearer(host_token(settings, space))
            ).status_code
            == 404
        )


def test_cli_deletes_and_erases(
    settings: Settings,
    workers: Workers,
    two_speakers: SpeechSpace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from spaces import cli
    from tests.support.workers import use_env

    use_env(settings, monkeypatch)
    blobs, catalog = stores(settings)
    space = processed(settings, workers, dict(two_speakers))
    before = transcript_of(blobs, space.space_id)
    assert cli.main(["erase", space.space_id, "bob", "--timeout", "240"]) == 0
    assert "bob erased from" in capsys.readouterr().out
    after = transcript_of(blobs, space.space_id)
    assert [w.to_dict() for w in after.words] == [w.to_dict() for w in before.words if w.speaker != "bob"]
    assert cli.main(["erase", space.space_id, "zoe"]) == 2
    assert "no speaker 'zoe'" in capsys.readouterr().err
    assert cli.main(["delete", space.space_id, "--timeout", "120"]) == 0
    assert list(blobs.list(keys.space_prefix(space.space_id))) == []
    assert rows_of(catalog, space.space_id) == dict.fromkeys(TABLES, 0)
    assert cli.main(["delete", space.space_id]) == 2  # twice: not found
    assert "no space" in capsys.readouterr().err
