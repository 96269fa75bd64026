"""Retention: what of an old space is deleted, and what is kept.

``SPACES_RETENTION_DAYS`` (or a space's own, set by its host) says how old
a space may get; ``SPACES_RETENTION_KEEP`` (or the space's own) which of
its outputs outlive that. :func:`plan` lists what a sweep would delete,
for ``spaces retention --dry-run`` and for the sweep job itself
(``workers.retention.sweep``), which runs on the queue's scheduler.

Kinds, by key (DESIGN.md's storage layout):

* ``tracks``: ``tracks/`` (each speaker's raw segments);
* ``words``: ``words/`` (per-track words, levels, clips);
* ``mix``: ``replay.*`` and ``live/`` (the replay audio, live HLS);
* ``transcript``: ``transcript.json``, ``captions.*`` and the space's search rows.

Keeping nothing deletes the whole space (as ``DELETE /spaces/{id}``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from spaces import keys, queue
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.models import SpaceState
from spaces.settings import Settings

#: Spaces in these states are never swept: live, being processed, or going anyway.
_UNTOUCHED = {
    SpaceState.CREATED,
    SpaceState.LIVE,
    SpaceState.ENDED,
    SpaceState.RECORDED,
    SpaceState.PROCESSING,
    SpaceState.DELETING,
}


@dataclass(frozen=True)
class Expiry:
    """What a sweep deletes of one space."""

    space_id: str
    age_days: float
    whole: bool
    """The whole space goes (nothing is kept)."""
    kinds: tuple[str, ...]
    """Kinds of output dropped (all of them when ``whole``)."""
    keys: tuple[str, ...]
    """Blob keys deleted."""


def kind_of(space_id: str, key: str) -> str | None:
    """The retention kind of a blob key of the space; None for the manifest (kept while anything is)."""
    rest = key[len(keys.space_prefix(space_id)) :]
    if rest.startswith("tracks/"):
        return "tracks"
    if rest.startswith("words/"):
        return "words"
    if rest.startswith(("replay.", "live/")):
        return "mix"
    if rest.startswith(("transcript.", "captions.")):
        return "transcript"
    return None


def plan(settings: Settings, catalog: Catalog, blobs: BlobStore, *, now: float) -> Iterator[Expiry]:
    """What retention would delete now, space by space, oldest first."""
    default_period = settings.retention_period()
    default_keep = settings.retention_kept()
    for space_id, created_at, state in catalog.space_ages():
        if state in _UNTOUCHED:
            continue
        own = catalog.retention(space_id)
        period, keep = (own[0] * 86400, frozenset(own[1])) if own else (default_period, default_keep)
        if period is None or created_at > now - period:
            continue
        age_days = round((now - created_at) / 86400, 2)
        stored = list(blobs.list(keys.space_prefix(space_id)))
        if not keep:
            yield Expiry(space_id, age_days, True, ("mix", "tracks", "transcript", "words"), tuple(stored))
            continue
        doomed = [k for k in stored if (kind_of(space_id, k) or "") not in keep and kind_of(space_id, k)]
        if doomed:
            kinds = tuple(sorted({kind_of(space_id, k) or "" for k in doomed}))
            yield Expiry(space_id, age_days, False, kinds, tuple(doomed))


def apply(settings: Settings, catalog: Catalog, blobs: BlobStore, expiry: Expiry) -> None:
    """Delete what ``expiry`` lists: a whole space goes through the deletion jobs."""
    if expiry.whole:
        if catalog.mark_deleting(expiry.space_id) is not None:
            queue.enqueue_deletion(settings, expiry.space_id, was_live=False)
        return
    for key in expiry.keys:
        blobs.delete(key)
    if "transcript" in expiry.kinds:  # nor can search find it
        catalog.replace_turns(expiry.space_id, [])
