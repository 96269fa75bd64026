"""What a room has recorded so far: its tracks, each publisher's recording choice, and unrecorded speech.

This is the room's ``room.json`` on the spool (``spool.RoomRecord``); every
change goes to it through the room's writer thread, in order, so a node
restarted mid-space finds the tracks and choices made so far.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from ingest.recorder import RecorderOptions, TrackRecorder
from ingest.spool import RoomRecord, SegmentMeta, SpaceSpool
from ingest.writer import ThreadWriter
from spaces import layout
from spaces.models import SpaceState

log = logging.getLogger(__name__)

#: Speech of an unrecorded speaker closer than this to their previous stretch joins it.
UNRECORDED_JOIN = 1.5


class RoomRecording:
    def __init__(
        self,
        record: RoomRecord,
        *,
        spool: SpaceSpool,
        writer: ThreadWriter,
        options: RecorderOptions,
        on_segment_closed: Callable[[SegmentMeta], None],
        on_speakers: Callable[[tuple[str, ...]], None],
    ) -> None:
        """``on_speakers(speakers)``: a new speaker's track was opened (the catalog shows who speaks)."""
        self.record = record
        self.recorders: dict[str, TrackRecorder] = {}
        self._spool = spool
        self._writer = writer
        self._options = options
        self._on_segment_closed = on_segment_closed
        self._on_speakers = on_speakers
        #: Per unrecorded speaker, [start, end] stretches of speech on the room clock.
        self._unrecorded: dict[str, list[list[float]]] = {}

    def save(self) -> None:
        self._writer.submit(self._spool.write_room, self.record)

    def has_track(self, identity: str) -> bool:
        return any(speaker == identity for _, speaker in self.record.tracks)

    def opener(self, identity: str) -> Callable[[], TrackRecorder]:
        """What a publication calls at its first recorded packet."""
        return lambda: self.recorder_for(identity)

    def recorder_for(self, identity: str) -> TrackRecorder:
        """A speaker's one track, opened at their first packet and kept across leave and rejoin."""
        recorder = self.recorders.get(identity)
        if recorder is not None:
            return recorder
        track_id = layout.track_id(len(self.record.tracks), identity)
        self.record = self.record.with_track(track_id, identity)
        self.save()
        recorder = TrackRecorder(
            self._spool,
            track_id=track_id,
            speaker=identity,
            options=self._options,
            on_closed=self._on_segment_closed,
            writer=self._writer,
        )
        self.recorders[identity] = recorder
        self._on_speakers(tuple(s for _, s in self.record.tracks))
        log.info("recording %s as track %s", identity, track_id, extra={"space_id": self.record.space_id})
        return recorder

    def note_consent(self, identity: str, at: float, recorded: bool) -> None:
        """A publisher's recording choice at room time ``at``."""
        self.record = replace(self.record, consents=(*self.record.consents, (identity, round(at, 3), recorded)))
        self.save()

    def note_unrecorded_speech(self, identity: str, at: float, interval: float) -> None:
        """An unrecorded speaker was heard at room time ``at`` (checked every ``interval`` s)."""
        stretches = self._unrecorded.setdefault(identity, [])
        if stretches and at - stretches[-1][1] <= UNRECORDED_JOIN:
            stretches[-1][1] = at
        else:
            stretches.append([max(0.0, at - interval), at])

    def close_tracks(self) -> None:
        for recorder in self.recorders.values():
            recorder.close()

    def mark_ended(self) -> None:
        """The room ended: every track closed; the record says so, with the unrecorded speech."""
        unrecorded = sorted(
            ((who, round(a, 3), round(b, 3)) for who, spans in self._unrecorded.items() for a, b in spans),
            key=lambda u: (u[1], u[0]),
        )
        self.record = replace(self.record, phase=SpaceState.ENDED, unrecorded=tuple(unrecorded))
        self.save()
