"""Where someone speaks on a track: silero VAD, memory-flat on long audio.

faster-whisper ships silero VAD as ONNX and runs it over a whole array at
once, with two padded copies of it: about 1.5 GB extra for a three-hour
track. Here the model runs over blocks (each with a little audio before it,
so the network's state has settled at the block's first frame), only where
there is sound at all (a per-speaker track is mostly silence), and the
speech/silence decision runs over the probabilities, which are tiny (one
number per 32 ms). The decision is faster-whisper's ``get_speech_timestamps``
(adapted from silero's), so the spans are the ones it would produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import get_vad_model

from transcribe.audio import SAMPLE_RATE
from transcribe.samples import Samples

FRAME = 512
"""Samples per VAD probability (32 ms)."""

_BLOCK_FRAMES = 4096  # about 2 minutes per model call
_WARMUP_FRAMES = 32  # about 1 s of audio before each block
_MARGIN_FRAMES = 16  # about 0.5 s scored around any sound
_GATE_DB = -60.0  # mean power of a frame (dBFS) below which it is silence


@dataclass(frozen=True)
class VadOptions:
    """Silero VAD parameters (the meaning of faster-whisper's ``VadOptions``).

    Defaults are tuned for per-speaker tracks: pauses of a second separate
    utterances (faster-whisper's 2 s glues a speaker's answer to their next
    remark), and no span is longer than a Whisper window.
    """

    threshold: float = 0.5
    """A frame with speech probability at or above this is speech."""
    neg_threshold: float | None = None
    """Below this a frame is always silence; ``None``: ``threshold - 0.15``."""
    min_speech_duration_ms: int = 120
    """Shorter bursts (clicks, a cough) are dropped."""
    max_speech_duration_s: float = 28.0
    """Longer speech is split, at a pause if there is one."""
    min_silence_duration_ms: int = 1000
    """Silence needed to end a span."""
    speech_pad_ms: int = 400
    """Kept on each side of a span, so soft word edges are not cut."""

    @property
    def low(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


def speech_probabilities(audio: Samples, *, near_loudest: float | None = None) -> np.ndarray:
    """Silero's speech probability for each 512-sample frame of ``audio``.

    Only stretches with sound go through the network: a speaker's track is
    mostly silence (others talk), and nobody speaks below -60 dBFS; those
    frames get probability 0.

    ``near_loudest``: score only frames within this many dB of the track's
    loud ones (its 99th percentile frame) too, for the speech of the one
    speaker on its microphone: room noise above -60 dBFS (the bench's
    -55) otherwise sends the whole track through the network.
    """
    model = get_vad_model()
    n_frames = -(-len(audio) // FRAME)
    probs = np.zeros(n_frames, dtype=np.float32)
    power = _frame_power(audio, n_frames)
    gate = 10 ** (_GATE_DB / 10)
    if near_loudest is not None and n_frames:
        gate = max(gate, float(np.quantile(power, 0.99)) * 10 ** (-near_loudest / 10))
    for first, last in _stretches(power > gate):
        warm = min(first, _WARMUP_FRAMES)
        piece = audio[(first - warm) * FRAME : last * FRAME]
        if len(piece) % FRAME:
            piece = np.pad(piece, (0, FRAME - len(piece) % FRAME))
        # A copy: faster-whisper's silero wrapper zeroes the last 64 samples
        # of the array it is given, in place (its context trick).
        out = model(np.array(piece, dtype=np.float32))
        probs[first:last] = out[warm : warm + last - first]
    return probs


def _frame_power(audio: Samples, n_frames: int) -> np.ndarray:
    """Each frame's mean power (full scale 1), block by block: squaring a long track at once would copy it."""
    power = np.zeros(n_frames, dtype=np.float32)
    for first in range(0, n_frames, _BLOCK_FRAMES):
        piece = audio[first * FRAME : (first + _BLOCK_FRAMES) * FRAME]
        if len(piece) % FRAME:  # only the last block is copied
            piece = np.pad(piece, (0, -len(piece) % FRAME))
        frames = piece.reshape(-1, FRAME)
        power[first : first + len(frames)] = np.einsum("ij,ij->i", frames, frames) / FRAME
    return power


def _stretches(loud: np.ndarray) -> list[tuple[int, int]]:
    """Frame ranges to score: sound, plus a margin, in pieces of at most a block."""
    n = len(loud)
    if not loud.any():
        return []
    # Widen every audible frame by the margin (a running max over the window).
    near = np.convolve(loud.astype(np.int32), np.ones(2 * _MARGIN_FRAMES + 1, dtype=np.int32), mode="same") > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], near.astype(np.int8), [0]])))
    out: list[tuple[int, int]] = []
    for start, end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        for first in range(start, min(end, n), _BLOCK_FRAMES):
            out.append((first, min(first + _BLOCK_FRAMES, end, n)))
    return out


