"""Job: the replay audio, every track summed on the room clock with pydub.

Memory stays flat on long spaces: the mix is rendered in windows and
streamed into one ffmpeg process that writes both renditions (Ogg/Opus for
browsers that play it, AAC in .m4a for Safari). Each speaker is brought to
the same speech loudness first, so a quiet microphone is not lost.
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from pydub import AudioSegment

from spaces import keys
from spaces.formats import AudioFormat
from spaces.models import Segment, Track
from workers.environment import Environment, environment
from workers.stage import Progress, stage

log = logging.getLogger(__name__)

FRAME_RATE = 48_000
WINDOW_MS = 60_000
#: Speech is brought to this loudness; gains are capped so noise is not blown up.
TARGET_DBFS = -20.0
MAX_GAIN_DB = 20.0


@dataclass(frozen=True)
class _Placed:
    segment: Segment
    path: Path
    gain_db: float

    @property
    def start_ms(self) -> int:
        return round(self.segment.offset * 1000)


@stage
def mix(space_id: str) -> float:
    """Write replay.ogg and replay.m4a; returns the mix's duration in seconds."""
    env = environment()
    manifest = env.manifest(space_id)
    duration_ms = round(env.duration(manifest) * 1000)
    progress = Progress(env.catalog, space_id, "mix")
    with tempfile.TemporaryDirectory(prefix="spaces-mix-") as tmp:
        work = Path(tmp)
        tracks = [_download(env, env.track(space_id, track_id), work) for track_id, _ in manifest.tracks]
        outputs = {fmt: work / f"replay.{fmt}" for fmt in AudioFormat}
        render_mix(tracks, duration_ms, outputs, progress)
        for fmt, path in outputs.items():
            env.blobs.put_file(keys.replay(space_id, fmt), path, content_type=fmt.media_type)
    progress(1.0)
    return duration_ms / 1000


def render_mix(
    tracks: Sequence[Sequence[tuple[Segment, Path]]],
    duration_ms: int,
    outputs: dict[AudioFormat, Path],
    progress: Callable[[float], None],
) -> None:
    """Mix the tracks (each its segments' files) into ``outputs[AudioFormat.OGG]`` and ``outputs[AudioFormat.M4A]``."""
    placed: list[_Placed] = []
    for track in tracks:
        gain = _speech_gain([path for _, path in track])
        log.info("track of %d segments: gain %.1f dB", len(track), gain)
        placed.extend(_Placed(segment, path, gain) for segment, path in track)
    _render(placed, duration_ms, outputs, progress)


def _download(env: Environment, track: Track, work: Path) -> list[tuple[Segment, Path]]:
    files = []
    for segment in track.segments:
        path = work / f"{track.track_id}-{segment.seq:06d}.ogg"
        env.blobs.download(segment.key, path)
        files.append((segment, path))
    return files


def _speech_gain(paths: list[Path]) -> float:
    """Gain bringing the track's speech (not its silence) to TARGET_DBFS.

    Speech is every 20 ms frame within 30 dB of the track's loudest one.
    """
    frames = [_frame_power(audio) for audio in map(_load, paths) if audio is not None]
    return speech_gain(np.concatenate(frames) if frames else np.zeros(0))


def speech_gain(power: np.ndarray) -> float:
    """Gain in dB bringing the speech among these 20 ms frames' powers to TARGET_DBFS.

    The replay mix measures a whole track; the live mix (``workers.hls``) the
    frames heard so far: one rule, so live and replay sound alike.
    """
    if not power.size or power.max() <= 0:
        return 0.0
    speech = power[power >= power.max() * 10 ** (-30 / 10)]
    speech_dbfs = 10 * math.log10(float(speech.mean()))
    return max(-MAX_GAIN_DB, min(MAX_GAIN_DB, TARGET_DBFS - speech_dbfs))


def _frame_power(audio: AudioSegment, frame_ms: int = 20) -> np.ndarray:
    """Mean power of each frame, relative to full scale."""
    samples = np.frombuffer(audio.raw_data, dtype=np.int16).astype(np.float32) / 32768.0
    hop = FRAME_RATE * frame_ms // 1000
    n = len(samples) // hop
    power: np.ndarray = (samples[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    return power


def _render(
    placed: list[_Placed], duration_ms: int, outputs: dict[AudioFormat, Path], progress: Callable[[float], None]
) -> None:
    errors = outputs[AudioFormat.OGG].with_suffix(".log")
    with errors.open("wb") as log_file:
        encoder = subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "s16le",
                "-ar",
                str(FRAME_RATE),
                "-ac",
                "1",
                "-i",
                "pipe:0",
                "-c:a",
                "libopus",
                "-b:a",
                "48k",
                str(outputs[AudioFormat.OGG]),
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                "-movflags",
                "+faststart",
                str(outputs[AudioFormat.M4A]),
            ],
            stdin=subprocess.PIPE,
            stderr=log_file,
        )
        assert encoder.stdin is not None
        try:
            with encoder.stdin:
                for window_start, window in _windows(placed, duration_ms):
                    encoder.stdin.write(window.raw_data)
                    progress(min(1.0, (window_start + len(window)) / max(duration_ms, 1)) * 0.99)
        except BaseException:
            # A timeout (rq's alarm) or a failed decode: the encoder must not
            # outlive the job, finishing a replay nobody will upload.
            encoder.kill()
            encoder.wait()
            raise
        encoder.wait()
    if encoder.returncode != 0:
        raise RuntimeError(f"ffmpeg failed to encode the replay: {errors.read_text(errors='replace')[-500:]}")


def _windows(placed: list[_Placed], duration_ms: int) -> Iterator[tuple[int, AudioSegment]]:
    """Consecutive windows of the mix.

    Segments are short (about 10 s), so each is decoded once and kept only
    while the next window may still need it.
    """
    decoded: dict[Path, AudioSegment | None] = {}
    for start in range(0, duration_ms, WINDOW_MS):
        length = min(WINDOW_MS, duration_ms - start)
        window = AudioSegment.silent(length, FRAME_RATE).set_sample_width(2).set_channels(1)
        for p in placed:
            seg_end = p.start_ms + round(p.segment.duration * 1000) + 1000
            if p.start_ms >= start + length or seg_end <= start:
                decoded.pop(p.path, None)
                continue
            if p.path not in decoded:
                decoded[p.path] = _load(p.path)
            audio = decoded[p.path]
            if audio is None:
                continue
            # Slice the part of the segment inside this window, then overlay.
            rel = p.start_ms - start
            part = audio[max(0, -rel) : max(0, start + length - p.start_ms)]
            window = window.overlay(part.apply_gain(p.gain_db), position=max(0, rel))
        yield start, window


def _load(path: Path) -> AudioSegment | None:
    """Decode a segment in-process (pydub would spawn ffmpeg twice per file)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            frames = [f.to_ndarray() for f in container.decode(stream)]
            rate = stream.rate
    except (av.FFmpegError, IndexError) as e:
        log.warning("segment %s does not decode, left silent: %s", path.name, e)
        return None
    if not frames:
        return None
    # Opus decodes to 48 kHz planar float: average the channels, scale to s16.
    samples = np.concatenate([f.reshape(f.shape[0], -1) for f in frames], axis=1).mean(axis=0)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    audio = AudioSegment(data=pcm.tobytes(), sample_width=2, frame_rate=rate, channels=1)
    return audio if rate == FRAME_RATE else audio.set_frame_rate(FRAME_RATE)
