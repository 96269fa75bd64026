"""The live HLS of a room: the live mix encoded to AAC, cut into segments, stored with its playlists.

``LiveHls`` is the one thing the room agent feeds: every speaker's decoded
audio (``audio``) and every caption (``caption``). On a thread of its own it
mixes up to a horizon a little behind now (``workers.livemix``), pipes the
mix into one ffmpeg (``workers.hls_segments``) that encodes AAC and cuts MPEG-TS segments of about
``segment_seconds`` (one encoder for the whole run, so no priming gap at
each segment's start), and publishes each finished segment: segment first,
then the playlists naming it, so a playlist never names what is not
stored; the master playlist (what makes the space's ``hls_url``) once the
audio playlist lists enough segments for a player to start on
(``hls.LIVE_START_SEGMENTS``), or when the space ends. An upload that fails
is tried again on the next tick while the mix goes on; segments are
published strictly in order.

MPEG-TS rather than fMP4: each segment stands alone (no init segment to
fetch first) and every HLS player reads it. Its cost here is the padding
to a constant 64 kb/s (``hls_segments.MUXRATE``): 16 KB per 2 s segment, speech or
silence, against about 12 KB of AAC at 48 kb/s.

Captions go into a WebVTT rendition whose segments cover the same room
time as the audio ones. Final captions arrive a second or more after their
words (Whisper runs behind), so a subtitle segment is written ``SUBS_LAG``
segments after its audio one; a caption later still goes into the next
subtitle segment written, with its own times.

A restarted agent reads the stored playlist, continues its numbering after
the highest segment stored (even one the playlist never named), and marks
the first new segment with ``EXT-X-DISCONTINUITY``: nothing stored is
overwritten. ``stop`` closes both playlists with ``EXT-X-ENDLIST``.
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spaces import hls
from spaces.blobstore import BlobStore
from spaces.captions import Cue, build_cues, timestamp, to_webvtt
from spaces.exceptions import NotFound, StorageError
from spaces.models import Caption, Turn
from workers.hls_segments import CODECS, MUXRATE, TS_CLOCK, SegmentEncoder, first_pts
from workers.livemix import LiveMix

log = logging.getLogger(__name__)

#: Subtitle segments trail their audio by this many segments (final captions come late).
SUBS_LAG = 2
#: First wait before an upload is tried again; doubles up to ``MAX_BACKOFF``.
BACKOFF = 0.2
MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class HlsOptions:
    segment_seconds: float = 2.0
    jitter: float = 0.3
    """The mix trails now by this much, so late packets still land in place."""
    tick: float = 0.05
    """How often the mix is fed to the encoder and finished segments published: a segment is named by
    the playlist about ``jitter`` + 0.25 s after its last sample at 0.05 s (0.37 s at 0.1 s), which every
    HLS listener hears as delay."""
    language: str = ""
    window: int = hls.LIVE_START_SEGMENTS
    """Segments a live playlist lists (at least ``hls.LIVE_START_SEGMENTS``): a joining listener starts
    this far behind its end."""


@dataclass
class _Pending:
    entry: hls.Entry
    path: Path
    pts: int | None


@dataclass
class LiveHls:
    """The live HLS writer of one space: fed from any thread, publishing on its own."""

    blobs: BlobStore
    space_id: str
    room_now: Callable[[], float]
    clock0: float
    """Wall-clock time of room-clock zero (the playlists' program date-times)."""
    options: HlsOptions = field(default_factory=HlsOptions)
    _inbox: queue.SimpleQueue[tuple[str, float, np.ndarray] | Caption] = field(default_factory=queue.SimpleQueue)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _start: float = 0.0
    _end_at: float | None = None
    published: int = 0
    upload_failures: int = 0
    mix_seconds: float = 0.0
    """CPU-ish time spent mixing and feeding the encoder (thread time)."""

    def start(self) -> None:
        # Taken now, not when the thread first runs: audio fed meanwhile is kept.
        self._start = max(0.0, self.room_now() - self.options.jitter)
        self._thread = threading.Thread(target=self._run, name="hls", daemon=True)
        self._thread.start()

    def audio(self, speaker: str, at: float, samples: np.ndarray) -> None:
        self._inbox.put((speaker, at, samples))

    def caption(self, caption: Caption) -> None:
        # Settled captions not: the final's cue may be in a published segment already.
        if caption.final and caption.words and not caption.settled:
            self._inbox.put(caption)

    def stop(self, at: float | None = None) -> None:
        """Encode what is left (up to room time ``at``, default now), publish every segment, close the playlists."""
        self._end_at = at
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    # --- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        work = Path(tempfile.mkdtemp(prefix="spaces-hls-"))
        try:
            self._stream(work)
        except Exception:
            log.exception("live HLS of %s failed", self.space_id, extra={"space_id": self.space_id})
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _stream(self, work: Path) -> None:
        audio, subs, next_seq = self._resume()
        start = self._start
        mix = LiveMix(start=start)
        encoder = SegmentEncoder(work, first_seq=next_seq, segment_seconds=self.options.segment_seconds)
        state = _State(audio=audio, subs=subs, run_start=start, discontinuity=bool(audio.entries))
        try:
            while not self._stop.wait(self.options.tick):
                cpu = time.thread_time()
                self._drain(mix, state)
                encoder.write(mix.take(self.room_now() - self.options.jitter))
                self.mix_seconds += time.thread_time() - cpu
                state.queue(encoder.finished())
                self._publish(state)
            self._drain(mix, state)
            encoder.write(mix.take(self.room_now() if self._end_at is None else self._end_at))
            state.queue(encoder.close())
        except BaseException:
            encoder.kill()
            raise
        state.ended = True
        backoff = BACKOFF
        while not self._publish(state):
            time.sleep(backoff)  # the space has ended: nothing else to do but store what is left
            backoff = min(MAX_BACKOFF, backoff * 2)

    def _resume(self) -> tuple[hls.MediaPlaylist, hls.MediaPlaylist, int]:
        """The stored playlists (a restarted agent's) and the first free segment number."""
        target = max(1, round(self.options.segment_seconds))
        try:
            audio = hls.MediaPlaylist.parse(self.blobs.get(hls.full_key(self.space_id, hls.AUDIO)).decode(), ext="ts")
            subs = hls.MediaPlaylist.parse(self.blobs.get(hls.full_key(self.space_id, hls.SUBS)).decode(), ext="vtt")
        except NotFound:
            audio = hls.MediaPlaylist(ext="ts", target=target)
            subs = hls.MediaPlaylist(ext="vtt", target=target)
        stored = [hls.segment_seq(k.rsplit("/", 1)[1]) for k in self.blobs.list(hls.prefix(self.space_id))]
        next_seq = max([s for s in stored if s is not None] + [e.seq for e in audio.entries] + [-1]) + 1
        if audio.entries:
            log.info("live HLS of %s resumes at segment %d", self.space_id, next_seq)
        return audio, subs, next_seq

    def _drain(self, mix: LiveMix, state: _State) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Caption):
                state.cues.extend(build_cues([Turn(item.speaker, item.words)]))
            else:
                mix.add(*item)

    def _publish(self, state: _State) -> bool:
        """Store what is ready, in order; False if an upload failed (tried again later)."""
        try:
            while state.pending:
                p = state.pending[0]
                self.blobs.put(
                    hls.key(self.space_id, hls.segment_name(p.entry.seq, "ts")),
                    p.path.read_bytes(),
                    content_type=hls.SEGMENT_TYPES["ts"],
                    cache_control=hls.SEGMENT_CACHE,
                )
                state.pending.pop(0)
                state.audio = state.audio.add(p.entry)
                if p.pts is not None:
                    state.pts[p.entry.seq] = p.pts
                p.path.unlink(missing_ok=True)
                self.published += 1
                state.dirty = True
            lag = 0 if state.ended else SUBS_LAG
            due = [e for e in state.audio.entries[: len(state.audio.entries) - lag] if e.seq not in state.subs_seqs]
            for entry in due:
                self.blobs.put(
                    hls.key(self.space_id, hls.segment_name(entry.seq, "vtt")),
                    state.subtitles(entry).encode(),
                    content_type=hls.SEGMENT_TYPES["vtt"],
                    cache_control=hls.SEGMENT_CACHE,
                )
                state.subs = state.subs.add(entry)
                state.dirty = True
            if state.dirty or state.ended:
                self._write_playlists(state)
                state.dirty = False
            # The master last, once there is something a player can start on.
            if not state.master_stored and (state.ended or len(state.audio.entries) >= hls.LIVE_START_SEGMENTS):
                self.blobs.put(
                    hls.key(self.space_id, hls.MASTER),
                    hls.master(bandwidth=MUXRATE, codecs=CODECS, language=self.options.language).encode(),
                    content_type=hls.PLAYLIST_TYPE,
                    cache_control=hls.CLOSED_PLAYLIST_CACHE,
                )
                state.master_stored = True
        except StorageError as e:
            self.upload_failures += 1
            log.warning("live HLS of %s: upload failed, tried again: %s", self.space_id, e)
            return False
        return True

    def _write_playlists(self, state: _State) -> None:
        cache = hls.CLOSED_PLAYLIST_CACHE if state.ended else hls.PLAYLIST_CACHE
        # Subtitles first: the audio playlist is what players poll, and each
        # subtitle segment it implies should already be listed.
        for name, playlist in ((hls.SUBS, state.subs), (hls.AUDIO, state.audio)):
            whole = hls.MediaPlaylist(
                ext=playlist.ext,
                target=playlist.target,
                entries=playlist.entries,
                ended=state.ended,
                clock0=self.clock0,
            )
            self.blobs.put(hls.full_key(self.space_id, name), whole.render().encode(), content_type=hls.PLAYLIST_TYPE)
            text = whole.render(window=self.options.window)
            self.blobs.put(
                hls.key(self.space_id, name), text.encode(), content_type=hls.PLAYLIST_TYPE, cache_control=cache
            )


