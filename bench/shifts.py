"""How much of a WER difference is the design, and how much the draw: ours and the mix over shifted copies.

    .venv/bin/python -m bench.shifts [--spaces eval,answers,many] [--shifts 0,0.1,0.25,0.5] [--model tiny.en]

Whisper's words on a synthetic voice flip with things that carry no
information: where its 30 s windows and the VAD's 32 ms frames fall on the
audio, the CPU kernels CTranslate2 picks. A space of a minute has a hundred
words or two, so one flipped word moves its WER by about 0.01. Here each
space is transcribed several times, every time with ``shift`` seconds of
silence before all its tracks (nothing else changes), by our room pass and
by the mix baseline (the same model on the replay, as the quality test
computes it), in one process with one model. The spread over shifts is the
noise a single comparison of the two carries; the mean of the paired
differences is the design's effect.

The spaces are the quality test's (``eval``: the one-minute space, seed 7;
``answers``: four rounds of short answers, bob on the phone; ``many``: seven
speakers), their tracks encoded once more as the import does.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from spaces.formats import AudioFormat
from tests.evalspace import baseline_words, build, build_answers, build_many, plan_space, pooled_wer
from tests.evalspace import in_utterance_order as utterance_order
from tests.speech import Space, word_error_rate
from transcribe.audio import decode
from transcribe.levels import levels
from transcribe.model import load_model
from transcribe.room import TrackAudio, transcribe_tracks
from workers.mix import RATE as MIX_RATE
from workers.mix import MixTrack, level_gain, render_mix


def build_space(name: str, out: Path) -> Space:
    if name == "eval":
        return build(plan_space(60.0, 7), out)
    if name == "answers":
        return build_answers(out)
    if name == "many":
        return build_many(out)
    raise SystemExit(f"unknown space {name!r} (eval, answers, many)")


def imported(path: Path, out: Path) -> Path:
    """The track as the import stores it (48 kHz Opus at 32 kb/s)."""
    target = out / f"imported-{path.name}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path)]
        + ["-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", str(target)],
        check=True,
    )
    return target


def replay(tracks: dict[str, Path], starts: dict[str, float], duration: float, out: Path) -> Path:
    """The mix worker's replay of the tracks (each brought to the same loudness), Ogg/Opus."""
    mixed = [
        MixTrack(
            [(starts[s], decode(p, rate=MIX_RATE, dtype=np.int16))], level_gain(levels(decode(p), offset=starts[s]))
        )
        for s, p in tracks.items()
    ]
    target = out / "replay.ogg"
    render_mix(mixed, duration, {AudioFormat.OGG: target}, lambda fraction: None)
    return target


def measure(model: WhisperModel, space: Space, tracks: dict[str, Path], mix: Path, shift: float) -> tuple[float, float]:
    """Our pooled per-speaker WER and the mix baseline's, with ``shift`` s of silence before everything."""
    room = []
    for s, p in tracks.items():
        audio = decode(p)
        at = space.starts[s] + shift  # the room starts at 0: the mix begins with ``shift`` s more silence
        room.append(TrackAudio(s, levels(audio, offset=at), [(at, audio)]))
    words = transcribe_tracks(model, room, start=0.0, end=space.duration + shift)
    ours, _ = pooled_wer(space, [replace(w, start=w.start - shift, end=w.end - shift) for w in words])
    padded = mix.with_name(f"padded-{shift}.wav")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(mix), "-af", f"adelay={round(shift * 1000)}:all=1"]
        + ["-ar", "16000", "-ac", "1", str(padded)],
        check=True,
    )
    base = baseline_words(model, padded)
    return ours, word_error_rate(utterance_order(space), base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--spaces", default="eval,answers,many")
    parser.add_argument("--shifts", default="0,0.1,0.25,0.5", help="seconds of silence before the space")
    parser.add_argument("--model", default="tiny.en", help="WHISPER_MODEL (default tiny.en, the tests' model)")
    parser.add_argument("--threads", type=int, default=1, help="model threads (1: as a worker on 2 CPUs)")
    args = parser.parse_args()
    model = load_model(args.model, cpu_threads=args.threads)
    out = Path(tempfile.mkdtemp(prefix="bench-shifts-"))
    shifts = [float(s) for s in args.shifts.split(",")]
    print("space   | shift s | ours (pooled per-speaker WER) | mix baseline | ours - mix")
    for name in args.spaces.split(","):
        space = build_space(name, out / name)
        tracks = {s: imported(p, out / name) for s, p in space.items()}
        mix = replay(tracks, space.starts, space.duration, out / name)
        pairs = [measure(model, space, tracks, mix, shift) for shift in shifts]
        for shift, (ours, base) in zip(shifts, pairs, strict=True):
            print(f"{name:7} | {shift:7.2f} | {ours:29.3f} | {base:12.3f} | {ours - base:+.3f}")
        o, m = np.array(pairs).T
        print(
            f"{name:7} | mean    | {o.mean():.3f} ({o.min():.3f}-{o.max():.3f}){'':10} | {m.mean():.3f} "
            f"({m.min():.3f}-{m.max():.3f}) | {(o - m).mean():+.3f}; ours <= mix in {int((o <= m).sum())} of {len(o)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
