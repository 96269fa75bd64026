"""Live Opus decoding: samples and room times from real libopus packets."""

from __future__ import annotations

import fractions

import av
import numpy as np

from transcribe.audio import SAMPLE_RATE
from transcribe.live_audio import OpusStream


def encode(samples48k: np.ndarray) -> list[bytes]:
    """20 ms Opus packets (libopus) of mono int16 48 kHz samples."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "stereo"
    enc.format = "s16"
    enc.bit_rate = 64000
    enc.time_base = fractions.Fraction(1, 48000)
    out = []
    for i in range(0, len(samples48k) - 959, 960):
        chunk = np.repeat(samples48k[i : i + 960], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i
        out += [bytes(p) for p in enc.encode(frame)]
    return out


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * 48000)) / 48000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


def test_packets_decode_to_16k_mono_at_their_timestamps() -> None:
    stream = OpusStream()
    ts0 = 0xFFFFF000  # wraps within the first second
    chunks = []
    for i, payload in enumerate(encode(tone(1.0))):
        # Arrival jitters by up to 30 ms; times must follow the timestamps.
        jitter = 0.03 * ((i * 7) % 5) / 4
        out = stream.push(payload, (ts0 + 960 * i) & 0xFFFFFFFF, 10.0 + i * 0.02 + jitter)
        assert out is not None
        chunks.append(out)
    times = [at for at, _ in chunks]
    assert np.allclose(np.diff(times), 0.02, atol=1e-9)
    assert times[0] == 10.0
    audio = np.concatenate([s for _, s in chunks])
    assert audio.dtype == np.float32
    assert abs(len(audio) - len(chunks) * 320) <= 320  # 16 kHz (the resampler may hold a few samples back)
    # The tone is there: most of its energy at 440 Hz once the codec settled.
    spectrum = np.abs(np.fft.rfft(audio[SAMPLE_RATE // 4 :]))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(audio[SAMPLE_RATE // 4 :])
    assert abs(peak_hz - 440) < 5


def test_late_packets_are_dropped_and_clock_jumps_reanchor() -> None:
    stream = OpusStream(max_drift=1.0)
    packets = encode(tone(0.2))
    assert stream.push(packets[0], 1000, 5.0) is not None
    assert stream.push(packets[1], 1960, 5.02) is not None
    assert stream.push(packets[2], 1000, 5.04) is None  # older than one decoded: too late
    assert stream.dropped == 1
    # The sender's timestamps jump by an hour: the packet is placed at its arrival.
    out = stream.push(packets[3], 1960 + 48000 * 3600, 6.0)
    assert out is not None and out[0] == 6.0


def test_a_burst_after_a_gap_keeps_the_room_clock() -> None:
    """The SFU holds a silent speaker's packets back from the agent, then sends the preroll in a burst."""
    stream = OpusStream()
    packets = encode(tone(0.6))
    # The first 12 packets (0.24 s of audio) arrive together, late, with the one at 5.0 s.
    burst = [stream.push(p, 960 * i, 5.0 + 0.005 * i) for i, p in enumerate(packets[:12])]
    assert all(b is not None for b in burst)
    # From then on packets come on time; the least delayed one anchors the clock.
    live = [stream.push(p, 960 * i, 4.76 + 0.02 * i) for i, p in enumerate(packets[12:], start=12)]
    times = [out[0] for out in live if out is not None]
    assert np.allclose(times, [4.76 + 0.02 * i for i in range(12, 12 + len(times))])
    # A gap the sender's timestamps count (speech after 3 s the SFU did not forward) lands where it belongs.
    out = stream.push(packets[-1], 960 * (len(packets) - 1) + 48000 * 3, 4.76 + 0.02 * (len(packets) - 1) + 3.01)
    assert out is not None and abs(out[0] - (4.76 + 0.02 * (len(packets) - 1) + 3.0)) < 1e-9
