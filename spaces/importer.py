"""``spaces import``: bring a space recorded elsewhere into the pipeline.

Each speaker's file (anything ffmpeg reads) is validated first, then encoded
to Ogg/Opus segments of the same layout the SFU writes, so the pipeline has
one input format. A failure at any point removes what was written: an
import either lands whole or not at all.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spaces import keys
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.exceptions import InvalidInput
from spaces.languages import AUTO, check_language
from spaces.models import Manifest, Segment, Space, SpaceState, Track, Visibility

log = logging.getLogger(__name__)

SEGMENT_SECONDS = 10
MAX_SPEAKER_LENGTH = 64


@dataclass(frozen=True)
class TrackFile:
    speaker: str
    path: Path
    offset: float = 0.0


def new_space_id() -> str:
    return secrets.token_hex(8)


def probe_duration(path: Path) -> float:
    """Seconds of audio in ``path``; ``InvalidInput`` naming the file if there is none."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path}: the file is empty")
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=codec_type:format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    info = json.loads(result.stdout or "{}") if result.returncode == 0 else {}
    if not info.get("streams"):
        raise InvalidInput(f"{path}: not an audio file ffmpeg can read")
    duration = float(info.get("format", {}).get("duration") or 0)
    if duration <= 0:
        raise InvalidInput(f"{path}: the audio is empty")
    return duration


def validate(tracks: Sequence[TrackFile]) -> list[float]:
    """Check every file before anything is written; returns their durations."""
    if not tracks:
        raise InvalidInput("give at least one speaker=file")
    names = [t.speaker for t in tracks]
    for name in names:
        if not name.strip() or len(name) > MAX_SPEAKER_LENGTH:
            raise InvalidInput(f"speaker name {name!r} must be 1 to {MAX_SPEAKER_LENGTH} characters")
    if len(set(names)) != len(names):
        raise InvalidInput("each speaker may appear only once")
    for t in tracks:
        if t.offset < 0:
            raise InvalidInput(f"{t.speaker}: the offset must not be negative")
    return [probe_duration(t.path) for t in tracks]


def import_space(
    blobs: BlobStore,
    catalog: Catalog,
    tracks: Sequence[TrackFile],
    *,
    title: str,
    host: str = "",
    visibility: Visibility = Visibility.PUBLIC,
    language: str = AUTO,
) -> Space:
    """Store the tracks and register the space as recorded; the caller enqueues it.

    ``language``: a Whisper code, or ``auto`` (each speaker's detected).
    """
    language = check_language(language)
    validate(tracks)
    space_id = new_space_id()
    started_at = time.time()
    try:
        stored = [
            _store_track(blobs, space_id, f"t{i}-{_slug(t.speaker)}", t) for i, t in enumerate(tracks)
        ]
        end = max(track.end for track in stored)
        manifest = Manifest(
            space_id=space_id,
            title=title,
            host=host or tracks[0].speaker,
            started_at=started_at,
            visibility=visibility,
            tracks=tuple((t.track_id, t.speaker) for t in stored),
            ended_at=started_at + end,
            language=language,
        )
        blobs.put(keys.manifest(space_id), json.dumps(manifest.to_dict()).encode(),
                  content_type="application/json")
        space = Space(
            space_id=space_id,
            title=title,
            host=manifest.host,
            created_at=started_at,
            state=SpaceState.RECORDED,
            visibility=visibility,
            duration=end,
            speakers=tuple(t.speaker for t in stored),
            language=language,
        )
        catalog.put_space(space)
    except BaseException:
        blobs.delete_prefix(keys.space_prefix(space_id))
        catalog.delete_space(space_id)
        raise
    return space


def _store_track(blobs: BlobStore, space_id: str, track_id: str, source: TrackFile) -> Track:
    with tempfile.TemporaryDirectory(prefix="spaces-import-") as tmp:
        work = Path(tmp)
        listing = work / "segments.csv"
        result = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(source.path), "-vn", "-ac", "1", "-ar", "48000",
             "-c:a", "libopus", "-b:a", "32k", "-f", "segment", "-segment_time", str(SEGMENT_SECONDS),
             "-segment_format", "ogg", "-segment_list", str(listing), "-segment_list_type", "csv",
             str(work / "%06d.ogg")],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InvalidInput(f"{source.path}: ffmpeg could not read it: {result.stderr.strip()[-300:]}")
        segments = []
        with listing.open() as f:
            for seq, (name, start, end) in enumerate(csv.reader(f)):
                key = keys.segment(space_id, track_id, seq)
                blobs.put_file(key, work / name, content_type="audio/ogg")
                segments.append(
                    Segment(seq=seq, key=key, offset=source.offset + float(start),
                            duration=float(end) - float(start))
                )
    if not segments:
        raise InvalidInput(f"{source.path}: no audio could be encoded")
    track = Track(track_id=track_id, speaker=source.speaker, segments=tuple(segments))
    blobs.put(keys.track_manifest(space_id, track_id), json.dumps(track.to_dict()).encode(),
              content_type="application/json")
    return track


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:32] or "speaker"
