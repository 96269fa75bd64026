"""The live captions' words without the network: designs of the final pass compared on the same speech.

    .venv/bin/python -m bench.live_wer --runs 4 --turns 16 [--design NAME ...]

The bench's script (2 voices taking turns, known text) goes through Opus
and back as the agent hears it, then into one
:class:`~transcribe.streaming.StreamingTranscriber` per speaker sharing a
:class:`~transcribe.room_context.RoomContext`, fed in 20 ms chunks in room
order, single-threaded (as the agent's threads would, minus the wall
clock). What a design changes is the final pass, so its WER comes out as
the live bench's would, in a fraction of the time and on a busy machine:
latency is not measured here (``bench.live_captions`` does), and there
are no interim passes (finals do not depend on them), so the CPU figure is
the final passes' (and the VAD's) per second of speech.

WER is pooled: word errors over reference words, all runs together, beside
the offline pipeline's on the same tracks (``WHISPER_MODEL``, as the live
bench compares). Per run figures show the noise.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import av
import numpy as np

from bench.common import table
from bench.live_captions import RATE, Script, offline_texts, script, script_errors, warmup
from spaces.models import Caption
from transcribe.audio import SAMPLE_RATE
from transcribe.live_audio import OpusStream
from transcribe.model import DEFAULT_MODEL, load_model, model_label
from transcribe.room_context import RoomContext
from transcribe.streaming import StreamingOptions, StreamingTranscriber


@dataclass(frozen=True)
class Design:
    """One way of making the finals: the models, the room heard first, the final pass's beam."""

    interim: str
    """The interim passes' model (there are none here, but it is loaded as the agent loads it)."""
    final: str
    context: float = 0.0
    """``StreamingOptions.final_context``: seconds of the room's latest finals heard first."""
    beam: int = 5


DESIGNS = {
    "tiny": Design("tiny.en", "tiny.en"),
    "tiny ctx8": Design("tiny.en", "tiny.en", 8.0),
    "tiny+base": Design("tiny.en", "base"),
    "tiny+base ctx8": Design("tiny.en", "base", 8.0),
    "tiny+base ctx8 beam2": Design("tiny.en", "base", 8.0, beam=2),
}


CHUNK = SAMPLE_RATE // 50
TICK = 0.05


def opus_round_trip(samples: np.ndarray) -> np.ndarray:
    """A 48 kHz int16 track through Opus (20 ms frames, as WebRTC sends) and back as the agent decodes it.

    Decoded by the agent's own :class:`~transcribe.live_audio.OpusStream`, at 16 kHz float32.
    """
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = RATE
    encoder.layout = "mono"  # type: ignore[attr-defined]
    encoder.format = "s16"  # type: ignore[attr-defined]
    encoder.bit_rate = 96000  # what aiortc sends
    stream = OpusStream()
    step = RATE // 50
    out: list[np.ndarray] = []
    for i in range(0, len(samples) - step + 1, step):
        frame = av.AudioFrame.from_ndarray(samples[i : i + step].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = i
        for packet in encoder.encode(frame):  # type: ignore[attr-defined]
            assert packet.pts is not None
            decoded = stream.push(bytes(packet), packet.pts, packet.pts / RATE)
            if decoded is not None:
                out.append(decoded[1])
    return np.concatenate(out)


def after_warmup(heard: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The script 2 s after the live bench's warm-up speaker, who is in the room (its finals too)."""
    warm = opus_round_trip(warmup())
    lead = np.zeros(len(warm) + 2 * SAMPLE_RATE, dtype=np.float32)
    out = {sp: np.concatenate([lead, a]) for sp, a in heard.items()}
    length = max(len(a) for a in out.values())
    return {**out, "warmup": np.concatenate([warm, np.zeros(length - len(warm), dtype=np.float32)])}


def live_finals(plan: Script, heard: dict[str, np.ndarray], design: Design) -> tuple[dict[str, str], float]:
    """Each speaker's final text, and the CPU seconds of the whole run."""
    model = load_model(design.interim)
    final_model = load_model(design.final)
    room = RoomContext()
    # No interim passes: finals do not depend on them (their prompt is the room's finals), and
    # the CPU figure is then the final passes' (plus the VAD's).
    options = StreamingOptions(interval=1e9, final_context=design.context)
    options = replace(options, final_whisper=replace(options.final_whisper, beam_size=design.beam))
    live = {
        sp: StreamingTranscriber(model, speaker=sp, final_model=final_model, options=options, room=room) for sp in heard
    }
    finals: dict[str, list[Caption]] = {sp: [] for sp in heard}
    length = min(len(a) for a in heard.values())
    per_tick = int(TICK * SAMPLE_RATE)
    cpu = time.process_time()
    for tick in range(0, length, per_tick):
        for sp, t in live.items():
            for i in range(tick, min(tick + per_tick, length), CHUNK):
                t.insert_audio_chunk(heard[sp][i : i + CHUNK], i / SAMPLE_RATE)
            finals[sp] += [e for e in t.process_iter() if e.final]
    for sp, t in live.items():
        finals[sp] += [e for e in t.finish() if e.final]
    cpu = time.process_time() - cpu
    return {sp: " ".join(e.text for e in sorted(f, key=lambda e: e.start)) for sp, f in finals.items()}, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--turns", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1, help="the first run's script")
    parser.add_argument("--design", action="append", choices=sorted(DESIGNS), help="default: all")
    parser.add_argument("--texts", action="store_true")
    parser.add_argument(
        "--warmup", action="store_true", help="the live bench's warm-up speaker first, in the room (its CPU counts too)"
    )
    parser.add_argument("--pipeline", default=DEFAULT_MODEL, help="the offline pipeline's model (WHISPER_MODEL)")
    args = parser.parse_args()
    pipeline = args.pipeline
    designs = args.design or list(DESIGNS)
    rows: dict[str, list[Any]] = {d: [] for d in ["offline", *designs]}
    totals = {d: [0, 0, 0.0, 0.0] for d in rows}
    load0 = os.getloadavg()[0]
    for run in range(args.runs):
        plan = script(args.turns, seed=args.seed + run)
        speech = sum(s.end - s.start for s in plan.said)
        heard = {sp: opus_round_trip(a) for sp, a in plan.tracks.items()}
        if args.warmup:
            heard = after_warmup(heard)
        results = {"offline": (offline_texts(plan, pipeline), 0.0)}
        for d in designs:
            results[d] = live_finals(plan, heard, DESIGNS[d])
        for d, (texts, cpu) in results.items():
            e, n = script_errors(plan, texts)
            totals[d][0] += e
            totals[d][1] += n
            totals[d][2] += cpu
            totals[d][3] += speech
            rows[d].append(f"{e}/{n}")
            if args.texts and d != "offline":
                for sp in texts:
                    print(f"run {run} {d:>16} {sp}: {texts[sp]}")
    off = totals["offline"][0] / totals["offline"][1]
    body = [
        [
            d,
            *rows[d],
            f"{e / n:.4f}",
            f"{(e / n) / off:.2f}x" if off else "-",
            f"{cpu / speech:.2f}" if cpu else "-",
        ]
        for d, (e, n, cpu, speech) in totals.items()
    ]
    print(
        table(
            f"Final captions' WER, {args.runs} runs x {args.turns} turns, offline on {model_label(pipeline)}"
            f" (load average {load0:.1f} -> {os.getloadavg()[0]:.1f})",
            [
                "design",
                *[f"run {i + 1} errors" for i in range(args.runs)],
                "pooled WER",
                "/ offline",
                "final CPU s / speech s",
            ],
            body,
        )
    )


if __name__ == "__main__":
    main()
