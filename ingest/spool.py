"""The local spool: what the SFU has recorded and not yet handed over.

Layout, one directory per space that is live or not yet finalized::

    {spool_dir}/{space_id}/room.json                         RoomRecord
    {spool_dir}/{space_id}/tracks/{track_id}/{seq:06d}.ogg   segment audio
    {spool_dir}/{space_id}/tracks/{track_id}/{seq:06d}.json  SegmentMeta

A segment's ``.json`` is written before its ``.ogg`` is created and
rewritten when it closes and when its upload is confirmed; only then is
the ``.ogg`` deleted. The whole directory goes once the space is
finalized, so any directory found at start-up is unfinished work.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from spaces import keys
from spaces.models import SpaceState


@dataclass(frozen=True)
class RoomRecord:
    space_id: str
    title: str
    host: str
    visibility: str
    started_at: float
    """Wall-clock time (Unix seconds) of room-clock zero."""
    phase: SpaceState = SpaceState.LIVE
    """``LIVE`` while recording; ``ENDED`` once every segment is closed and synced."""
    tracks: tuple[tuple[str, str], ...] = ()
    """(track_id, speaker) in the order speakers first published."""
    consents: tuple[tuple[str, float, bool], ...] = ()
    """(speaker, room time, recorded?): each publisher's recording choice, as made."""
    unrecorded: tuple[tuple[str, float, float], ...] = ()
    """(speaker, start, end) on the room clock: speech of speakers who chose not to be recorded."""

    def with_track(self, track_id: str, speaker: str) -> RoomRecord:
        if any(t == track_id for t, _ in self.tracks):
            return self
        return replace(self, tracks=(*self.tracks, (track_id, speaker)))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = str(self.phase)
        data["tracks"] = [list(t) for t in self.tracks]
        data["consents"] = [list(c) for c in self.consents]
        data["unrecorded"] = [list(u) for u in self.unrecorded]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoomRecord:
        return cls(
            space_id=str(data["space_id"]),
            title=str(data["title"]),
            host=str(data["host"]),
            visibility=str(data["visibility"]),
            started_at=float(data["started_at"]),
            phase=SpaceState(data.get("phase", SpaceState.LIVE)),
            tracks=tuple((str(t), str(s)) for t, s in data.get("tracks", ())),
            consents=tuple((str(s), float(t), bool(r)) for s, t, r in data.get("consents", ())),
            unrecorded=tuple((str(s), float(a), float(b)) for s, a, b in data.get("unrecorded", ())),
        )


@dataclass(frozen=True)
class SegmentMeta:
    track_id: str
    speaker: str
    seq: int
    offset: float
    """Room-clock seconds of the segment's first sample."""
    duration: float = 0.0
    closed: bool = False
    uploaded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentMeta:
        return cls(
            track_id=str(data["track_id"]),
            speaker=str(data["speaker"]),
            seq=int(data["seq"]),
            offset=float(data["offset"]),
            duration=float(data.get("duration", 0.0)),
            closed=bool(data.get("closed", False)),
            uploaded=bool(data.get("uploaded", False)),
            extra=dict(data.get("extra", {})),
        )


def write_json_atomic(path: Path, data: dict[str, Any], *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SpaceSpool:
    """One space's directory on the spool."""

    def __init__(self, root: Path, space_id: str) -> None:
        if not keys.is_valid_id(space_id):
            raise ValueError(f"invalid space id {space_id!r}")
        self.space_id = space_id
        self.dir = root / space_id

    @property
    def room_file(self) -> Path:
        return self.dir / "room.json"

    def exists(self) -> bool:
        return self.room_file.is_file()

    def write_room(self, record: RoomRecord) -> None:
        write_json_atomic(self.room_file, record.to_dict())

    def read_room(self) -> RoomRecord:
        return RoomRecord.from_dict(json.loads(self.room_file.read_text()))

    def track_dir(self, track_id: str) -> Path:
        return self.dir / "tracks" / track_id

    def segment_audio(self, track_id: str, seq: int) -> Path:
        return self.track_dir(track_id) / f"{seq:06d}.ogg"

    def segment_meta_path(self, track_id: str, seq: int) -> Path:
        return self.track_dir(track_id) / f"{seq:06d}.json"

    def write_meta(self, meta: SegmentMeta) -> None:
        write_json_atomic(self.segment_meta_path(meta.track_id, meta.seq), meta.to_dict())

    def segments(self, track_id: str) -> list[SegmentMeta]:
        """Every segment of a track with a readable meta file, by seq."""
        out = []
        tdir = self.track_dir(track_id)
        if not tdir.is_dir():
            return []
        for path in sorted(tdir.glob("[0-9]*.json")):
            try:
                out.append(SegmentMeta.from_dict(json.loads(path.read_text())))
            except (ValueError, KeyError, TypeError):
                continue
        return sorted(out, key=lambda m: m.seq)

    def next_seq(self, track_id: str) -> int:
        segs = self.segments(track_id)
        return segs[-1].seq + 1 if segs else 0

    def track_ids(self) -> list[str]:
        tracks = self.dir / "tracks"
        return sorted(p.name for p in tracks.iterdir() if p.is_dir()) if tracks.is_dir() else []

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def unfinished_spaces(root: Path) -> list[str]:
    """Space ids with a spool directory: rooms a previous process did not finalize."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and keys.is_valid_id(p.name))
