"""The stored layout's rules: one form of track id whoever records, sorted manifests, old ids still read."""

from __future__ import annotations

import json

from spaces import keys, layout
from spaces.blobstore import BlobStore
from spaces.models import Manifest, Segment, Track


def test_track_ids_keep_speakers_of_one_slug_apart() -> None:
    assert layout.track_id(0, "alice") == "00-alice"
    assert layout.track_id(1, "Dr. Who?") == "01-Dr_Who_"
    assert layout.track_id(2, "") == "02-speaker"
    assert layout.track_id(3, "ann b") != layout.track_id(4, "ann/b")
    assert all(keys.is_valid_id(layout.track_id(99, name)) for name in ("x" * 200, "é ü", "a\nb"))


def test_new_space_ids_are_distinct_and_key_safe() -> None:
    ids = {layout.new_space_id() for _ in range(100)}
    assert len(ids) == 100 and all(keys.is_valid_id(i) for i in ids)


def test_new_space_ids_never_look_like_an_option() -> None:
    # One url-safe token in 64 begins with "-": in 3,000 draws all would
    # miss one with a chance of about 1e-21.
    assert not any(layout.new_space_id().startswith("-") for _ in range(3000))


def test_manifests_are_written_sorted_and_read_back(blob_store: BlobStore) -> None:
    manifest = Manifest("s1", "Cards", "ann", 1000.0, tracks=(("00-ann", "ann"),), ended_at=1060.0)
    layout.put_manifest(blob_store, manifest)
    body = blob_store.get(keys.manifest("s1"))
    assert body == json.dumps(json.loads(body), sort_keys=True).encode()
    assert layout.read_manifest(blob_store, "s1") == manifest


def test_track_ids_of_earlier_imports_still_read(blob_store: BlobStore) -> None:
    # Imports once named tracks ``t{i}-name``; ids come from the manifest and are never parsed.
    track = Track("t0-alice", "alice", (Segment(0, keys.segment("s1", "t0-alice", 0), 0.0, 10.0),))
    layout.put_track(blob_store, "s1", track)
    assert layout.read_track(blob_store, "s1", "t0-alice") == track