@dataclass
class _State:
    audio: hls.MediaPlaylist
    subs: hls.MediaPlaylist
    run_start: float
    discontinuity: bool
    """The next segment follows a restart."""
    pending: list[_Pending] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    written: set[int] = field(default_factory=set)
    """Cues (by index) already in a subtitle segment."""
    pts: dict[int, int] = field(default_factory=dict)
    dirty: bool = False
    ended: bool = False
    master_stored: bool = False
    _next_start: float | None = None

    @property
    def subs_seqs(self) -> set[int]:
        return {e.seq for e in self.subs.entries}

    def queue(self, finished: list[tuple[int, float, Path]]) -> None:
        for seq, duration, path in finished:
            start = self.run_start if self._next_start is None else self._next_start
            self._next_start = start + duration
            entry = hls.Entry(seq, start, duration, self.discontinuity)
            self.discontinuity = False
            self.pending.append(_Pending(entry, path, first_pts(path)))

    def subtitles(self, entry: hls.Entry) -> str:
        """The WebVTT of one segment: cues overlapping it, and any earlier cue not yet shown."""
        end = entry.start + entry.duration
        chosen = []
        for i, cue in enumerate(self.cues):
            overlaps = cue.start < end and cue.end > entry.start
            late = cue.end <= entry.start and i not in self.written
            if overlaps or late:
                chosen.append(cue)
                self.written.add(i)
        text = to_webvtt(chosen)
        # Cue times are room times; the map ties room time ``entry.start`` to the
        # audio segment's first PTS, as Apple's HLS spec has it.
        pts = self.pts.get(entry.seq, round(entry.start * TS_CLOCK))
        header, _, rest = text.partition("\n")
        return f"{header}\nX-TIMESTAMP-MAP=MPEGTS:{pts},LOCAL:{timestamp(entry.start)}\n{rest}"
