"""A job's environment: what every job needs, built once per worker process.

Jobs take only ids (rq habit): the settings, blob store and catalog they work
against come from here. ``spaces worker`` is the entry point that configures
the environment; tests start real worker processes with their own.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from faster_whisper import WhisperModel

from spaces import layout
from spaces.blobstore import BlobStore, open_blob_store
from spaces.catalog import Catalog, open_catalog
from spaces.exceptions import NotFound
from spaces.models import Manifest, Track
from spaces.settings import Settings
from transcribe.model import load_model


@dataclass(frozen=True)
class Environment:
    settings: Settings
    blobs: BlobStore
    catalog: Catalog

    def manifest(self, space_id: str) -> Manifest:
        return layout.read_manifest(self.blobs, space_id)

    def track(self, space_id: str, track_id: str) -> Track:
        return layout.read_track(self.blobs, space_id, track_id)

    def duration(self, manifest: Manifest) -> float:
        """The space's length on the room clock: until the end event, else until the last audio."""
        if manifest.ended_at is not None:
            return max(0.0, manifest.ended_at - manifest.started_at)
        return max((self.track(manifest.space_id, t).end for t, _ in manifest.tracks), default=0.0)

    def language(self, space_id: str) -> str:
        """The space's language as set: by ``spaces import`` in its manifest, else when opened (catalog)."""
        language = self.manifest(space_id).language
        if language == "auto":  # a live space: the SFU's manifest does not carry it
            try:
                language = self.catalog.get_space(space_id).language
            except NotFound:
                pass
        return language

    def model(self, *, passes: int = 1, name: str | None = None, threads: int | None = None) -> WhisperModel:
        """The Whisper model the settings name, or ``name`` (loaded once per process).

        With ``passes``, that many run side by side, sharing the process's
        CPU share (:attr:`Settings.model_threads`) between them, unless
        ``threads`` says how many threads each pass has.
        """
        s = self.settings
        return load_model(
            s.whisper_model if name is None else name,
            device=s.whisper_device,
            compute_type=s.whisper_compute_type,
            cpu_threads=threads or max(1, s.model_threads // passes),
            passes=passes,
        )

    def read_json(self, key: str) -> Any:
        return json.loads(self.blobs.get(key))

    def write_json(self, key: str, data: Any) -> None:
        # Sorted keys and fixed separators: the same input gives the same bytes.
        body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self.blobs.put(key, body.encode(), content_type="application/json")


@functools.cache
def environment() -> Environment:
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    catalog.create_schema()
    return Environment(settings=settings, blobs=open_blob_store(settings), catalog=catalog)