def speech_spans(probs: np.ndarray, n_samples: int, options: VadOptions = VadOptions()) -> list[tuple[int, int]]:
    """Speech spans ``(start, end)`` in samples, padded, from frame probabilities.

    Args:
        probs: From :func:`speech_probabilities`.
        n_samples: Length of the audio the probabilities describe.
        options: Thresholds and durations.
    """
    threshold, low = options.threshold, options.low
    min_speech = SAMPLE_RATE * options.min_speech_duration_ms / 1000
    pad = SAMPLE_RATE * options.speech_pad_ms / 1000
    max_speech = SAMPLE_RATE * options.max_speech_duration_s - FRAME - 2 * pad
    min_silence = SAMPLE_RATE * options.min_silence_duration_ms / 1000
    # A pause this long is a good place to split over-long speech.
    min_silence_at_max_speech = SAMPLE_RATE * 98 / 1000

    spans: list[list[int]] = []
    triggered = False
    current: list[int] = []
    temp_end = prev_end = next_start = 0
    for i, p in enumerate(probs.tolist()):
        pos = FRAME * i
        if p >= threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = pos
        if p >= threshold and not triggered:
            triggered = True
            current = [pos, 0]
            continue
        if triggered and pos - current[0] > max_speech:
            if prev_end:
                current[1] = prev_end
                spans.append(current)
                if next_start < prev_end:
                    triggered = False
                    current = []
                else:
                    current = [next_start, 0]
                prev_end = next_start = temp_end = 0
            else:
                current[1] = pos
                spans.append(current)
                current = []
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if p < low and triggered:
            if not temp_end:
                temp_end = pos
            if pos - temp_end > min_silence_at_max_speech:
                prev_end = temp_end
            if pos - temp_end < min_silence:
                continue
            current[1] = temp_end
            if current[1] - current[0] > min_speech:
                spans.append(current)
            current = []
            prev_end = next_start = temp_end = 0
            triggered = False
    if current and n_samples - current[0] > min_speech:
        current[1] = n_samples
        spans.append(current)

    # Pad each span, splitting short gaps between neighbours evenly.
    for i, span in enumerate(spans):
        if i == 0:
            span[0] = int(max(0, span[0] - pad))
        if i != len(spans) - 1:
            gap = spans[i + 1][0] - span[1]
            if gap < 2 * pad:
                span[1] += int(gap // 2)
                spans[i + 1][0] = int(max(0, spans[i + 1][0] - gap // 2))
            else:
                span[1] = int(min(n_samples, span[1] + pad))
                spans[i + 1][0] = int(max(0, spans[i + 1][0] - pad))
        else:
            span[1] = int(min(n_samples, span[1] + pad))
    return [(s, e) for s, e in spans]


def _frames(probs: np.ndarray, start: float, end: float) -> tuple[int, int]:
    """``[lo, hi)``: the frames of ``probs`` covering ``[start, end]`` (seconds in the audio)."""
    return max(0, int(start * SAMPLE_RATE) // FRAME), min(len(probs), int(end * SAMPLE_RATE) // FRAME + 1)


def speech_near(probs: np.ndarray, start: float, end: float, *, slack: float = 0.0) -> float:
    """Highest speech probability in ``[start - slack, end + slack]`` (seconds in the audio)."""
    lo, hi = _frames(probs, start - slack, end + slack)
    return float(probs[lo:hi].max()) if hi > lo else 0.0


def speech_share(probs: np.ndarray, start: float, end: float, threshold: float) -> float:
    """Share of the frames in ``[start, end]`` that are speech."""
    lo, hi = _frames(probs, start, end)
    return float((probs[lo:hi] >= threshold).mean()) if hi > lo else 0.0


def speech_onset(probs: np.ndarray, start: float, end: float, threshold: float) -> float | None:
    """Seconds in the audio where the first frame in ``[start, end]`` that is speech starts (None: none is)."""
    lo, hi = _frames(probs, start, end)
    voiced = np.flatnonzero(probs[lo:hi] >= threshold)
    return (lo + int(voiced[0])) * FRAME / SAMPLE_RATE if voiced.size else None
