"""Signal checks for SFU tests: where a known source sits inside received audio."""

from __future__ import annotations

import fractions
import io
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from spaces.models import Track

RATE = 48000
LOW = 8000
_STEP = RATE // LOW


def low(x: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """48 kHz int16 -> 8 kHz float (block average; enough for locating speech)."""
    n = len(x) // _STEP * _STEP
    return np.asarray(x[:n], dtype=np.float64).reshape(-1, _STEP).mean(axis=1)


@dataclass(frozen=True)
class Match:
    lag: float
    """Seconds: source sample 0 sits at this position of the received signal."""
    score: float
    """Normalized correlation at that lag (1.0 = identical shape)."""


def locate(received: npt.NDArray[np.float64], source: npt.NDArray[np.float64]) -> Match:
    """Where ``source`` (8 kHz) best matches inside ``received`` (8 kHz)."""
    n = 1
    while n < len(received) + len(source):
        n *= 2
    corr = np.fft.irfft(np.fft.rfft(received, n) * np.conj(np.fft.rfft(source, n)), n)
    # Circular correlation: indices past len(received) are negative lags.
    lags = np.concatenate([np.arange(0, len(received)), np.arange(-len(source) + 1, 0)])
    values = np.concatenate([corr[: len(received)], corr[n - len(source) + 1 :]])
    best = int(np.argmax(values))
    lag = int(lags[best])
    lo, hi = max(lag, 0), min(lag + len(source), len(received))
    s_lo = lo - lag
    window = received[lo:hi]
    src = source[s_lo : s_lo + len(window)]
    denom = float(np.linalg.norm(window) * np.linalg.norm(src)) or 1.0
    return Match(lag=lag / LOW, score=float(np.dot(window, src) / denom))


def decode_ogg(data: bytes) -> npt.NDArray[np.int16]:
    """An Ogg/Opus file as 48 kHz mono int16, as the workers will read it (PyAV)."""
    with av.open(io.BytesIO(data)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        out = []
        for frame in container.decode(audio=0):
            for f in resampler.resample(frame):
                out.append(f.to_ndarray().reshape(-1))
        for f in resampler.resample(None):
            out.append(f.to_ndarray().reshape(-1))
    return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)


def render_track(track: Track, segments: dict[int, bytes], duration: float) -> npt.NDArray[np.float64]:
    """A track placed on the room clock (8 kHz), each segment at its offset."""
    out = np.zeros(int(duration * LOW) + LOW, dtype=np.float64)
    for seg in track.segments:
        audio = low(decode_ogg(segments[seg.seq]))
        start = int(round(seg.offset * LOW))
        end = min(start + len(audio), len(out))
        if end > start:
            out[start:end] += audio[: end - start]
    return out


def misplaced_segments(
    track: Track,
    segments: dict[int, bytes],
    source: npt.NDArray[np.float64],
    source_at: float,
    *,
    within: float = 0.01,
) -> list[tuple[int, float, float]]:
    """``(seq, seconds off, score)`` of each segment not where its offset says, nor like its source.

    ``source`` (8 kHz) is what was sent, its first sample at room time
    ``source_at``; a segment more than ``within`` seconds from its place, or
    scoring under 0.8 against the source there, is listed.
    """
    off = []
    for seg in track.segments:
        audio = low(decode_ogg(segments[seg.seq]))
        at = int(round((seg.offset - source_at) * LOW))
        lo = max(0, at - LOW // 5)
        near = source[lo : at + len(audio) + LOW // 5]
        if len(near) <= len(audio):
            off.append((seg.seq, float("nan"), 0.0))
            continue
        match = locate(near, audio)
        moved = match.lag - (at - lo) / LOW
        if abs(moved) > within or match.score < 0.8:
            off.append((seg.seq, round(moved, 4), round(match.score, 3)))
    return off


def opus_packets(seconds: float, *, channels: int = 1) -> list[bytes]:
    """Real Opus packets (20 ms) of a 440 Hz tone, from libopus."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "mono" if channels == 1 else "stereo"
    enc.format = "s16"
    enc.bit_rate = 32000
    enc.time_base = fractions.Fraction(1, 48000)
    n = int(seconds * 48000)
    tone = (np.sin(2 * np.pi * 440 * np.arange(n) / 48000) * 8000).astype(np.int16)
    out = []
    for i in range(0, n, 960):
        chunk = np.repeat(tone[i : i + 960], channels).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=enc.layout.name)
        frame.sample_rate = 48000
        frame.pts = i
        out += [bytes(p) for p in enc.encode(frame)]
    return out
