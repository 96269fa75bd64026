"""What a speaker sent, and what the SFU recorded of it, in seconds.

Shared by the SFU fault tests that compare the two: ``CountingTrack`` counts
the audio handed to the encoder; ``stored_tracks`` reads a finished space
back from the blob store and checks each segment plays its stated duration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from av import AudioFrame

from ingest.client import PcmTrack
from spaces import keys, layout
from spaces.blobstore import BlobStore
from spaces.models import Track
from tests.ingest.audio import decode_ogg

RATE = 48000


class CountingTrack(PcmTrack):
    """A ``PcmTrack`` that counts the samples it hands to the encoder: the seconds sent."""

    def __init__(self, samples: npt.NDArray[np.int16], *, loop: bool = False) -> None:
        super().__init__(samples, loop=loop)
        self.samples_sent = 0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        self.samples_sent += frame.samples
        return frame

    @property
    def seconds_sent(self) -> float:
        return self.samples_sent / RATE


@dataclass(frozen=True)
class StoredTrack:
    track: Track
    audio: dict[int, bytes]
    """Segment bytes by seq, as stored."""

    @property
    def seconds(self) -> float:
        return sum(s.duration for s in self.track.segments)


def stored_tracks(blobs: BlobStore, space_id: str) -> dict[str, StoredTrack]:
    """Every track of a finished space by speaker, each segment checked to play its duration.

    Also checked: seqs run 0..n-1 and no two segments cover the same stretch
    of the room clock (a segment stored twice under two seqs would).
    """
    out = {}
    for track_id, speaker in layout.read_manifest(blobs, space_id).tracks:
        track = Track.from_dict(json.loads(blobs.get(keys.track_manifest(space_id, track_id))))
        assert [s.seq for s in track.segments] == list(range(len(track.segments))), track.segments
        audio = {s.seq: blobs.get(s.key) for s in track.segments}
        for seg in track.segments:
            played = len(decode_ogg(audio[seg.seq])) / RATE
            assert abs(played - seg.duration) < 0.05, f"{seg.key} plays {played:.3f} s, not {seg.duration:.3f} s"
        ordered = sorted(track.segments, key=lambda s: s.offset)
        for a, b in zip(ordered, ordered[1:], strict=False):
            assert b.offset >= a.offset + a.duration - 0.03, f"{a.key} and {b.key} overlap"
        out[speaker] = StoredTrack(track, audio)
    return out
