"""The one writer of a space's stored layout: ids, slugs and manifests.

The SFU (live rooms), ``spaces import``, the sweeper (spaces lost with
their node) and erasure all create or rewrite spaces, tracks and manifests;
they do it through here, so a space looks the same whoever made it. Key
paths are in ``spaces.keys``.

Track ids are read from the manifest and never parsed, so spaces stored
under earlier id rules (``t{i}-name`` from imports) stay readable as they
are.
"""

from __future__ import annotations

import json
import re
import secrets

from spaces import keys
from spaces.blobstore import BlobStore
from spaces.models import Manifest, Track

_NOT_IN_SLUG = re.compile(r"[^A-Za-z0-9_-]+")
_SLUG_CHARS = 40


def new_space_id() -> str:
    """A fresh, unguessable space id (16 url-safe characters, never a leading "-")."""
    # One id in 64 would begin with "-", and a command line takes such a word
    # for an option: `spaces erase -Xy... bob` would fail. Spaces stored with
    # one stay reachable (after `--`); new ones never get one.
    while (space_id := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return space_id


def slug(name: str) -> str:
    """A key-safe stand-in for a speaker's name, kept readable for whoever lists the store."""
    return _NOT_IN_SLUG.sub("_", name)[:_SLUG_CHARS] or "speaker"


def track_id(index: int, speaker: str) -> str:
    """The id of a space's ``index``-th track (0-based): the index keeps two speakers of one slug apart."""
    return f"{index:02d}-{slug(speaker)}"


def encode(document: Manifest | Track) -> bytes:
    # Sorted keys: the same manifest gives the same bytes, so rewrites are idempotent.
    return json.dumps(document.to_dict(), sort_keys=True).encode()


def put_manifest(blobs: BlobStore, manifest: Manifest) -> None:
    blobs.put(keys.manifest(manifest.space_id), encode(manifest), content_type="application/json")


def put_track(blobs: BlobStore, space_id: str, track: Track) -> None:
    blobs.put(keys.track_manifest(space_id, track.track_id), encode(track), content_type="application/json")


def read_manifest(blobs: BlobStore, space_id: str) -> Manifest:
    """The space's manifest; ``NotFound`` if there is none."""
    return Manifest.from_dict(json.loads(blobs.get(keys.manifest(space_id))))


def read_track(blobs: BlobStore, space_id: str, track_id: str) -> Track:
    """A track's manifest (its segments); ``NotFound`` if there is none."""
    return Track.from_dict(json.loads(blobs.get(keys.track_manifest(space_id, track_id))))
