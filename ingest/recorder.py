"""Per-speaker recording: RTP packets in, Ogg/Opus segments on the spool out.

One ``TrackRecorder`` per speaker and space, kept across leave and rejoin
(a speaker has one track). Packets are written as received, never decoded.
Each segment is ~``segment_seconds`` long and placed on the room clock by
``timeline.RoomAnchor``. Inside a segment the timeline is kept by filling
short gaps (lost packets, DTX) with silence packets; a longer gap (muted,
left, network outage) closes the segment and the next one starts where the
audio resumes, so gaps are simply not covered by any segment.

The recorder decides on the caller's thread (the event loop) and hands the
file work to a ``writer.Writer``: a page's worth of packets at a time, the
segment's metadata, its closing ``fsync``. With the room's ``ThreadWriter``
a slow disk delays the recording, never the packet path.
"""

from __future__ import annotations

import bisect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ingest import opus
from ingest.oggwriter import OggOpusWriter
from ingest.spool import SegmentMeta, SpaceSpool
from ingest.timeline import RoomAnchor, TimestampUnwrapper
from ingest.writer import InlineWriter, Writer

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
    """A segment being written: the loop side counts, the writer side owns the file."""

    def __init__(self, meta: SegmentMeta, first_sample: int, page_packets: int) -> None:
        self.meta = meta
        self.first_sample = first_sample
        self.next_sample = first_sample
        self.samples = 0
        """Samples written so far (the file's granule position, known without touching the file)."""
        self.batch: list[tuple[bytes, int]] = []
        self.page_packets = page_packets
        self.file: OggOpusWriter | None = None  # touched by the writer only

    def add(self, payload: bytes, samples: int) -> list[tuple[bytes, int]] | None:
        """Queue a packet; returns a page's worth once there is one."""
        self.batch.append((payload, samples))
        self.samples += samples
        if len(self.batch) >= self.page_packets:
            batch, self.batch = self.batch, []
            return batch
        return None

    # --- run by the writer ---------------------------------------------------------

    def open_file(self, path: Path, options: dict[str, Any]) -> None:
        self.file = OggOpusWriter(path, **options)

    def write_file(self, batch: list[tuple[bytes, int]]) -> None:
        if self.file is not None:
            for payload, samples in batch:
                self.file.write(payload, samples)

    def close_file(self) -> None:
        if self.file is not None:
            self.file.close()


class TrackRecorder:
    def __init__(
        self,
        spool: SpaceSpool,
        *,
        track_id: str,
        speaker: str,
        options: RecorderOptions,
        on_closed: Callable[[SegmentMeta], None],
        writer: Writer | None = None,
    ) -> None:
        self.spool = spool
        self._io: Writer = writer or InlineWriter()
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
        self._io.submit(spool.track_dir(track_id).mkdir, 0o777, True, True)

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
                    self._add(seg, filler, opus.packet_samples(filler))
                seg.next_sample = sample
        if seg is None:
            seg = self._open_segment(sample, payload)
        self._add(seg, payload, samples)
        seg.next_sample = sample + samples
        self.packets += 1
        if seg.samples >= self._segment_samples:
            self._close_segment()

    def _add(self, seg: _OpenSegment, payload: bytes, samples: int) -> None:
        page = seg.add(payload, samples)
        if page is not None:
            self._io.submit(seg.write_file, page)

    def _open_segment(self, sample: int, first_payload: bytes) -> _OpenSegment:
        assert self._anchor is not None
        offset = self._anchor.to_room(sample)
        meta = SegmentMeta(track_id=self.track_id, speaker=self.speaker, seq=self._seq, offset=round(offset, 6))
        self._seq += 1
        seg = _OpenSegment(meta, sample, self.options.page_packets)
        # Meta first: recovery finds the offset even if we die right after.
        self._io.submit(self.spool.write_meta, meta)
        self._io.submit(
            seg.open_file,
            self.spool.segment_audio(self.track_id, meta.seq),
            {
                "serial": random.getrandbits(32),
                "channels": 2 if opus.is_stereo(first_payload) else 1,
                "comments": {
                    "SPACE": self.spool.space_id,
                    "TRACK": self.track_id,
                    "SPEAKER": self.speaker,
                    "SEQ": str(meta.seq),
                    "ROOM_OFFSET": f"{offset:.4f}",
                },
                "page_packets": self.options.page_packets,
            },
        )
        self._segment = seg
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
        meta = replace(
            seg.meta,
            offset=round(offset, 6),
            duration=round(seg.samples / opus.CLOCK_RATE, 6),
            closed=True,
        )
        if seg.batch:
            self._io.submit(seg.write_file, seg.batch)
            seg.batch = []
        self._io.submit(seg.close_file)
        self._io.submit(self.spool.write_meta, meta)
        log.debug("segment %s/%06d closed: %.3f + %.3f s", self.track_id, meta.seq, meta.offset, meta.duration)
        # Announced once it is on disk: the archive uploads it from there.
        self._io.then(self._on_closed, meta)
