"""Cutting a moment out of a replay with ffmpeg, for sharing.

The clip is re-encoded rather than stream-copied: Opus in Ogg can only be cut
on page boundaries without it, which is up to a second off. Cuts are bounded
in length and in how many run at once, since each one is an ffmpeg process.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import threading
from pathlib import Path

from spaces import keys
from spaces.blobstore import BlobStore
from spaces.exceptions import Busy, InvalidInput, StorageError
from spaces.formats import AudioFormat

log = logging.getLogger(__name__)

#: The longest clip, seconds: a moment to share, not a second replay.
MAX_CLIP_SECONDS = 300.0
#: ffmpeg processes cutting at once, per API process; more get 429 at once.
MAX_CONCURRENT_CUTS = 2
#: What a refused client is told to wait: about one short clip's cut.
RETRY_AFTER_SECONDS = 2
_FFMPEG_TIMEOUT = 60.0

_cuts = threading.BoundedSemaphore(MAX_CONCURRENT_CUTS)


def check_window(start: float, end: float, duration: float) -> tuple[float, float]:
    """The clip's bounds, ``end`` clamped to the space; ``InvalidInput`` if unusable."""
    if duration > 0:
        if start >= duration:
            raise InvalidInput(f"start {start:g} s is past the end of the space ({duration:g} s)")
        end = min(end, duration)
    if end <= start:
        raise InvalidInput("'end' must be after 'start'")
    if end - start > MAX_CLIP_SECONDS:
        raise InvalidInput(f"a clip is at most {MAX_CLIP_SECONDS:g} s long")
    return start, end


def cut(blobs: BlobStore, space_id: str, fmt: AudioFormat, start: float, end: float) -> bytes:
    """The encoded audio of ``[start, end)`` of the space's replay, in the replay's encoding."""
    # Never wait for a slot: a waiting request holds one of the server's
    # worker threads, and 120 of them waiting starved every other route
    # (a plain GET took 9.6 s). Refused at once instead; the client retries.
    if not _cuts.acquire(blocking=False):
        raise Busy(
            f"{MAX_CONCURRENT_CUTS} clips are being cut; try again in {RETRY_AFTER_SECONDS} s",
            retry_after=RETRY_AFTER_SECONDS,
        )
    try:
        with tempfile.TemporaryDirectory(prefix="spaces-clip-") as tmp:
            source = _source(blobs, keys.replay(space_id, fmt), Path(tmp))
            return _ffmpeg(source, Path(tmp) / f"clip.{fmt}", fmt, start, end)
    finally:
        _cuts.release()


def _source(blobs: BlobStore, key: str, work: Path) -> str:
    """What ffmpeg reads: a presigned URL (it seeks with HTTP ranges) or a local copy."""
    url = blobs.presigned_url(key, expires=300)
    if url is not None:
        blobs.size(key)  # a clean 404 if the rendition is missing
        return url
    path = work / Path(key).name
    blobs.download(key, path)
    return str(path)


def _ffmpeg(source: str, out: Path, fmt: AudioFormat, start: float, end: float) -> bytes:
    # -ss before -i seeks the input, then decodes from there: fast and exact.
    command = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-ss", f"{start:.3f}", "-t", f"{end - start:.3f}", "-i", source,
        "-vn", "-map_metadata", "-1", "-c:a", fmt.codec, "-b:a", str(fmt.bit_rate),
        *(arg for name, value in {**fmt.codec_options, **fmt.container_options}.items() for arg in (f"-{name}", value)),
        "-f", fmt.container, str(out),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, timeout=_FFMPEG_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as e:
        raise StorageError("cutting the clip took too long") from e
    if result.returncode != 0 or not out.exists():
        log.error("ffmpeg failed to cut a clip: %s", result.stderr.decode(errors="replace")[-500:])
        raise StorageError("could not cut the clip", retryable=False)
    return out.read_bytes()
