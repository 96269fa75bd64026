"""Job: the replay audio, every track summed on the room clock.

One audio stack, in process: PyAV (FFmpeg's libraries) decodes each segment
once, with the decoder the rest of the pipeline uses
(:func:`transcribe.audio.decode`, here at 48 kHz as int16), numpy sums the
tracks, and PyAV encodes both renditions (:class:`~spaces.formats.AudioFormat`:
Opus in Ogg for browsers that play it, AAC in MP4 for Safari). pydub, which
the first mix used, is not needed: it decodes and encodes by starting an
ffmpeg process per file, and its sums are what numpy does on the same int16.

Memory stays flat on long spaces: the mix is rendered a window at a time,
each track holding one decoded segment or two, and each window goes to both
encoders as it is done. Each speaker is brought to the same speech loudness
first, so a quiet microphone is not lost; the gain comes from the track's
levels: those the room's transcription stores as it reads the tracks (the
mix, started beside it, waits for them a while), else measured here on the
track decoded as the transcription decodes it, so the gain is the same.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import numpy as np
from rq import get_current_job

from spaces import keys
from spaces.formats import AudioFormat
from spaces.models import Track
from transcribe.levels import FLOOR_DB, Levels, levels
from workers.environment import Environment, environment
from workers.levels import await_levels, read_levels
from workers.stage import Progress, stage
from workers.tracks import load_track_audio, track_pieces

log = logging.getLogger(__name__)

RATE = 48_000
#: Samples rendered at once: a minute, 11 MB of float32.
WINDOW = 60 * RATE
#: Speech is brought to this loudness; gains are capped so noise is not blown up.
TARGET_DBFS = -20.0
MAX_GAIN_DB = 20.0
#: The mix job's CPU priority (``nice``): below the room's transcription, which it runs beside.
NICENESS = 10
#: Seconds the mix waits for the levels the room's transcription stores as it reads the tracks (the
#: seven-speaker bench space's: 0.8 s after it starts) before it measures them itself: measured
#: here, at idle priority beside the room pass and its language detection, they made the replay
#: the pipeline's last stage by 1.2-2.3 s.
LEVELS_WAIT = 10.0


@dataclass(frozen=True)
class MixTrack:
    """One track for the mix.

    ``pieces``: ``(room time of the first sample, int16 samples at RATE)``,
    in time order and not overlapping (as :func:`workers.tracks.track_pieces`
    yields them); ``gain_db``: what brings its speech to the target loudness.
    """

    pieces: Iterable[tuple[float, np.ndarray]]
    gain_db: float


@stage
def mix(space_id: str) -> float:
    """Write replay.ogg and replay.m4a; returns the mix's duration in seconds."""
    if get_current_job() is not None:  # the worker's work horse, forked for this job: not a caller's process
        yield_cpu()
    env = environment()
    manifest = env.manifest(space_id)
    duration = round(env.duration(manifest), 3)  # whole milliseconds, as the catalog shows it
    progress = Progress(env.catalog, space_id, "mix")
    await_levels(env.blobs, space_id, [t for t, _ in manifest.tracks], wait=LEVELS_WAIT)
    tracks = [_mix_track(env, space_id, env.track(space_id, track_id)) for track_id, _ in manifest.tracks]
    with tempfile.TemporaryDirectory(prefix="spaces-mix-") as tmp:
        outputs = {fmt: Path(tmp) / f"replay.{fmt}" for fmt in AudioFormat}
        render_mix(tracks, duration, outputs, progress)
        for fmt, path in outputs.items():
            env.blobs.put_file(keys.replay(space_id, fmt), path, content_type=fmt.media_type)
    progress(1.0)
    return duration


def yield_cpu() -> None:
    """Run this process on cycles nothing else wants, for good: Linux's
    ``SCHED_IDLE`` policy, and :data:`NICENESS` (or lower) where the OS has
    no such policy.

    The mix runs beside the room's transcription (both start when the
    space is finalized), which is the pipeline's longest stage; the mix is done long
    before it either way, on the cycles Whisper's beam search leaves (it
    keeps 1.1-1.4 of two cores busy), and so beside another space's
    transcription too. The seven-speaker bench space of seed 3, 14 runs in
    turn each way: the room job took 13.8 s on average beside the mix at
    idle priority, 15.4 s beside it at nice 10 (shorter in 12 of the 14;
    the same job alone read 13.4-16.7 s on this machine, so one run says
    little): at nice 10 the scheduler still gives the mix a share of a core
    Whisper's threads want (a tenth of it), at idle priority only a core
    no one wants (beside a mix at the job's own priority, three runs each
    way in an earlier session, it took 1.5 s longer than at nice 10). The
    policy is the calling thread's, and so every thread the job starts
    after it: called first thing in the work horse, it covers all; called on
    one thread, that thread's alone (the room job's language detection,
    :class:`transcribe.room_audio.Detection`). A worker's
    CPUs busy with normal work all the time leave the mix waiting (its
    stage's timeout, ``SPACES_JOB_TIMEOUT``, still runs).
    """
    current = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, max(current, NICENESS))
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _mix_track(env: Environment, space_id: str, track: Track) -> MixTrack:
    measured = read_levels(env, space_id, track.track_id)
    if measured is None:  # the transcription has not stored them yet
        start, audio, _ = load_track_audio(env, space_id, track, dtype=np.int16)
        measured = levels(audio, offset=start)
    gain = level_gain(measured)
    log.info("track %s: gain %.1f dB", track.track_id, gain, extra={"space_id": space_id})
    # Decoding errors are the transcription's to report; here the segment is silence.
    return MixTrack(track_pieces(env, space_id, track, [], rate=RATE, dtype=np.int16), gain)


