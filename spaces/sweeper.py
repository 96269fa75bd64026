"""The sweep: spaces of SFU nodes that died and did not come back are finalized from the blob store.

A node that stops heartbeating is dead at once (nothing is placed on it);
after ``sfu_node_grace`` seconds more, each space it held is taken over by
compare-and-set in the router (``swept``) and finalized from what is
already in the blob store: every ``track.json`` (the segments uploaded
while the room was live), a manifest marked partial, the catalog marked
recorded and partial, the pipeline enqueued. The node itself, if it ever
comes back, sees ``swept`` and sets its spool copy aside instead of
finalizing the space a second time.

What such a node had not uploaded is lost for good: at most the open
segment of each speaker (``sfu_segment_seconds``) plus any closed
segment still waiting for its upload.

Who sweeps: every pipeline worker, in rq's maintenance pass
(``SweepingWorker``), and every live SFU node with its heartbeats
(``ingest.node``). Either alone is enough; several at once are harmless,
since the claim lets one of them finalize each space, and every write is
idempotent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from spaces import keys, layout
from spaces.blobstore import BlobStore, open_blob_store
from spaces.catalog import Catalog, open_catalog
from spaces.exceptions import NotFound
from spaces.models import Manifest, SpaceState, Track
from spaces.queue import enqueue_finalize
from spaces.router import NodeRouter
from spaces.settings import Settings
from spaces.worker import PipelineWorker

log = logging.getLogger(__name__)


def finalize_from_blobs(settings: Settings, blobs: BlobStore, catalog: Catalog, space_id: str) -> bool:
    """Finalize a live space from its uploaded segments alone, as partial; False if not live.

    A space already recorded as partial and not yet transcribed has its
    pipeline enqueued again: whoever recorded it (a sweep, or its node's own
    recovery) may have died between the catalog and the queue, and the job
    id makes a second enqueue of a live or finished job a no-op.
    """
    try:
        space = catalog.get_space(space_id)
    except NotFound:
        return False
    if space.state is SpaceState.RECORDED and space.partial:
        enqueue_finalize(settings, space_id)
        return True
    if space.state not in (SpaceState.CREATED, SpaceState.LIVE):
        return False
    tracks = sorted(
        (
            Track.from_dict(json.loads(blobs.get(key)))
            for key in blobs.list(f"{keys.space_prefix(space_id)}tracks/")
            if key.endswith("/track.json")
        ),
        key=lambda t: t.track_id,
    )
    duration = max((t.end for t in tracks), default=0.0)
    try:
        manifest = layout.read_manifest(blobs, space_id)
    except NotFound:
        manifest = Manifest(
            space_id=space_id,
            title=space.title,
            host=space.host,
            started_at=space.created_at,
            visibility=space.visibility,
        )
    manifest = replace(
        manifest,
        tracks=tuple((t.track_id, t.speaker) for t in tracks),
        ended_at=manifest.started_at + duration,
        partial=True,
    )
    layout.put_manifest(blobs, manifest)
    speakers = tuple(dict.fromkeys((*space.speakers, *(t.speaker for t in tracks if t.segments))))
    catalog.put_space(
        replace(space, state=SpaceState.RECORDED, duration=round(duration, 3), speakers=speakers, partial=True)
    )
    enqueue_finalize(settings, space_id)
    log.warning(
        "space %s finalized from the blob store (its node died): %d track(s), %.1f s, partial",
        space_id,
        len(tracks),
        duration,
        extra={"space_id": space_id},
    )
    return True


class Sweeper:
    """Finds dead nodes past their grace period and finalizes their spaces."""

    def __init__(self, settings: Settings, *, router: NodeRouter | None = None) -> None:
        self.settings = settings
        self.router = router or NodeRouter.from_settings(settings)
        self._blobs: BlobStore | None = None
        self._catalog: Catalog | None = None

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:
            self._blobs = open_blob_store(self.settings)
        return self._blobs

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = open_catalog(self.settings)
        return self._catalog

    def sweep(self) -> list[str]:
        """One pass; returns the spaces this pass finalized. Errors propagate (the next pass retries)."""
        finalized = []
        for node in self.router.dead_nodes(grace=self.settings.sfu_node_grace):
            for space_id in self.router.spaces_of(node.node_id):
                if self._sweep_space(space_id, node.node_id):
                    finalized.append(space_id)
            if self.router.forget(node.node_id):
                log.info("dead SFU node %s forgotten: it held nothing more", node.node_id)
        return finalized

    def _sweep_space(self, space_id: str, dead: str) -> bool:
        try:
            space = self.catalog.get_space(space_id)
        except NotFound:
            self.router.swept(space_id, dead)
            return False
        if space.state is SpaceState.CREATED:
            # Never went live there: nothing to save; it is placed anew when someone joins.
            self.router.unassign(space_id, dead)
            return False
        if not self.router.claim_sweep(space_id, dead):
            return False  # the node handed it over itself
        return self.finish(space_id, dead)

    def finish(self, space_id: str, dead: str) -> bool:
        """Finalize a space claimed by a sweep (``swept``), then drop it from ``dead``'s list.

        Safe to repeat: the next sweep repeats it if this one dies half way,
        and so does ``dead`` itself if it comes back first.
        """
        done = finalize_from_blobs(self.settings, self.blobs, self.catalog, space_id)
        self.router.swept(space_id, dead)
        return done

    def sweep_quietly(self) -> list[str]:
        """``sweep`` for periodic callers: a failure is logged, and the next pass retries."""
        try:
            return self.sweep()
        except Exception:
            log.exception("sweep of dead SFU nodes failed; retried on the next pass")
            return []

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
        self.router.close()


class SweepingWorker(PipelineWorker):
    """An rq worker whose maintenance pass also sweeps dead SFU nodes.

    Workers run wherever the pipeline runs, so spaces are saved even when
    every SFU node is gone.
    """

    def __init__(self, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sweeper = Sweeper(settings) if settings is not None else None

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        if self._sweeper is not None:
            self._sweeper.sweep_quietly()
