"""The replay's encoders on a bench space's mix: CPU time, size, and how near each comes to the mix.

    .venv/bin/python -m bench.replay_encoding [--space many] [--seed 3]

Renders the mix of one of ``bench.transcripts``' spaces as the ``mix`` job
does (:func:`workers.mix.render_mix`'s windows, each track at its speech
gain), then encodes it with each candidate (Opus as the replay's ``.ogg``,
FFmpeg's AAC with each of its coders, the replay's ``.m4a`` with its own
options), decodes it back, and prints per candidate: the encoder's CPU time,
the file's size, and its distance from the mix: the log-spectral distance
(dB, over the frames within 40 dB of the loudest) per band, and wideband
PESQ (ITU-T P.862.2, 8 s pieces at 16 kHz) where the ``pesq`` package is
installed (it is not a dependency: ``pip install pesq`` in a venv of its own
with this project's, or read the bands alone).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import cast

import av
import numpy as np

from bench.transcripts import build_bench_space, mix_track
from spaces.formats import AudioFormat
from transcribe.audio import decode
from workers.mix import RATE, _windows

#: name -> (codec, bit rate, container, encoder options)
CANDIDATES = {
    "opus (replay.ogg)": ("libopus", AudioFormat.OGG.bit_rate, "ogg", AudioFormat.OGG.codec_options),
    "aac twoloop": ("aac", AudioFormat.M4A.bit_rate, "mp4", {"aac_coder": "twoloop"}),
    "aac fast": ("aac", AudioFormat.M4A.bit_rate, "mp4", {"aac_coder": "fast"}),
    "aac (replay.m4a)": ("aac", AudioFormat.M4A.bit_rate, "mp4", AudioFormat.M4A.codec_options),
}
BANDS = ((0, 4000), (4000, 8000), (8000, 12000), (12000, 16000))


def room_mix(space_name: str, seed: int, out: Path) -> np.ndarray:
    """The space's mix as the replay renders it, int16 at RATE."""
    space, _, _ = build_bench_space(space_name, 600, seed, out, kbps=64)
    tracks = [mix_track(str(p), space.starts[s], None) for s, p in space.items()]
    return np.concatenate([w for _, w in _windows(tracks, round(space.duration * RATE))])


def encode(mix: np.ndarray, path: Path, codec: str, bit_rate: int, container: str, options: dict[str, str]) -> float:
    """Encode the mix into ``path``; returns the encoder's CPU seconds."""
    with av.open(str(path), "w", format=container) as out:
        stream = cast(av.AudioStream, out.add_stream(codec, rate=RATE, layout="mono", options=options))
        stream.bit_rate = bit_rate
        cpu = time.process_time()
        for at in range(0, len(mix), 60 * RATE):
            frame = av.AudioFrame.from_ndarray(mix[at : at + 60 * RATE].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts = RATE, at
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        return time.process_time() - cpu


def power_spectra(x: np.ndarray, n: int = 2048) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32), n)[:: n // 2] * np.hanning(n)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def band_distances(reference: np.ndarray, decoded: np.ndarray) -> list[float]:
    """Log-spectral distance (dB) per band of BANDS, over the reference's frames within 40 dB of its loudest."""
    n = min(len(reference), len(decoded))
    ref, dec = power_spectra(reference[:n]), power_spectra(decoded[:n])
    total = ref.sum(axis=1)
    loud = total > total.max() * 1e-4
    freqs = np.fft.rfftfreq(2048, 1 / RATE)
    out = []
    for lo, hi in BANDS:
        band = (freqs >= lo) & (freqs < hi)
        diff = 10 * np.log10(dec[loud][:, band] + 1e-3) - 10 * np.log10(ref[loud][:, band] + 1e-3)
        out.append(float(np.sqrt(np.mean(diff**2))))
    return out


def wideband_pesq(reference: Path, decoded: Path) -> float | None:
    """Mean wideband PESQ over 8 s pieces, None without the ``pesq`` package."""
    try:
        from pesq import pesq  # type: ignore[import-not-found]  # optional, see the module's doc
    except ImportError:
        return None
    ref, deg = decode(reference, rate=16_000), decode(decoded, rate=16_000)
    piece = 8 * 16_000
    n = min(len(ref), len(deg))
    return float(
        np.mean([pesq(16_000, ref[s : s + piece], deg[s : s + piece], "wb") for s in range(0, n - piece, piece)])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--space", default="many", help="a space of bench.transcripts (default: many)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-replay-encoding-") as tmp:
        work = Path(tmp)
        mix = room_mix(args.space, args.seed, work / "space")
        reference = work / "mix.wav"
        encode(mix, reference, "pcm_s16le", 0, "wav", {})
        print(f"space {args.space}, seed {args.seed}: {len(mix) / RATE:.0f} s of mix")
        header = ["encoder", "CPU", "size", *(f"LSD {lo // 1000}-{hi // 1000} kHz" for lo, hi in BANDS), "PESQ-WB"]
        print(" | ".join(header))
        for n, (name, (codec, bit_rate, container, options)) in enumerate(CANDIDATES.items()):
            path = work / f"{n}.{'ogg' if container == 'ogg' else 'm4a'}"
            cpu = encode(mix, path, codec, bit_rate, container, options)
            bands = band_distances(mix, decode(path, rate=RATE, dtype=np.int16))
            score = wideband_pesq(reference, path)
            cells = [name, f"{cpu:.2f} s", f"{path.stat().st_size / 1e3:.0f} kB", *(f"{d:.1f} dB" for d in bands)]
            print(" | ".join([*cells, "-" if score is None else f"{score:.2f}"]), flush=True)


if __name__ == "__main__":
    main()