def level_gain(measured: Levels) -> float:
    """Gain in dB bringing the speech of a track with these levels to TARGET_DBFS."""
    db = measured.db.astype(np.float64)
    return speech_gain(np.where(db > FLOOR_DB, 10 ** (db / 10), 0.0))


def speech_gain(power: np.ndarray) -> float:
    """Gain in dB bringing the speech among these 20 ms frames' powers to TARGET_DBFS.

    Speech is every frame within 30 dB of the loudest one. The replay mix
    measures a whole track; the live mix (``workers.hls``) the frames heard
    so far: one rule, so live and replay sound alike.
    """
    if not power.size or power.max() <= 0:
        return 0.0
    speech = power[power >= power.max() * 10 ** (-30 / 10)]
    speech_dbfs = 10 * math.log10(float(speech.mean()))
    return max(-MAX_GAIN_DB, min(MAX_GAIN_DB, TARGET_DBFS - speech_dbfs))


def render_mix(
    tracks: Sequence[MixTrack],
    duration: float,
    outputs: dict[AudioFormat, Path],
    progress: Callable[[float], None],
) -> None:
    """Mix ``duration`` seconds of the tracks into one file per format in ``outputs``."""
    total = round(duration * RATE)
    with contextlib.ExitStack() as stack:
        encoders = [_Encoder(stack.enter_context(_open(fmt, path)), fmt) for fmt, path in outputs.items()]
        for end, window in _windows(tracks, total):
            for encoder in encoders:
                encoder.write(window)
            progress(end / max(total, 1) * 0.99)
        for encoder in encoders:
            encoder.flush()


def _open(fmt: AudioFormat, path: Path) -> av.container.OutputContainer:
    return av.open(str(path), "w", format=fmt.container, options=fmt.container_options)


class _Encoder:
    """One rendition: mono int16 windows in, encoded packets into its container."""

    def __init__(self, container: av.container.OutputContainer, fmt: AudioFormat) -> None:
        self.container = container
        self.stream = cast(
            av.AudioStream, container.add_stream(fmt.codec, rate=RATE, layout="mono", options=fmt.codec_options)
        )
        self.stream.bit_rate = fmt.bit_rate
        self.samples = 0

    def write(self, window: np.ndarray) -> None:
        # PyAV converts to the codec's sample format and frame size itself.
        frame = av.AudioFrame.from_ndarray(window.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self.samples
        self.samples += len(window)
        self.container.mux(self.stream.encode(frame))

    def flush(self) -> None:
        self.container.mux(self.stream.encode(None))


def _windows(tracks: Sequence[MixTrack], total: int) -> Iterator[tuple[int, np.ndarray]]:
    """Consecutive windows of the mix as int16, each with the sample it ends at."""
    feeds = [_Feed(track) for track in tracks]
    for start in range(0, total, WINDOW):
        window = np.zeros(min(WINDOW, total - start), dtype=np.float32)
        for feed in feeds:
            feed.add_into(window, start)
        yield start + len(window), np.clip(np.rint(window), -32768, 32767).astype(np.int16)


class _Feed:
    """A track's pieces, pulled as the windows reach them and dropped once behind."""

    def __init__(self, track: MixTrack) -> None:
        self._pieces = iter(track.pieces)
        self._gain = np.float32(10 ** (track.gain_db / 20))
        self._held: list[tuple[int, np.ndarray]] = []  # (first sample on the mix, samples)
        self._exhausted = False

    def add_into(self, window: np.ndarray, start: int) -> None:
        end = start + len(window)
        while not self._exhausted and (not self._held or self._held[-1][0] < end):
            piece = next(self._pieces, None)
            if piece is None:
                self._exhausted = True
            else:
                self._held.append((round(piece[0] * RATE), piece[1]))
        for at, samples in self._held:
            lo, hi = max(at, start), min(at + len(samples), end)
            if lo < hi:
                window[lo - start : hi - start] += samples[lo - at : hi - at] * self._gain
        self._held = [(at, samples) for at, samples in self._held if at + len(samples) > end]
