"""A recorded track's audio: its segments downloaded and decoded one at a time, placed on the room clock."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from spaces.models import Track
from transcribe.audio import SAMPLE_RATE, SampleType, Timeline, decode
from transcribe.exceptions import AudioError
from workers.environment import Environment

log = logging.getLogger(__name__)


def load_track_audio(
    env: Environment, space_id: str, track: Track, *, dtype: SampleType = np.float32
) -> tuple[float, np.ndarray, list[str]]:
    """Room time of the first sample, the track (16 kHz mono, ``dtype``), and per-segment errors.

    A segment that does not decode is skipped and reported, so one damaged
    file costs its own seconds, not the track. Memory peaks at about one copy
    of the track: the pieces go into a :class:`Timeline`, which releases them
    as it joins them.
    """
    errors: list[str] = []
    line = Timeline()
    for offset, samples in track_pieces(env, space_id, track, errors, dtype=dtype):
        line.add(offset, samples)
    start, audio = line.build()
    if not audio.size:
        return track.start, np.zeros(0, dtype=dtype), errors
    return start, audio, errors


def whole_track(env: Environment, space_id: str, track: Track, errors: list[str]) -> Iterator[tuple[float, np.ndarray]]:
    """The track as one item, read when a reader takes it (:func:`transcribe.read_ahead.read_ahead`):
    room time of its first sample, its int16 samples; its segments' decoding errors appended to ``errors``."""
    start, audio, found = load_track_audio(env, space_id, track, dtype=np.int16)
    errors += found
    yield start, audio


def room_track(env: Environment, space_id: str, track: Track, errors: list[str]) -> Iterator[tuple[float, np.ndarray]]:
    """The track as :class:`transcribe.room_audio.RoomAudio` reads it: its segments decoded one at a
    time (:func:`track_pieces`, int16), a track of none an empty piece at its start; its segments'
    decoding errors appended to ``errors``."""
    pieces = 0
    for piece in track_pieces(env, space_id, track, errors, dtype=np.int16):
        pieces += 1
        yield piece
    if not pieces:
        yield track.start, np.zeros(0, dtype=np.int16)


def track_pieces(
    env: Environment,
    space_id: str,
    track: Track,
    errors: list[str],
    *,
    rate: int = SAMPLE_RATE,
    dtype: SampleType = np.float32,
) -> Iterator[tuple[float, np.ndarray]]:
    """The track's segments, decoded one at a time: ``(room time of the first sample, samples)``.

    As :func:`transcribe.audio.timeline` places them: where two segments
    overlap (clock jitter, codec priming), the later one wins, so that summing
    the pieces adds no sample twice. A segment that does not decode is
    skipped and its error appended to ``errors``. Samples are mono at
    ``rate`` Hz, as ``dtype``.
    """
    held: tuple[float, np.ndarray] | None = None
    # Segments come in recording order: one held back is enough to trim it.
    for offset, samples in _decoded(env, space_id, track, errors, rate, dtype):
        if held is not None:
            keep = round((offset - held[0]) * rate) if offset > held[0] else len(held[1])
            yield held[0], held[1][:keep]
        held = (offset, samples)
    if held is not None:
        yield held


def _decoded(
    env: Environment, space_id: str, track: Track, errors: list[str], rate: int, dtype: SampleType
) -> Iterator[tuple[float, np.ndarray]]:
    with tempfile.TemporaryDirectory(prefix="spaces-track-") as tmp:
        for segment in track.segments:
            path = Path(tmp) / f"{segment.seq:06d}.ogg"
            env.blobs.download(segment.key, path)
            try:
                samples = decode(path, rate=rate, dtype=dtype)
            except AudioError as e:
                log.warning(
                    "space %s track %s segment %d skipped: %s",
                    space_id,
                    track.track_id,
                    segment.seq,
                    e,
                    extra={"space_id": space_id},
                )
                errors.append(f"segment {segment.seq}: {e}")
                continue
            finally:
                path.unlink(missing_ok=True)
            yield segment.offset, samples
