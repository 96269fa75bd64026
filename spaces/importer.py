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
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spaces import keys, layout, names
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.exceptions import InvalidInput
from spaces.languages import AUTO, check_language
from spaces.models import Manifest, Segment, Space, SpaceState, Track, Visibility

log = logging.getLogger(__name__)

SEGMENT_SECONDS = 10
BITRATE = "64k"
"""Opus bitrate of the stored tracks: what the SFU asks browsers for (``SPACES_SFU_OPUS_BITRATE``'s
default); at 32 kb/s Whisper mishears a tenth more words (README, "Recording bitrate")."""

#: ``(speaker, share of their file stored)``, as each file is encoded and stored.
ImportProgress = Callable[[str, float], None]

#: Share of a track's import that is encoding (the rest: storing its segments).
_ENCODING_SHARE = 0.9


@dataclass(frozen=True)
class TrackFile:
    speaker: str
    path: Path
    offset: float = 0.0


def ffmpeg_input(path: Path) -> str:
    """A user's file as ffmpeg/ffprobe must be given it: as a ``file:`` URL.

    A bare name is read as an option when it starts with "-" (``spaces
    import x=-h`` ran ``ffprobe -h``) and as another protocol when it looks
    like one (``concat:``, ``http:``, ``pipe:``); ``file:`` is neither.
    """
    return f"file:{path}"


def probe_duration(path: Path) -> float:
    """Seconds of audio in ``path``; ``InvalidInput`` naming the file if there is none."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path}: the file is empty")
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_type:format=duration",
            "-of",
            "json",
            ffmpeg_input(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info = json.loads(result.stdout or "{}") if result.returncode == 0 else {}
    except ValueError:
        info = {}
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
    speakers = [t.speaker for t in tracks]
    for name in speakers:
        if not names.is_valid_name(name):
            raise InvalidInput(f"speaker name {name!r} must be 1 to {names.MAX_NAME_CHARS} characters on one line")
    if len(set(speakers)) != len(speakers):
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
    on_progress: ImportProgress | None = None,
) -> Space:
    """Store the tracks and register the space as recorded; the caller enqueues it.

    ``on_progress`` hears how far each speaker's file is (0 to 1);
    ``language``: a Whisper code, or ``auto`` (each speaker's detected).
    """
    language = check_language(language)
    if not names.is_valid_title(title):
        raise InvalidInput(f"the title must be 1 to {names.MAX_TITLE_CHARS} characters on one line")
    if host and not names.is_valid_name(host):
        raise InvalidInput(f"the host's name {host!r} must be 1 to {names.MAX_NAME_CHARS} characters on one line")
    durations = validate(tracks)
    space_id = layout.new_space_id()
    started_at = time.time()
    report: ImportProgress = on_progress or (lambda speaker, fraction: None)
    try:
        stored = [
            _store_track(blobs, space_id, layout.track_id(i, t.speaker), t, duration, _of(report, t.speaker))
            for i, (t, duration) in enumerate(zip(tracks, durations, strict=True))
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
        layout.put_manifest(blobs, manifest)
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


def _store_track(
    blobs: BlobStore,
    space_id: str,
    track_id: str,
    source: TrackFile,
    duration: float,
    progress: Callable[[float], None],
) -> Track:
    progress(0.0)
    with tempfile.TemporaryDirectory(prefix="spaces-import-") as tmp:
        work = Path(tmp)
        listing = work / "segments.csv"
        _encode(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-nostats",
                "-progress",
                "pipe:1",
                "-i",
                ffmpeg_input(source.path),
                "-vn",
                "-ac",
                "1",
                "-ar",
                "48000",
                "-c:a",
                "libopus",
                "-b:a",
                BITRATE,
                "-f",
                "segment",
                "-segment_time",
                str(SEGMENT_SECONDS),
                "-segment_format",
                "ogg",
                "-segment_list",
                str(listing),
                "-segment_list_type",
                "csv",
                str(work / "%06d.ogg"),
            ],
            source.path,
            work,
            lambda seconds: progress(_ENCODING_SHARE * min(1.0, seconds / duration)),
        )
        segments = []
        with listing.open() as f:
            rows = list(csv.reader(f))
        for seq, (name, start, end) in enumerate(rows):
            key = keys.segment(space_id, track_id, seq)
            blobs.put_file(key, work / name, content_type="audio/ogg")
            segments.append(
                Segment(seq=seq, key=key, offset=source.offset + float(start), duration=float(end) - float(start))
            )
            progress(_ENCODING_SHARE + (1 - _ENCODING_SHARE) * (seq + 1) / len(rows))
    if not segments:
        raise InvalidInput(f"{source.path}: no audio could be encoded")
    track = Track(track_id=track_id, speaker=source.speaker, segments=tuple(segments))
    layout.put_track(blobs, space_id, track)
    return track


def _of(report: ImportProgress, speaker: str) -> Callable[[float], None]:
    return lambda fraction: report(speaker, fraction)


def _encode(command: list[str], path: Path, work: Path, encoded: Callable[[float], None]) -> None:
    """Run ffmpeg, telling ``encoded`` how many seconds of the input it has done so far."""
    with (work / "ffmpeg.log").open("w+") as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            # -progress writes key=value blocks; out_time_us is the output's length so far.
            name, _, value = line.strip().partition("=")
            if name == "out_time_us" and value.isdigit():
                encoded(int(value) / 1e6)
        returncode = proc.wait()
        if returncode != 0:
            errors.seek(0)
            raise InvalidInput(f"{path}: ffmpeg could not read it: {errors.read().strip()[-300:]}")
