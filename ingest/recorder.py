"""Per-speaker recording: RTP packets in, Ogg/Opus segments on the spool out.

One ``TrackRecorder`` per speaker and space, kept across leave and rejoin
(a speaker has one track). Packets are written as received, never decoded.
Each segment is ~``segment_seconds`` long and placed on the room clock by
``timeline.RoomAnchor``. Inside a segment the timeline is kept by filling
short gaps (lost packets, DTX) with silence packets; a longer gap (muted,
left, network outage) closes the segment and the next one starts where the
audio resumes, so gaps are simply not covered by any segment.
"""

from __future__ import annotations

import bisect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from ingest import opus
from ingest.oggwriter import OggOpusWriter
from ingest.spool import SegmentMeta, SpaceSpool
from ingest.timeline import RoomAnchor, TimestampUnwrapper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecorderOptions:
    segment_seconds: float = 10.0
    fill_limit_seconds: float = 1.0
    """Gaps up to this long are filled with silence inside a segment."""
    page_packets: int = 10
    """Packets per Ogg page: bounds what a crash loses (10 x 20 ms)."""
    reorder_packets: int = 3
    """Packets held back to put slightly reordered arrivals in order."""


class _OpenSegment:
    def __init__(self, meta: SegmentMeta, writer: OggOpusWriter, first_sample: int) -> None:
        self.meta = meta
        self.writer = writer
        self.first_sample = first_sample
        self.next_sample = first_sample


class TrackRecorder:
    def __init__(
        self,
        spool: SpaceSpool,
        *,
        track_id: str,
        speaker: str,
        options: RecorderOptions,
        on_closed: Callable[[SegmentMeta], None],
    ) -> None:
        self.spool = spool
        self.track_id = track_id
        self.speaker = speaker
        self.options = options
        self._on_closed = on_closed
        self._seq = spool.next_seq(track_id)
        self._segment: _OpenSegment | None = None
        self._ssrc: int | None = None
        self._unwrap = TimestampUnwrapper()
        self._anchor: RoomAnchor | None = None
        self._held: list[tuple[int, bytes]] = []
        self._segment_samples = int(options.segment_seconds * opus.CLOCK_RATE)
        self._fill_limit = int(options.fill_limit_seconds * opus.CLOCK_RATE)
        self.packets = 0
        self.dropped = 0
        spool.track_dir(track_id).mkdir(parents=True, exist_ok=True)

    # --- input ---------------------------------------------------------------

    def write(self, *, ssrc: int, timestamp: int, payload: bytes, arrival: float) -> None:
        """One RTP packet's Opus payload; ``arrival`` in room-clock seconds."""
        if ssrc != self._ssrc:
            # A new RTP stream (rejoin, new publication): new timeline.
            self._drain()
            self._close_segment()
            self._ssrc = ssrc
            self._unwrap = TimestampUnwrapper()
            self._anchor = None
        sample = self._unwrap.unwrap(timestamp)
        if self._anchor is None:
            self._anchor = RoomAnchor(sample, arrival)
        self._anchor.observe(sample, arrival)
        bisect.insort(self._held, (sample, payload), key=lambda x: x[0])
        while len(self._held) > self.options.reorder_packets:
            self._emit(*self._held.pop(0))

    def pause(self) -> None:
        """The publisher stopped (left, muted): write out what is held, close the segment."""
        self._drain()
        self._close_segment()

    def close(self) -> None:
        self.pause()

    # --- segments ------------------------------------------------------------

    def _drain(self) -> None:
        while self._held:
            self._emit(*self._held.pop(0))

    def _emit(self, sample: int, payload: bytes) -> None:
        samples = opus.packet_samples(payload)
        if samples == 0:
            self.dropped += 1
            return
        seg = self._segment
        if seg is not None:
            if sample < seg.next_sample:
                # Duplicate or arrived after its slot was written: drop it.
                self.dropped += 1
                return
            gap = sample - seg.next_sample
            if gap > self._fill_limit:
                self._close_segment()
                seg = None
            elif gap > 0:
                for filler in opus.silence(gap):
                    seg.writer.write(filler, opus.packet_samples(filler))
                seg.next_sample = sample
        if seg is None:
            seg = self._open_segment(sample, payload)
        seg.writer.write(payload, samples)
        seg.next_sample = sample + samples
        self.packets += 1
        if seg.writer.duration_samples >= self._segment_samples:
            self._close_segment()

    def _open_segment(self, sample: int, first_payload: bytes) -> _OpenSegment:
        assert self._anchor is not None
        offset = self._anchor.to_room(sample)
        meta = SegmentMeta(track_id=self.track_id, speaker=self.speaker, seq=self._seq, offset=round(offset, 6))
        self._seq += 1
        # Meta first: recovery finds the offset even if we die right after.
        self.spool.write_meta(meta)
        writer = OggOpusWriter(
            self.spool.segment_audio(self.track_id, meta.seq),
            serial=random.getrandbits(32),
            channels=2 if opus.is_stereo(first_payload) else 1,
            comments={
                "SPACE": self.spool.space_id,
                "TRACK": self.track_id,
                "SPEAKER": self.speaker,
                "SEQ": str(meta.seq),
                "ROOM_OFFSET": f"{offset:.4f}",
            },
            page_packets=self.options.page_packets,
        )
        self._segment = _OpenSegment(meta, writer, sample)
        log.debug("segment %s/%06d opened at %.3f", self.track_id, meta.seq, offset)
        return self._segment

    def _close_segment(self) -> None:
        seg = self._segment
        if seg is None:
            return
        self._segment = None
        assert self._anchor is not None
        # The least-delayed packet of this segment fixes its offset; the
        # anchor moves with it so the next segment continues from there.
        offset = self._anchor.to_room(seg.first_sample) + self._anchor.rebase()
        seg.writer.close()
        meta = replace(
            seg.meta,
            offset=round(offset, 6),
            duration=round(seg.writer.duration_samples / opus.CLOCK_RATE, 6),
            closed=True,
        )
        self.spool.write_meta(meta)
        log.debug("segment %s/%06d closed: %.3f + %.3f s", self.track_id, meta.seq, meta.offset, meta.duration)
        self._on_closed(meta)
